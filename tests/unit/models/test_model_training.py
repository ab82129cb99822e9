"""Model builder, trainable policies, training (learning, frozen weights, crash-resume)."""

import math

import keras
import numpy as np
import pytest
from helpers import build_classifier, examples

from ftk.config import TrainConfig
from ftk.data.text import to_dataset
from ftk.errors import ConfigError
from ftk.models.text import exact_gelu, use_exact_gelu
from ftk.models.trainable import TrainablePolicy, apply_trainable_policy
from ftk.tasks.classification.losses import compile_classifier


def test_policies_change_trainable_counts(tiny_preset):
    model = build_classifier(tiny_preset)
    head = apply_trainable_policy(model, TrainablePolicy.parse("head"))
    assert head["trainable"] == 16 * 3 + 3  # the logits layer only
    everything = apply_trainable_policy(model, TrainablePolicy.parse("all"))
    assert everything["trainable"] == everything["total"]
    last1 = apply_trainable_policy(model, TrainablePolicy.parse("last_n:1"))
    assert head["trainable"] < last1["trainable"] < everything["trainable"]
    layers = model.backbone.transformer_layers
    assert layers[-1].trainable and not layers[0].trainable
    assert not model.backbone.get_layer("token_embedding").trainable
    with pytest.raises(ConfigError, match="the backbone has 2"):
        apply_trainable_policy(model, TrainablePolicy.parse("last_n:3"))


def test_policy_parse_rejects_garbage():
    with pytest.raises(ConfigError, match="model.trainable"):
        TrainablePolicy.parse("last_n:x")


def test_exact_gelu_matches_erf_formula_and_is_installed(tiny_preset):
    x = np.linspace(-4, 4, 9).astype("float32")
    expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(exact_gelu(x)), expected, atol=1e-6)
    model = build_classifier(tiny_preset)
    assert use_exact_gelu(model.backbone) == 2
    dense = model.backbone.transformer_layers[0]._feedforward_intermediate_dense
    assert dense.activation is exact_gelu


def test_frozen_means_frozen_and_head_learns(tiny_preset):
    keras.utils.set_random_seed(1)
    model = build_classifier(tiny_preset, dropout=0.0)
    apply_trainable_policy(model, TrainablePolicy.parse("head"))
    compile_classifier(model, TrainConfig(learning_rate=1e-2))
    before = [w.numpy().copy() for w in model.backbone.weights]
    head_before = model.get_layer("logits").kernel.numpy().copy()
    history = model.fit(to_dataset(examples(), 8, 100, 0), epochs=3, verbose=0)
    after = [w.numpy() for w in model.backbone.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert not np.array_equal(head_before, model.get_layer("logits").kernel.numpy())
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_full_fine_tuning_learns(tiny_preset):
    keras.utils.set_random_seed(2)
    model = build_classifier(tiny_preset, dropout=0.0)
    apply_trainable_policy(model, TrainablePolicy.parse("all"))
    compile_classifier(model, TrainConfig(learning_rate=3e-3))
    history = model.fit(to_dataset(examples(), 8, 100, 0), epochs=5, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.7 * loss[0]
    test = examples(10, seed=99)
    predicted = model.predict(test.texts, verbose=0).argmax(-1)
    assert (predicted == test.labels).mean() > 0.5  # chance is 1/3


def test_best_checkpoint_is_the_lowest_loss_not_the_newest(tmp_path):
    from ftk.training.fit import best_checkpoint

    (tmp_path / "checkpoints").mkdir()
    assert best_checkpoint(tmp_path) is None
    # After a resume, Keras saves the first epoch again even if it is worse than before the crash.
    for name in (
        "epoch001-val_loss0.900000",
        "epoch002-val_loss0.400000",
        "epoch003-val_loss0.700000",
        "epoch004-val_lossnan",
    ):
        (tmp_path / "checkpoints" / f"{name}.weights.h5").write_bytes(b"")
    assert best_checkpoint(tmp_path).name == "epoch002-val_loss0.400000.weights.h5"
