"""ONNX export of the tensor model (token ids in, probabilities out) with tf2onnx.

Tokenisation stays outside ONNX (onnxruntime has no tensorflow-text ops); the preprocessor is
saved beside the model as a keras-hub preset so clients produce the same token ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

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
    import onnx
    import tf2onnx

    specs = tensor_specs(sample)
    names = [spec.name for spec in specs]

    @tf.function(input_signature=specs)
    def forward(*inputs):
        logits = model(dict(zip(names, inputs, strict=True)), training=False)
        return {OUTPUT: tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    path.parent.mkdir(parents=True, exist_ok=True)
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=specs, opset=OPSET)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))
