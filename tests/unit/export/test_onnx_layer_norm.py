"""The tf2onnx rewriter that exports Keras 3 layer norms as ONNX `LayerNormalization` nodes."""

import collections

import numpy as np
import pytest


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A small Keras model with layer norms the rewriter fuses and ones it must leave alone."""
    import keras
    import onnx
    import tensorflow as tf

    from ftk.export.onnx import convert_function

    inputs = keras.Input((5, 8))
    hidden = keras.layers.Dense(8)(inputs)
    hidden = keras.layers.LayerNormalization(epsilon=1e-6)(hidden)  # fused
    hidden = keras.layers.LayerNormalization(center=False)(hidden)  # no offset: left alone
    hidden = keras.layers.LayerNormalization(axis=1)(hidden)  # not the last axis: left alone
    model = keras.Model(inputs, hidden)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape))
    specs = [tf.TensorSpec([None, 5, 8], tf.float32, name="x")]

    @tf.function(input_signature=specs)
    def forward(x):
        return {"y": model(x)}

    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    convert_function(forward, specs, path, None)
    return model, path, collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_only_last_axis_layer_norms_with_scale_and_offset_are_fused(converted):
    _, _, ops = converted
    assert ops["LayerNormalization"] == 1
    assert ops["Reciprocal"] == 2  # the two unfused layer norms keep their own ops


def test_fused_model_matches_keras(converted):
    import onnxruntime as ort

    model, path, _ = converted
    x = np.random.default_rng(1).normal(size=(3, 5, 8)).astype("float32")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got[0], model(x).numpy(), atol=1e-5)
