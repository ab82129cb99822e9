"""LoRA with keras-hub's `enable_lora`: what trains, the adapter file, merging for export, and
the JAX / PyTorch backends."""

import h5py
import keras
import numpy as np
import pytest
from helpers import TINY_BACKBONE, build_classifier, examples, h5_names

from ftk.config import ModelConfig, TrainConfig
from ftk.data.text import to_dataset
from ftk.errors import ConfigError, ExportError
from ftk.models.lora import (
    enable_lora,
    load_adapter,
    load_weights_keeping_lora,
    lora_layers,
    lora_trainable,
    merge_lora,
    save_adapter,
)
from ftk.models.text import build_text_classifier
from ftk.models.trainable import TrainablePolicy, apply_trainable_policy, count_parameters
from ftk.presets.resolve import resolve_preset
from ftk.tasks.classification.losses import compile_classifier

RANK = 4
HEAD = TINY_BACKBONE["hidden_dim"] * 3 + 3  # logits kernel + bias


def lora_model(tiny_preset, rank=RANK):
    model = build_classifier(tiny_preset, dropout=0.0)
    enable_lora(model, rank)
    return model


def outputs(model, texts):
    return model.predict(texts, verbose=0)


def is_adapter(variable) -> bool:
    return "lora_kernel" in variable.path


@pytest.fixture(scope="module")
def trained(tiny_preset):
    """A LoRA model after a few steps, plus copies of every weight from before training."""
    keras.utils.set_random_seed(3)
    model = lora_model(tiny_preset)
    # Something unfroze every weight afterwards (a trainable policy, a callback...).
    apply_trainable_policy(model, TrainablePolicy.parse("all"))
    for w in model.weights:
        w.trainable = True
    lora_trainable(model)
    compile_classifier(model, TrainConfig(learning_rate=1e-2))
    before = {id(w): w.numpy().copy() for w in model.weights}
    model.fit(to_dataset(examples(10), 8, 100, 0), epochs=2, verbose=0)
    return model, before


def test_only_adapters_and_head_train_and_count_matches_the_shapes(tiny_preset):
    model = build_classifier(tiny_preset)
    total = count_parameters(model)["total"]
    counts = enable_lora(model, RANK)

    hidden, heads = TINY_BACKBONE["hidden_dim"], TINY_BACKBONE["num_heads"]
    head_dim = hidden // heads
    adapted = lora_layers(model)
    assert sorted(layer.name for layer in adapted) == ["query", "query", "value", "value"]
    for layer in adapted:
        # keras factorises only the kernel's last axis: A (hidden, heads, r), B (r, head_dim).
        assert tuple(layer.lora_kernel_a.shape) == (hidden, heads, RANK)
        assert tuple(layer.lora_kernel_b.shape) == (RANK, head_dim)
    per_layer = hidden * heads * RANK + RANK * head_dim
    expected = TINY_BACKBONE["num_layers"] * 2 * per_layer + HEAD
    assert counts == {"trainable": expected, "total": total + expected - HEAD}

    trainable = {w.path for w in model.trainable_weights}
    assert trainable == {w.path for w in model.weights if is_adapter(w)} | {
        "logits/kernel",
        "logits/bias",
    }
    # keras-hub's enable_lora leaves the query/value biases trainable; ftk freezes them.
    assert not any(layer.bias.trainable for layer in adapted)

    # Idempotent, and it restores the LoRA flags after anything that changed them.
    for policy in ("head", "all", "last_n:1"):
        apply_trainable_policy(model, TrainablePolicy.parse(policy))
        lora_trainable(model)
        lora_trainable(model)
        assert count_parameters(model)["trainable"] == expected, policy
    for w in model.weights:
        w.trainable = True
    assert count_parameters(model)["trainable"] == counts["total"]
    lora_trainable(model)
    assert count_parameters(model)["trainable"] == expected
    assert not any(layer.bias.trainable for layer in adapted)

    with pytest.raises(ConfigError, match="already enabled"):
        enable_lora(model, RANK)
    with pytest.raises(ConfigError, match=">= 1"):
        enable_lora(build_classifier(tiny_preset), 0)
    with pytest.raises(ConfigError, match="not enabled"):
        lora_trainable(build_classifier(tiny_preset))


def test_training_moves_adapters_and_head_only(trained):
    model, before = trained
    frozen = [w for w in model.backbone.weights if not is_adapter(w)]
    assert len(frozen) > 30
    for w in frozen:
        np.testing.assert_array_equal(w.numpy(), before[id(w)], err_msg=w.path)
    for layer in lora_layers(model):
        for w in (layer.lora_kernel_a, layer.lora_kernel_b):
            assert not np.array_equal(w.numpy(), before[id(w)]), w.path
        assert np.abs(layer.lora_kernel_b.numpy()).max() > 0  # starts at zero
    logits = model.get_layer("logits")
    assert not np.array_equal(logits.kernel.numpy(), before[id(logits.kernel)])
    assert not np.array_equal(logits.bias.numpy(), before[id(logits.bias)])


def test_adapter_round_trip_reproduces_the_trained_model(trained, tiny_preset, tmp_path):
    model, _ = trained
    texts = examples(4, seed=7).texts
    path = save_adapter(model, tmp_path / "sub" / "adapter.h5")
    assert path == tmp_path / "sub" / "adapter.h5"
    assert sorted(p.name for p in path.parent.iterdir()) == ["adapter.h5"]  # no temp left

    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "ftk-lora-adapter"
        assert f.attrs["rank"] == RANK and f.attrs["num_variables"] == 4 * 2 + 2
        keys = sorted(f["weights"])
        assert sum(k.endswith(".lora_kernel_a") for k in keys) == 4
        head = [k for k in keys if f["weights"][k].attrs["path"].startswith("logits/")]
        assert [k.split(".", 1)[1] for k in head] == ["Dense.bias", "Dense.kernel"]
        size = sum(f["weights"][k].size for k in keys)
        assert size == count_parameters(model)["trainable"]
        kernel = f["weights"][head[1]]
        assert list(kernel.attrs["shape"]) == [16, 3] and kernel.attrs["dtype"] == "float32"

    fresh = lora_model(tiny_preset)
    assert not np.allclose(
        fresh.get_layer("logits").kernel.numpy(), model.get_layer("logits").kernel.numpy()
    )
    load_adapter(fresh, path)
    np.testing.assert_allclose(outputs(fresh, texts), outputs(model, texts), atol=1e-6)

    with pytest.raises(ExportError, match="adapter.h5"):
        save_adapter(model, path)
    with pytest.raises(ConfigError, match="rank 4"):
        load_adapter(lora_model(tiny_preset, rank=2), path)
    with pytest.raises(ConfigError, match="not enabled"):
        load_adapter(build_classifier(tiny_preset), path)
    other = build_text_classifier(resolve_preset(str(tiny_preset)), ModelConfig(), 5)
    enable_lora(other, RANK)
    with pytest.raises(ConfigError, match="other shapes"):
        load_adapter(other, path)
    with pytest.raises(ConfigError, match="No LoRA adapter"):
        load_adapter(fresh, tmp_path / "missing.h5")


def test_merged_plain_model_matches_and_has_no_lora(trained, tiny_preset):
    model, _ = trained
    texts = examples(4, seed=8).texts
    plain = build_classifier(tiny_preset, dropout=0.0)
    query = plain.backbone.transformer_layers[0]._self_attention_layer._query_dense
    pretrained = query.kernel.numpy().copy()
    assert merge_lora(model, plain) == 4
    assert not lora_layers(plain)
    assert not any("lora" in w.path for w in plain.weights)
    assert not np.allclose(query.kernel.numpy(), pretrained)
    np.testing.assert_allclose(outputs(plain, texts), outputs(model, texts), atol=1e-4)
    with pytest.raises(ConfigError, match="plain_model"):
        merge_lora(model, model)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_keras_weights_file_of_a_lora_model_holds_merged_kernels(trained, tiny_preset, tmp_path):
    """What a run's `model.weights.h5` holds: keras saves `layer.kernel` (merged) and no LoRA
    factors, so the export's plain rebuild + `load_weights` works. Loading it back into a LoRA
    model zeroes both factors (A = B = 0 gets no gradient: adapters stop learning)."""
    model, _ = trained
    texts = examples(4, seed=9).texts
    model.save_weights(str(tmp_path / "model.weights.h5"))
    names = h5_names(tmp_path / "model.weights.h5")
    assert names and not any("lora" in name for name in names)
    plain = build_classifier(tiny_preset, dropout=0.0)
    plain.load_weights(str(tmp_path / "model.weights.h5"))
    np.testing.assert_allclose(outputs(plain, texts), outputs(model, texts), atol=1e-6)
    again = lora_model(tiny_preset)
    again.load_weights(str(tmp_path / "model.weights.h5"))
    for layer in lora_layers(again):
        assert not layer.lora_kernel_a.numpy().any() and not layer.lora_kernel_b.numpy().any()

    # load_weights_keeping_lora: the frozen kernel stays, the delta goes back into A and B.
    kept = lora_model(tiny_preset)
    frozen = [layer._kernel.numpy().copy() for layer in lora_layers(kept)]
    assert load_weights_keeping_lora(kept, tmp_path / "model.weights.h5") < 1e-5
    for layer, kernel, trained_layer in zip(
        lora_layers(kept), frozen, lora_layers(model), strict=True
    ):
        np.testing.assert_array_equal(layer._kernel.numpy(), kernel)
        np.testing.assert_allclose(layer.kernel.numpy(), trained_layer.kernel.numpy(), atol=1e-6)
        assert np.abs(layer.lora_kernel_b.numpy()).max() > 0
    np.testing.assert_allclose(outputs(kept, texts), outputs(model, texts), atol=1e-5)
    with pytest.raises(ConfigError, match="not this model's frozen kernel"):
        load_weights_keeping_lora(lora_model(tiny_preset, rank=1), tmp_path / "model.weights.h5")


def test_a_backbone_without_attention_is_refused():
    import keras_hub

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(16, 16, 3),
    )
    model = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=2)
    before = count_parameters(model)
    message = (
        "`model.lora_rank` needs a backbone with attention layers keras-hub can adapt "
        "(query/value); ResNetBackbone has none. Received: model.lora_rank=8"
    )
    with pytest.raises(ConfigError) as error:
        enable_lora(model, 8)
    assert str(error.value) == message
    assert count_parameters(model) == before  # refused before keras-hub froze anything
