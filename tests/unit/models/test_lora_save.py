"""LoRA checkpoints under `mixed_bfloat16` keep float32 kernels (`ftk.models.lora_save`), so
a run that `precision = "auto"` puts in bfloat16 reloads its best checkpoint with the adapters
intact, and the merged export copy is exact."""

import h5py
import keras
import numpy as np
import pytest
from helpers import build_classifier

from ftk.models.lora import enable_lora, load_weights_keeping_lora, lora_layers, merge_lora
from ftk.models.lora_save import merged_kernel, needs_patch


@pytest.fixture
def bfloat16_lora_model(tiny_preset):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_classifier(tiny_preset)
        enable_lora(model, 2)
        rng = np.random.default_rng(0)
        for layer in lora_layers(model):
            for factor in (layer.lora_kernel_a, layer.lora_kernel_b):
                factor.assign(0.1 * rng.normal(size=factor.shape).astype("float32"))
        yield model
    finally:
        keras.config.set_dtype_policy(previous)


def test_keras_still_casts_the_merged_kernel_to_the_compute_dtype(bfloat16_lora_model):
    """What the patch is for: when this fails, Keras saves LoRA kernels in their own dtype and
    `ftk/models/lora_save.py` can go."""
    assert needs_patch()
    layer = lora_layers(bfloat16_lora_model)[0]
    assert layer.kernel.dtype == "bfloat16" and layer._kernel.dtype == "float32"


def test_checkpoint_under_mixed_bfloat16_holds_float32_kernels(bfloat16_lora_model, tmp_path):
    model = bfloat16_lora_model
    path = tmp_path / "bf16.weights.h5"
    model.save_weights(str(path))
    layer = lora_layers(model)[0]
    expected = keras.ops.convert_to_numpy(merged_kernel(layer))
    with h5py.File(path) as f:
        stored = [f[k][()] for k in _datasets(f) if f[k].shape == expected.shape]
    assert any(np.array_equal(s, expected) for s in stored)
    assert all(s.dtype == np.float32 for s in stored)
    factors = [keras.ops.convert_to_numpy(w) for w in (layer.lora_kernel_a, layer.lora_kernel_b)]
    product = factors[0].reshape(-1, factors[0].shape[-1]) @ factors[1]
    error = load_weights_keeping_lora(model, path)  # refused (error ~1e-2) before the patch
    assert error < 1e-5
    a = keras.ops.convert_to_numpy(layer.lora_kernel_a)
    b = keras.ops.convert_to_numpy(layer.lora_kernel_b)
    np.testing.assert_allclose(a.reshape(-1, a.shape[-1]) @ b, product, atol=1e-5)


def test_merge_takes_the_float32_sum(bfloat16_lora_model, tiny_preset):
    plain = build_classifier(tiny_preset)  # no LoRA; float32 variables under any policy
    merge_lora(bfloat16_lora_model, plain)
    pairs = zip(bfloat16_lora_model._flatten_layers(), plain._flatten_layers(), strict=True)
    merged = [(a, b) for a, b in pairs if getattr(a, "lora_enabled", False)]
    assert len(merged) == len(lora_layers(bfloat16_lora_model)) > 0
    for lora, target in merged:
        expected = keras.ops.convert_to_numpy(merged_kernel(lora))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(target._kernel), expected)


def _datasets(group, prefix=""):
    for key, item in group.items():
        name = f"{prefix}/{key}"
        if isinstance(item, h5py.Dataset):
            yield name
        else:
            yield from _datasets(item, name)
