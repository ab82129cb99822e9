"""The causal language model: built from a preset with keras-hub's `CausalLM`, its
preprocessor (tokenizer) kept apart, held-out likelihood, and generation. Import after the
backend is set.

The model is built without its preprocessor: training feeds it token ids, loss weights and
targets already made (`ftk.tasks.causal_lm.chat`), which keras-hub's `fit` would otherwise
run through the preprocessor again. Generation tokenizes with the preset's preprocessor and
calls the model's own `generate` on token ids.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from ftk.models.loading import preset_errors
from ftk.tasks.causal_lm.chat import token_lists

logger = logging.getLogger("ftk")
PROMPT_BUCKET = 32  # prompt windows are rounded up to a multiple of this many tokens


def backbone_kwargs(location: str, dropout: float) -> dict:
    """Arguments keras-hub's converters need beside a Hugging Face directory: keras-hub 0.32's
    Llama converter ignores `rms_norm_eps` (its default 1e-6 puts the logits 1.5e-2 off)."""
    kwargs: dict = {"dropout": dropout} if dropout else {}
    config = Path(location) / "config.json"
    if config.is_file():
        hf = json.loads(config.read_text(encoding="utf-8"))
        if hf.get("model_type") in ("llama", "mistral") and "rms_norm_eps" in hf:
            kwargs["layer_norm_epsilon"] = float(hf["rms_norm_eps"])
    return kwargs


def build_causal_lm(info, model_config):
    """keras-hub's `CausalLM` for the resolved preset `info`, without its preprocessor. The
    backbone is built first: keras-hub 0.32's `CausalLM.from_preset` passes only `dtype` on to
    it and drops other arguments (a layer-norm epsilon, dropout) without a word."""
    import keras_hub

    with preset_errors(info, "a causal language model"):
        backbone = keras_hub.models.Backbone.from_preset(
            info.location, **backbone_kwargs(info.location, model_config.dropout)
        )
        return keras_hub.models.CausalLM.from_preset(
            info.location, backbone=backbone, preprocessor=None
        )


@functools.lru_cache(maxsize=4)
def preprocessor(location: str):
    """The preset's `CausalLMPreprocessor` (its tokenizer, start and end tokens)."""
    import keras_hub

    return keras_hub.models.CausalLMPreprocessor.from_preset(location)


def sampler(generate_config):
    import keras_hub

    if generate_config.sampler == "top_k":
        return keras_hub.samplers.TopKSampler(
            k=generate_config.top_k, temperature=generate_config.temperature
        )
    if generate_config.sampler == "top_p":
        return keras_hub.samplers.TopPSampler(
            p=generate_config.top_p, temperature=generate_config.temperature
        )
    return keras_hub.samplers.GreedySampler(temperature=generate_config.temperature)


def use_sampler(model, chosen) -> None:
    """What `CausalLM.compile(sampler=...)` does for generation, without recompiling the
    model for training (which would drop its optimizer and loss)."""
    if type(getattr(model, "sampler", None)) is not type(chosen):
        model.sampler = chosen
        model.generate_function = None


def response_nll(model, dataset) -> np.ndarray:
    """`[n, 2]`: each sequence's summed negative log-likelihood of its response tokens (in
    nats) and how many there are, for a dataset of `(inputs, targets, weights)`."""
    import keras

    rows = []
    for x, y, w in dataset:
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(x)).astype(np.float32)
        logits -= logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits).sum(axis=-1))
        y, w = np.asarray(y), np.asarray(w)
        picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        nll = (log_z - picked) * w
        rows.append(np.stack([nll.sum(axis=1), w.sum(axis=1)], axis=1))
    return np.concatenate(rows).astype(np.float64) if rows else np.zeros([0, 2])


def likelihood_metrics(outputs: np.ndarray) -> dict:
    """Loss (mean negative log-likelihood per response token) and perplexity."""
    nll, tokens = float(outputs[:, 0].sum()), float(outputs[:, 1].sum())
    loss = nll / max(tokens, 1.0)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "response_tokens": int(tokens),
        "examples": int(len(outputs)),
        "num_examples": int(len(outputs)),
    }


def generate_ids(model, prep, tokens: list[list[int]], config) -> list[list[int]]:
    """Greedy (or the configured sampler's) continuations of prompts given as token ids
    (chat-formatted, without the start token), as token ids, the end token and padding
    removed."""
    if not tokens:
        return []
    start = prep.tokenizer.start_token_id
    head = [] if start is None else [int(start)]
    window = min(prompt_window(max(len(t) for t in tokens) + len(head)), max_prompt(config))
    length = window + config.generate.max_new_tokens
    token_ids = np.zeros([len(tokens), length], np.int32)
    padding = np.zeros([len(tokens), length], bool)
    for i, t in enumerate(tokens):
        row = (head + t)[:window]
        token_ids[i, : len(row)] = row
        padding[i, : len(row)] = True
    inputs = {"token_ids": token_ids, "padding_mask": padding}
    use_sampler(model, sampler(config.generate))
    end = prep.tokenizer.end_token_id
    out = model.generate(inputs, stop_token_ids=None if end is None else [end])
    ids = np.asarray(out["token_ids"])
    mask = np.asarray(out["padding_mask"]).astype(bool)
    prompt_mask = np.asarray(inputs["padding_mask"]).astype(bool)
    result = []
    for row, m, p in zip(ids, mask, prompt_mask, strict=True):
        new = [int(t) for t in row[m & ~p]]
        if end is not None and end in new:
            new = new[: new.index(end)]
        result.append(new[: config.generate.max_new_tokens])
    return result


def prompt_window(longest: int) -> int:
    """The prompt part of a generation window: the longest prompt (start token included),
    rounded up to a multiple of `PROMPT_BUCKET`, so that batches of similar prompts reuse one
    traced generation loop instead of tracing one per length."""
    return -(-longest // PROMPT_BUCKET) * PROMPT_BUCKET


def max_prompt(config) -> int:
    """The longest prompt window (start token included): `model.sequence_length`; longer
    prompts keep their beginning."""
    return config.model.sequence_length


def generate_texts(model, prep, prompts: list[str], config) -> tuple[list[str], float]:
    """The answers to `prompts` (chat-formatted texts, without the start token) as text, and
    tokens per second."""
    started = time.perf_counter()
    ids = generate_ids(model, prep, token_lists(prep.tokenizer, prompts), config)
    seconds = time.perf_counter() - started
    texts = [_detokenize(prep.tokenizer, row) for row in ids]
    return texts, sum(len(r) for r in ids) / max(seconds, 1e-9)


def _detokenize(tokenizer, ids: list[int]) -> str:
    if not ids:
        return ""
    out = tokenizer.detokenize(np.asarray(ids, np.int32))
    out = out.numpy() if hasattr(out, "numpy") else out
    return out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)


def rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure (`rouge-score`, stemmed) of the answers against the references."""
    from rouge_score import rouge_scorer

    if not predictions:
        return float("nan")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [
        scorer.score(ref, pred)["rougeL"].fmeasure
        for pred, ref in zip(predictions, references, strict=True)
    ]
    return float(np.mean(scores))


def top2_margins(model, prep, prompt: list[int], generated: list[int]) -> list[float]:
    """For each generated token, the gap between the Keras model's two highest logits at that
    step (teacher-forced on the prompt and the tokens before it)."""
    if not generated:
        return []
    start = prep.tokenizer.start_token_id
    ids = ([] if start is None else [start]) + list(prompt) + list(generated)
    x = {"token_ids": np.asarray([ids], np.int32), "padding_mask": np.ones([1, len(ids)], bool)}
    logits = np.asarray(model.predict_on_batch(x), np.float32)[0]
    steps = logits[len(ids) - len(generated) - 1 : len(ids) - 1]
    top = np.sort(steps, axis=-1)[:, -2:]
    return [float(g) for g in top[:, 1] - top[:, 0]]


@functools.lru_cache(maxsize=4)
def _location(preset: str, base_dir: str) -> str:
    from ftk.presets.resolve import resolve_preset

    return resolve_preset(preset, base_dir).location


def chat_context(config):
    """(the preset's preprocessor, the `ChatFormat`) of a config."""
    from ftk.tasks.causal_lm.chat import chat_format

    location = _location(config.model.preset, str(config.base_dir))
    prep = preprocessor(location)
    fmt = chat_format(
        config.model.chat_template, location, prep.tokenizer, config.data.system_prompt
    )
    return prep, fmt
