"""Exports of a fine-tuned causal language model, each verified before it is published:

- the SavedModel (TF Serving): `serving_default` takes `prompt` strings (the chat template,
  tokenizer, generation loop and detokenizer are in the graph) and returns the generated
  `text` and its `token_ids` (`-1` after the end);
- `preset/`: the merged model and its tokenizer as a keras-hub preset directory
  (`keras_hub.models.CausalLM.from_preset("preset")` on any backend);
- `adapter/adapter.weights.h5`: the LoRA factors alone (LoRA runs), loadable with
  `ftk.models.lora.load_adapter` on a model built with the same preset and rank;
- `assets.extra/generation.json`: the sampler settings the SavedModel generates with.

Verification: the Keras model's own `generate` on held-out prompts, against the SavedModel
called directly, through TF Serving's REST (row and columnar) and gRPC request formats, and
on the warm-up requests: the same token ids, exactly, when the sampler is greedy. The preset
directory is loaded back and must give the same logits. Runs under the TensorFlow backend.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np

from ftk.errors import VerificationError
from ftk.files import read_json, write_json

PROMPT_INPUT = "prompt"
REFERENCE = "ftk_generation_reference.json"
GENERATION = "generation.json"
NEAR_TIE = 1e-3  # logits this close at a step may come out in either order across runtimes
PRESET_DIR = "preset"
ONNX_MEMORY_BYTES = 9_000_000_000
ONNX_TIMEOUT_S = 1800
ONNX_TOLERANCE = 1e-3  # LM logits reach |35|: float32 round-off across runtimes is ~1e-4
TOKENIZER_FIX = "ftk_tokenizer.json"
ADAPTER_DIR = "adapter"
SIGNATURE = {
    "inputs": {PROMPT_INPUT: "DT_STRING [-1]"},
    "outputs": {"text": "DT_STRING [-1]", "token_ids": "DT_INT32 [-1, -1]"},
}


def _context(config):
    from ftk.presets.resolve import resolve_preset
    from ftk.tasks.causal_lm.chat import chat_format
    from ftk.tasks.causal_lm.model import preprocessor

    location = resolve_preset(config.model.preset, config.base_dir).location
    prep = preprocessor(location)
    fmt = chat_format(
        config.model.chat_template, location, prep.tokenizer, config.data.system_prompt
    )
    return prep, fmt


def write_savedmodel(model, prep, fmt, config, path: Path) -> None:
    """The string-in, string-out SavedModel (see the module docstring)."""
    import keras
    import tensorflow as tf

    from ftk.tasks.causal_lm.chat import token_lists
    from ftk.tasks.causal_lm.model import PROMPT_BUCKET, max_prompt, sampler, use_sampler

    prefix_ids, suffix_ids = (
        token_lists(prep.tokenizer, [t])[0] if t else [] for t in fmt.affixes()
    )
    new_tokens = config.generate.max_new_tokens
    end = prep.tokenizer.end_token_id
    start = prep.tokenizer.start_token_id
    use_sampler(model, sampler(config.generate))
    prep.generate_preprocess(tf.constant(["build"]), sequence_length=8)  # lookup tables
    archive = keras.export.ExportArchive()
    # Only the preprocessor: add_endpoint tracks the variables the endpoint uses, and tracking
    # the model as well stores every weight twice (Keras 3.15).
    archive.track(prep)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=PROMPT_INPUT)])
    def serve(prompt):
        # [start] + the template's ids before the message + the prompt's + those after
        # (`served_prompt_ids`); the window: the longest, rounded up to a multiple of
        # PROMPT_BUCKET as `generate_ids` rounds it, capped at model.sequence_length; then the
        # new tokens.
        own = prep.tokenizer(prompt)
        own = own if isinstance(own, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(own)
        rows = own.nrows()

        def fixed(ids):
            block = tf.tile(tf.constant([ids], tf.int32), [rows, 1])
            return tf.RaggedTensor.from_tensor(tf.reshape(block, [rows, len(ids)]))

        head = ([] if start is None else [start]) + prefix_ids
        tokens = tf.concat([fixed(head), tf.cast(own, tf.int32), fixed(suffix_ids)], axis=1)
        longest = tf.cast(tf.reduce_max(tokens.row_lengths()), tf.int32)
        window = tf.minimum(
            (longest + PROMPT_BUCKET - 1) // PROMPT_BUCKET * PROMPT_BUCKET, max_prompt(config)
        )
        tokens = tokens[:, :window]
        length = window + new_tokens
        inputs = {
            "token_ids": tf.pad(
                tokens.to_tensor(default_value=0),
                [[0, 0], [0, length - tf.shape(tokens.to_tensor())[1]]],
            ),
            "padding_mask": tf.sequence_mask(tokens.row_lengths(), length),
        }
        out = model.generate_step(inputs, stop_token_ids=None if end is None else [end])
        ids = tf.cast(out["token_ids"], tf.int32)
        new = tf.logical_and(
            tf.cast(out["padding_mask"], tf.bool),
            tf.logical_not(tf.cast(inputs["padding_mask"], tf.bool)),
        )
        if end is not None:
            new = tf.logical_and(new, tf.not_equal(ids, end))
        ragged = tf.ragged.boolean_mask(ids, new)[:, :new_tokens]
        return {
            "text": prep.tokenizer.detokenize(ragged),
            "token_ids": ragged.to_tensor(default_value=-1),
        }

    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(path), verbose=False)


def save_preset(model, prep, path: Path) -> None:
    """The merged model and its tokenizer as a keras-hub preset directory. keras-hub 0.32
    leaves settings out of what it writes (keras-hub #3098: `tie_word_embeddings`; the
    tokenizer's start, end and other special tokens): the first two are written back, and all
    of the tokenizer's special tokens go to `ftk_tokenizer.json`, which `load_preset` reads."""
    model.preprocessor = prep
    try:
        model.save_to_preset(str(path))
    finally:
        model.preprocessor = None
    t = prep.tokenizer
    tokens = {k: v for k, v in (("bos_token", t.start_token), ("eos_token", t.end_token)) if v}
    write_json(
        path / TOKENIZER_FIX,
        {**tokens, "special_tokens": sorted(set(t.special_tokens) - set(tokens.values()))},
    )
    embedding = getattr(model.backbone, "token_embedding", None)
    tied = (
        {"tie_word_embeddings": bool(embedding.tie_weights)}
        if hasattr(embedding, "tie_weights")
        else {}
    )
    for name in ("config.json", "task.json", "preprocessor.json", "tokenizer.json"):
        file = path / name
        if file.is_file():
            saved = json.loads(file.read_text(encoding="utf-8"))
            _fill_configs(saved, "Backbone", tied)
            _fill_configs(saved, "Tokenizer", tokens)
            file.write_text(json.dumps(saved, indent=4), encoding="utf-8")


def load_preset(path: Path):
    """A preset directory written by `save_preset`, loaded with keras-hub on any backend:
    `CausalLM.from_preset` for the model, and its tokenizer rebuilt with the special tokens
    keras-hub 0.32 does not save (its `from_preset` alone stops at a Llama 3 tokenizer's
    missing `<|start_header_id|>`)."""
    import keras
    import keras_hub

    path = Path(path)
    lm = keras_hub.models.CausalLM.from_preset(str(path), preprocessor=None)
    fix = read_json(path / TOKENIZER_FIX)
    saved = read_json(path / "tokenizer.json")
    cls = keras.saving.get_registered_object(saved["registered_name"])
    kwargs = {"bos_token": fix["bos_token"], "eos_token": fix["eos_token"]}
    if "misc_special_tokens" in inspect.signature(cls).parameters:
        kwargs["misc_special_tokens"] = set(fix["special_tokens"])
    tokenizer = cls(
        vocabulary=str(path / "assets" / "tokenizer" / "vocabulary.json"),
        merges=str(path / "assets" / "tokenizer" / "merges.txt"),
        **kwargs,
    )
    lm.preprocessor = lm.preprocessor_cls(tokenizer=tokenizer)
    return lm


def _fill_configs(node, suffix: str, values: dict) -> None:
    """Put `values` into the config of every object whose class name ends with `suffix` in a
    saved keras-hub config tree (keeping what is there)."""
    if isinstance(node, dict):
        if str(node.get("class_name", "")).endswith(suffix) and "config" in node:
            for key, value in values.items():
                node["config"].setdefault(key, value)
        for value in node.values():
            _fill_configs(value, suffix, values)
    elif isinstance(node, list):
        for value in node:
            _fill_configs(value, suffix, values)


def export_onnx(preset: Path, staging: Path) -> dict:
    """`onnx/model.onnx` (+ `model.onnx.data`): the forward pass exported under the torch
    backend from the staged preset directory, in a subprocess capped at `ONNX_MEMORY_BYTES` of
    address space (tf2onnx needs more than 9 GB for a 135M model; torch's exporters 2.3-4.2 GB:
    docs/results/2026-12-03-lm-onnx.md). It checks itself against Keras on torch."""
    import os
    import resource
    import subprocess
    import sys

    from ftk.errors import ExportError
    from ftk.export.onnx import ONNX_DIR, ONNX_FILE
    from ftk.runtime.parent import child_env

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ONNX_MEMORY_BYTES, ONNX_MEMORY_BYTES))

    out = staging / ONNX_DIR / ONNX_FILE
    command = [sys.executable, "-m", "ftk.export.lm_onnx", str(preset), str(out)]
    done = subprocess.run(
        command,
        env=child_env({**os.environ, "KERAS_BACKEND": "torch"}),
        preexec_fn=cap,  # noqa: PLW1509 (a resource limit, set before exec)
        capture_output=True,
        text=True,
        timeout=ONNX_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise ExportError(
            f"The ONNX export (torch backend, {ONNX_MEMORY_BYTES / 1e9:.0f} GB cap) failed: "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    facts = json.loads(done.stdout[done.stdout.index("{") :])
    for key in ("path", "data_path"):  # the staging folder's: renamed when published
        facts.pop(key, None)
    return {**facts, "files": [f"{ONNX_DIR}/{ONNX_FILE}", f"{ONNX_DIR}/{ONNX_FILE}.data"]}


def reference_prompts(texts: list[str], n: int) -> list[str]:
    return [str(t) for t in texts[:n]]


def write_export(model, config, staging: Path, prompts: list[str]) -> None:
    """Every artifact above, and the verification reference: the Keras model's own
    generations for `prompts` (held-out user messages)."""
    from ftk.tasks.causal_lm.model import generate_ids

    prep, fmt = _context(config)
    wrapped = [fmt.prompt_text(p) for p in prompts]
    tokens = served_prompt_ids(prep, fmt, prompts)
    # The reference runs the generation loop as the SavedModel does: a TF graph without XLA
    # (XLA fuses differently, and a near-tie between two tokens can flip).
    model.jit_compile = False
    model.generate_function = None
    expected = generate_ids(model, prep, tokens, config)
    margins = [top2_margins(model, prep, t, e) for t, e in zip(tokens, expected, strict=True)]
    write_savedmodel(model, prep, fmt, config, staging)
    extra = staging / "assets.extra"
    extra.mkdir(exist_ok=True)
    generation = {
        "sampler": config.generate.sampler,
        "max_new_tokens": config.generate.max_new_tokens,
        "top_k": config.generate.top_k,
        "top_p": config.generate.top_p,
        "temperature": config.generate.temperature,
        "chat_template": fmt.name,
        "prompt_prefix": fmt.affixes()[0],
        "prompt_suffix": fmt.affixes()[1],
        "max_prompt_tokens": config.model.sequence_length,
    }
    write_json(extra / GENERATION, generation)
    sample = prep.generate_preprocess(wrapped[:2], sequence_length=32)
    logits = np.asarray(model.predict_on_batch(sample), np.float32)
    save_preset(model, prep, staging / PRESET_DIR)
    adapter = staging.parent / "adapter.weights.h5"  # the run directory stages the export
    if config.model.lora_rank and adapter.is_file():
        (staging / ADAPTER_DIR).mkdir()
        shutil.copy2(adapter, staging / ADAPTER_DIR / adapter.name)
    np.save(extra / "ftk_preset_logits.npy", logits, allow_pickle=False)
    if config.export.onnx:
        write_json(extra / "ftk_lm_onnx.json", export_onnx(staging / PRESET_DIR, staging))
    write_json(
        extra / REFERENCE,
        {
            "prompts": prompts,
            "token_ids": expected,
            "margins": margins,
            "near_tie": NEAR_TIE,
            "greedy": config.generate.sampler == "greedy",
            "preset_sample": {k: np.asarray(v).tolist() for k, v in sample.items()},
            "preset_texts": wrapped[:2],
            "tolerance": config.export.tolerance,
        },
    )


def served_prompt_ids(prep, fmt, prompts: list[str]) -> list[list[int]]:
    """The token ids the SavedModel gives raw prompts: the chat template's text before and
    after a user message tokenized once, here (keras-hub's tokenizer keeps special tokens such
    as `<|im_end|>` whole only when it runs eagerly, not inside a graph), around the prompt's
    own tokens (so special-token text typed into a prompt stays plain text)."""
    from ftk.tasks.causal_lm.chat import token_lists

    prefix, suffix = (token_lists(prep.tokenizer, [t])[0] if t else [] for t in fmt.affixes())
    return [prefix + own + suffix for own in token_lists(prep.tokenizer, prompts)]


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


def _compare(where: str, got_ids, expected: list[list[int]], margins=None) -> dict:
    """Token ids against Keras': equal, or equal up to a step where Keras' two best tokens
    were within `NEAR_TIE` of each other (float rounding may pick either; both are right)."""
    got = [[int(t) for t in row if t >= 0] for row in np.asarray(got_ids)]
    exact = ties = 0
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g == e:
            exact += 1
            continue
        first = next(
            (k for k, (a, b) in enumerate(zip(g, e, strict=False)) if a != b),
            min(len(g), len(e)),
        )
        gaps = (margins or [[]] * len(expected))[i]
        if first < len(gaps) and first < len(g) and gaps[first] < NEAR_TIE:
            ties += 1
            continue
        if g != e:
            raise VerificationError(
                f"{where}: prompt {i} generated different tokens than Keras from token {first} "
                f"on (got {g[first : first + 8]}, Keras {e[first : first + 8]})."
            )
    return {"exact": exact, "near_tie": ties}


def verify_export(version_dir: Path) -> dict:
    """Check the SavedModel (directly, REST row and columnar, gRPC, warm-up requests) and the
    preset directory against the Keras model's recorded generations and logits."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    from ftk.export import serving

    version_dir = Path(version_dir)
    ref = read_json(version_dir / "assets.extra" / REFERENCE)
    prompts, expected, margins = ref["prompts"], ref["token_ids"], ref.get("margins")
    inputs = {PROMPT_INPUT: np.asarray([p.encode() for p in prompts], dtype=object)}
    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures[serving.DEFAULT_SIGNATURE]
    result = {"examples": len(prompts), "greedy": ref["greedy"]}
    serving.check_ops(version_dir)
    out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    checks = {"savedmodel": out["token_ids"].numpy()}
    for fmt, columns in serving.rest_round_trips(loaded, inputs).items():
        checks[f"rest_{fmt}"] = _pad(columns["token_ids"])
    request = serving.predict_request(version_dir.parent.name, inputs)
    checks["grpc"] = serving.grpc_round_trip(loaded, request)["token_ids"]
    if ref["greedy"]:
        for name, ids in checks.items():
            counts = _compare(name, ids, expected, margins)
            result[f"{name}_exact"] = counts["exact"]
            result[f"{name}_near_tie"] = counts["near_tie"]
        if (version_dir / "assets.extra" / serving.WARMUP_FILE).exists():
            for i, request in enumerate(serving.read_warmup(version_dir)):
                got = serving.grpc_round_trip(loaded, request)["token_ids"]
                _compare(f"warm-up request {i}", got, expected[i : i + 1], margins[i : i + 1])
    result["texts"] = [t.decode("utf-8", "replace") for t in out["text"].numpy()]
    result["preset_max_abs_diff"] = verify_preset(version_dir / PRESET_DIR, version_dir, ref)
    onnx_path = version_dir / "onnx" / "model.onnx"
    if onnx_path.is_file():
        from ftk.export.lm_onnx import verify_lm_onnx

        sample = {k: np.asarray(v) for k, v in ref["preset_sample"].items()}
        expected_logits = np.load(version_dir / "assets.extra" / "ftk_preset_logits.npy")
        diff = verify_lm_onnx(onnx_path, sample, expected_logits)
        if diff > ONNX_TOLERANCE:
            raise VerificationError(
                f"ONNX logits are {diff:.3g} from the Keras model's (tolerance {ONNX_TOLERANCE})."
            )
        result["onnx_max_abs_diff"] = diff
    return result


def _pad(rows) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    return np.asarray([list(r) + [-1] * (width - len(r)) for r in rows], np.int32)


def verify_preset(preset: Path, version_dir: Path, ref: dict) -> float:
    """The preset directory, loaded back with keras-hub, gives the exported model's logits."""
    expected = np.load(version_dir / "assets.extra" / "ftk_preset_logits.npy")
    lm = load_preset(preset)
    sample = {k: np.asarray(v) for k, v in ref["preset_sample"].items()}
    sample["padding_mask"] = sample["padding_mask"].astype(bool)
    again = lm.preprocessor.generate_preprocess(ref["preset_texts"], sequence_length=32)
    if not np.array_equal(np.asarray(again["token_ids"]), sample["token_ids"]):
        raise VerificationError(f"The preset directory {preset} tokenizes differently.")
    lm.preprocessor = None  # the sample is token ids already
    got = np.asarray(lm.predict_on_batch(sample), np.float32)
    diff = float(np.max(np.abs(got - expected)))
    if diff > float(ref["tolerance"]):
        raise VerificationError(
            f"The preset directory {preset} reloads with logits {diff:.3g} away from the "
            "exported model's."
        )
    return diff
