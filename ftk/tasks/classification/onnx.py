"""ONNX models of classifiers: token ids or float pixels in, `probabilities` out. The
preprocessor is saved beside a text model as a keras-hub preset so clients produce the same
token ids; image decoding stays outside, the backbone's normalisation is inside.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from ftk.export.onnx import convert_function, tensor_specs
from ftk.tasks.classification.savedmodel import probabilities_of


def write_text_onnx(
    model, sample: dict, path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write `model` (the Keras tensor model) to `path` as ONNX; `sample` fixes input names.

    `metadata` goes into the model's `metadata_props` (for example the label names as JSON).
    """
    specs = tensor_specs(sample)
    names = [spec.name for spec in specs]

    @tf.function(input_signature=specs)
    def forward(*inputs):
        logits = model(dict(zip(names, inputs, strict=True)), training=False)
        return {"probabilities": probabilities_of(logits)}

    convert_function(forward, specs, path, metadata)


def write_image_onnx(
    model, image_size: tuple[int, int], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write an image classifier to `path` as ONNX: `pixels` (float32 `[batch, h, w, 3]`, RGB in
    [0, 255]) -> `probabilities`. The backbone's normalisation is inside; decoding is not."""
    specs = [tf.TensorSpec([None, *image_size, 3], tf.float32, name="pixels")]

    @tf.function(input_signature=specs)
    def forward(pixels):
        logits = model(model.preprocessor(pixels), training=False)
        return {"probabilities": probabilities_of(logits)}

    convert_function(forward, specs, path, metadata)
