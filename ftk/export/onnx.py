"""ONNX export of the tensor model with tf2onnx: token ids or float pixels in, probabilities out.

Tokenisation stays outside ONNX (onnxruntime has no tensorflow-text ops); the preprocessor is
saved beside the model as a keras-hub preset so clients produce the same token ids. Image
decoding stays outside too; the backbone's normalisation is inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ftk.export.savedmodel import probabilities_of

OPSET = 17
OUTPUT = "probabilities"


def tensor_specs(sample: dict) -> list[tf.TensorSpec]:
    """Named `[batch, sequence]` specs for a preprocessed batch (`token_ids`, ...)."""
    return [
        tf.TensorSpec([None, None], tf.as_dtype(np.asarray(value).dtype), name=name)
        for name, value in sorted(sample.items())
    ]


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
        return {OUTPUT: probabilities_of(logits)}

    _convert(forward, specs, path, metadata)


def write_image_onnx(
    model, image_size: tuple[int, int], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write an image classifier to `path` as ONNX: `pixels` (float32 `[batch, h, w, 3]`, RGB in
    [0, 255]) -> `probabilities`. The backbone's normalisation is inside; decoding is not."""
    specs = [tf.TensorSpec([None, *image_size, 3], tf.float32, name="pixels")]

    @tf.function(input_signature=specs)
    def forward(pixels):
        logits = model(model.preprocessor(pixels), training=False)
        return {OUTPUT: probabilities_of(logits)}

    _convert(forward, specs, path, metadata)


def _convert(forward, specs, path: Path, metadata: dict[str, str] | None) -> None:
    import onnx
    import tf2onnx

    from ftk.export.layer_norm import rewrite_layer_norm

    path.parent.mkdir(parents=True, exist_ok=True)
    proto, _ = tf2onnx.convert.from_function(
        forward, input_signature=specs, opset=OPSET, custom_rewriter=[rewrite_layer_norm]
    )
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))


def add_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Add (or replace) `metadata_props` entries of the ONNX model at `path`."""
    import onnx

    proto = onnx.load_model(str(path))
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))
