"""ONNX export of the tensor model with tf2onnx: token ids or float pixels in, probabilities out.

Tokenisation stays outside ONNX (onnxruntime has no tensorflow-text ops); the preprocessor is
saved beside the model as a keras-hub preset so clients produce the same token ids. Image
decoding stays outside too; the backbone's normalisation is inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

OPSET = 17
ONNX_DIR = "onnx"  # in an export version: <version>/onnx/model.onnx
ONNX_FILE = "model.onnx"


def tensor_specs(sample: dict) -> list[tf.TensorSpec]:
    """Named `[batch, sequence]` specs for a preprocessed batch (`token_ids`, ...)."""
    return [
        tf.TensorSpec([None, None], tf.as_dtype(np.asarray(value).dtype), name=name)
        for name, value in sorted(sample.items())
    ]


def convert_function(forward, specs, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Convert a `tf.function` (`specs`: its input signature) to ONNX at `path` with tf2onnx and
    ftk's layer-norm rewriter; `metadata` goes into the model's `metadata_props`."""
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

    # Weights stored as external data stay where they are: only the graph file is rewritten.
    proto = onnx.load_model(str(path), load_external_data=False)
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))
