"""Exports of a fine-tuned causal language model, each verified before it is published:

- the SavedModel (TF Serving): `serving_default` takes `prompt` strings (the chat template,
  tokenizer, generation loop and detokenizer are in the graph) and returns the generated
  `text` and its `token_ids` (`-1` after the end);
- `preset/`: the merged model and its tokenizer as a keras-hub preset directory
  (`keras_hub.models.CausalLM.from_preset("preset")` on any backend);
- `adapter/adapter.weights.h5`: the LoRA factors alone (LoRA runs), loadable with
  `ftk.models.lora.load_adapter` on a model built with the same preset and rank;
- `assets.extra/generation.json`: the sampler settings the SavedModel generates with.

The verification reference written here (the Keras model's own `generate` on held-out prompts,
and its logits on a sample) is what `ftk.tasks.causal_lm.verify` checks every artifact against.
Runs under the TensorFlow backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ftk.files import write_json

PROMPT_INPUT = "prompt"
REFERENCE = "ftk_generation_reference.json"
GENERATION = "generation.json"
PRESET_DIR = "preset"
NEAR_TIE = 1e-3  # logits this close at a step may come out in either order across runtimes
ONNX_MEMORY_BYTES = 9_000_000_000
ONNX_TIMEOUT_S = 1800
ADAPTER_DIR = "adapter"
SIGNATURE = {
    "inputs": {PROMPT_INPUT: "DT_STRING [-1]"},
    "outputs": {"text": "DT_STRING [-1]", "token_ids": "DT_INT32 [-1, -1]"},
}


def write_savedmodel(model, prep, fmt, config, path: Path) -> None:
    """The string-in, string-out SavedModel (see the module docstring)."""
    import keras
    import tensorflow as tf

    from ftk.tasks.causal_lm.model import PROMPT_BUCKET, max_prompt, sampler, use_sampler

    prefix_ids, suffix_ids = affix_ids(prep, fmt)
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


def write_export(model, config, staging: Path, prompts: list[str]) -> None:
    """Every artifact above, and the verification reference: the Keras model's own
    generations for `prompts` (held-out user messages)."""
    from ftk.tasks.causal_lm.model import chat_context, generate_ids, top2_margins
    from ftk.tasks.causal_lm.preset import save_preset

    prep, fmt = chat_context(config)
    prefix, suffix = fmt.affixes()
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
        "prompt_prefix": prefix,
        "prompt_suffix": suffix,
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

    prefix, suffix = affix_ids(prep, fmt)
    return [prefix + own + suffix for own in token_lists(prep.tokenizer, prompts)]


def affix_ids(prep, fmt) -> tuple[list[int], list[int]]:
    """The token ids of the chat template's text before and after a user message, tokenized
    eagerly (special tokens kept whole)."""
    from ftk.tasks.causal_lm.chat import token_lists

    return tuple(token_lists(prep.tokenizer, [t])[0] if t else [] for t in fmt.affixes())
