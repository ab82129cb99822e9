"""The text regressor's exports: a SavedModel that takes raw text and returns the numbers,
and ONNX of the tensor model (token ids in, the numbers out) with its tokenizer.

`serving_default`: `text` (string `[batch]`; and `text_pair` for a pair model) -> `values`
(float32 `[batch, targets]`, in the order of `assets.extra/labels.txt`). The tokenizer runs in
the graph (keras-hub's preprocessor, tracked by the `keras.export.ExportArchive`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ftk.tasks.text_regression.pairs import PAIR_INPUT, TEXT_INPUT, text_tensors

OUTPUT = "values"


def values_head(outputs) -> dict:
    return {OUTPUT: tf.cast(outputs, tf.float32)}


def write_savedmodel(
    model, target_names: list[str], path: Path, pairs: bool, head=values_head
) -> None:
    """`head` maps the model's outputs to the signature's outputs (the multi-label task's
    gives probabilities and the labels predicted)."""
    import keras

    preprocessor = model.preprocessor
    preprocessor(tf.constant(["build"]))  # builds the tokenizer's lookup tables
    archive = keras.export.ExportArchive()
    archive.track(preprocessor)  # the model's variables are tracked through the endpoint

    def values(x):  # x=: keras-hub preprocessors read a positional tuple as (x, y)
        return head(model(preprocessor(x=x), training=False))

    text = tf.TensorSpec([None], tf.string, name=TEXT_INPUT)
    if pairs:
        pair = tf.TensorSpec([None], tf.string, name=PAIR_INPUT)
        serve = tf.function(lambda text, text_pair: values((text, text_pair)), [text, pair])
    else:
        serve = tf.function(lambda text: values(text), [text])
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "labels.txt").write_text("\n".join(target_names) + "\n", encoding="utf-8")


def write_onnx(model, inputs: list, path: Path, metadata: dict[str, str], head=values_head) -> None:
    """ONNX of the tensor model: `token_ids`, `segment_ids`, `padding_mask` -> `values` (or
    what `head` makes of the model's outputs)."""
    from ftk.export.onnx import convert_function, tensor_specs

    encoded = model.preprocessor(x=text_tensors(inputs[:2]))
    sample = {k: np.asarray(v) for k, v in encoded.items()}
    specs = tensor_specs(sample)
    names = [spec.name for spec in specs]

    @tf.function(input_signature=specs)
    def forward(*inputs):
        return head(model(dict(zip(names, inputs, strict=True)), training=False))

    convert_function(forward, specs, path, metadata)
