"""The real EfficientNet-Lite0 weights: the converted model's ImageNet predictions on
scikit-image's sample photos; the image classifier built on it (input size, trainable policies,
BatchNorm kept in inference mode while the backbone is partly frozen) and its exports."""

import io
import json

import keras
import numpy as np
import pytest

from ftk.config import ModelConfig, TrainConfig
from ftk.errors import ConfigError, PresetError
from ftk.models.image import build_image_classifier
from ftk.models.trainable import TrainablePolicy, apply_trainable_policy, backbone_blocks
from ftk.presets.resolve import resolve_preset
from ftk.tasks.classification.losses import compile_classifier

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = (967, 968)  # espresso, cup


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    import os

    old = os.environ.get("FTK_CACHE")
    os.environ["FTK_CACHE"] = str(tmp_path_factory.mktemp("ftk-cache"))
    try:
        yield resolve_preset("efficientnet_lite0")
    finally:
        if old is None:
            os.environ.pop("FTK_CACHE")
        else:
            os.environ["FTK_CACHE"] = old


def test_builds_at_a_custom_size(lite0):
    model = build_image_classifier(lite0, ModelConfig(dropout=0.2), 4, (96, 96))
    assert model.preprocessor.image_converter.image_size == (96, 96)
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    assert model.predict(images, verbose=0).shape == (2, 4)
    with pytest.raises(PresetError, match="num_classes"):
        build_image_classifier(lite0, ModelConfig(), 1, (96, 96))
    with pytest.raises(PresetError, match="image_size"):
        build_image_classifier(lite0, ModelConfig(), 3, (8, 8))


def test_policies_and_batchnorm_inference_mode(lite0):
    model = build_image_classifier(lite0, ModelConfig(), 3, (64, 64))
    blocks = backbone_blocks(model.backbone)
    assert len(blocks) == 16  # EfficientNet-Lite0: 1 + 2 + 2 + 3 + 3 + 4 + 1
    head = apply_trainable_policy(model, TrainablePolicy.parse("head"))
    assert head["trainable"] == 1280 * 3 + 3
    everything = apply_trainable_policy(model, TrainablePolicy.parse("all"))
    last2 = apply_trainable_policy(model, TrainablePolicy.parse("last_n:2"))
    assert head["trainable"] < last2["trainable"] < everything["trainable"]
    bns = [la for la in model.backbone.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and not any(bn.trainable for bn in bns)
    assert model.backbone.get_layer("block7a_project").trainable
    assert not model.backbone.get_layer("block5a_project").trainable
    with pytest.raises(ConfigError, match="has 16"):
        apply_trainable_policy(model, TrainablePolicy.parse("last_n:17"))
    # "all" after "last_n": every layer trains again, BatchNorm too unless it is kept frozen.
    assert apply_trainable_policy(model, TrainablePolicy.parse("all")) == everything
    assert all(bn.trainable for bn in bns)
    frozen_bn = apply_trainable_policy(model, TrainablePolicy.parse("all"), freeze_batchnorm=True)
    assert not any(bn.trainable for bn in bns) and model.backbone.get_layer("stem_conv").trainable
    bn_params = sum(int(np.prod(w.shape)) for bn in bns for w in bn.trainable_weights)
    assert bn_params == 0 and frozen_bn["trainable"] < everything["trainable"]

    # One training step: trainable conv weights move, BatchNorm statistics do not.
    apply_trainable_policy(model, TrainablePolicy.parse("last_n:2"))
    compile_classifier(model, TrainConfig(learning_rate=1e-2))
    bn = model.backbone.get_layer("block7a_project_bn")
    conv = model.backbone.get_layer("block7a_project")
    mean_before, kernel_before = bn.moving_mean.numpy().copy(), conv.kernel.numpy().copy()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean_before)
    assert not np.array_equal(conv.kernel.numpy(), kernel_before)


def test_image_savedmodel_bytes_and_pixels_signatures_match_keras(lite0, tmp_path):

    import tensorflow as tf
    from PIL import Image

    from ftk.tasks.classification.savedmodel import decode_for_serving, write_image_savedmodel

    size = (64, 64)
    model = build_image_classifier(lite0, ModelConfig(), 3, size)
    rng = np.random.default_rng(0)
    encoded = []
    for mode, fmt in (("RGB", "PNG"), ("L", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG")):
        array = rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).convert(mode).save(buffer, format=fmt)
        encoded.append(buffer.getvalue())
    pixels = tf.stack([decode_for_serving(tf.constant(b), size) for b in encoded])
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(pixels.numpy(), verbose=0), axis=-1)
    )

    labels = ["ankle_boot", "bag", "coat"]
    write_image_savedmodel(model, labels, size, tmp_path / "1")
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-4)
    names = [labels[i].encode() for i in served["class_id"].numpy()]
    assert served["class_name"].numpy().tolist() == names
    from_pixels = loaded.signatures["serving_pixels"](pixels=pixels)
    np.testing.assert_allclose(from_pixels["probabilities"].numpy(), expected, atol=1e-4)
    assert (tmp_path / "1" / "assets.extra" / "labels.txt").read_text().split() == labels


def test_text_builder_rejects_an_image_backbone_clearly(lite0):
    from ftk.models.text import build_text_classifier

    with pytest.raises(PresetError, match=r"could not load a text classifier.*efficientnet_lite0"):
        build_text_classifier(lite0, ModelConfig(), 3)


def test_image_onnx_matches_keras(lite0, tmp_path):
    import json

    import onnx

    from ftk.tasks.classification.onnx import write_image_onnx
    from ftk.tasks.classification.verify import verify_onnx

    model = build_image_classifier(lite0, ModelConfig(), 3, (64, 64))
    pixels = np.random.default_rng(5).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(pixels, verbose=0), axis=-1)
    )
    path = tmp_path / "onnx" / "model.onnx"
    write_image_onnx(model, (64, 64), path, {"labels": json.dumps(["a", "b", "c"])})
    assert verify_onnx(path, {"pixels": pixels}, expected, 1e-4) <= 1e-4
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(props["labels"]) == ["a", "b", "c"]


def test_converted_model_classifies_sample_photos(tmp_path, monkeypatch):
    import keras
    import keras_hub
    import skimage.data

    monkeypatch.setenv("FTK_CACHE", str(tmp_path / "cache"))
    info = resolve_preset("efficientnet_lite0")
    assert info.kind == "offline" and info.checksum.startswith("sha256:")
    record = json.loads(
        (tmp_path / "cache").glob("presets/*/*/ftk_conversion.json").__next__().read_text()
    )
    assert record["weights_sha256"] == info.checksum
    model = keras_hub.models.ImageClassifier.from_preset(info.location)
    images = np.stack([skimage.data.chelsea()[:300, :400], skimage.data.coffee()[:300, :400]])
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(images.astype("float32"), verbose=0))
    )
    cat, coffee = probabilities.argmax(-1)
    assert cat in CAT_CLASSES and coffee in COFFEE_CLASSES

    # A second resolve reuses the finished conversion instead of writing it again.
    weights = next((tmp_path / "cache").glob("presets/*/*/model.safetensors"))
    mtime = weights.stat().st_mtime_ns
    assert resolve_preset("efficientnet_lite0").location == info.location
    assert weights.stat().st_mtime_ns == mtime
