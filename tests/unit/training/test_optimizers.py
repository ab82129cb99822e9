"""Discriminative learning rates: layer groups of keras-hub Tasks (BERT, ResNet, EfficientNet) and
`DiscriminativeAdamW` (each group moves at its own rate, decay included) on TensorFlow. The
backend-neutral checks here (`run_backend_checks`) also run on JAX (with the jitted stateless
path) and torch, and under `tf.distribute.MirroredStrategy`, in fresh processes:
tests/system/test_backend_checks.py."""

import keras
import numpy as np
import pytest

from ftk.errors import ConfigError
from ftk.training.optimizers import (
    LAYER_GROUPS,
    DiscriminativeAdamW,
    discriminative_multipliers,
    layer_groups,
)

LR = 0.01
LABELS = 3


# Backend-neutral checks: run in this process (TensorFlow) and in fresh JAX / torch processes.


def _adam_first_step(optimizer, grad, multiplier):
    """Adam's first step for gradient `g` at rate `lr * m`, as Keras computes it: about
    `-lr * m * sign(g)`. Keras takes `1 - beta_2 ** t` from float32 `beta_2` and the moments from
    the Python float, a 6e-6 relative difference this reproduces."""
    g = np.asarray(grad, np.float64)
    beta_1, beta_2 = optimizer.beta_1, optimizer.beta_2
    alpha = LR * multiplier * np.sqrt(1 - np.float32(beta_2)) / (1 - np.float32(beta_1))
    m, v = (1 - beta_1) * g, (1 - beta_2) * g**2
    return -alpha * m / (np.sqrt(v) + optimizer.epsilon)


def check_one_step():
    """One `apply` with known gradients: each group moves by its own `lr * m`."""
    rates = {"frozen": 0.0, "embeddings": 0.1, "lower": 0.5, "upper": 2.0, "unlisted": None}
    variables = {name: keras.Variable(np.zeros((2, 3), "float32"), name=name) for name in rates}
    optimizer = DiscriminativeAdamW(
        multipliers=[(variables[n], m) for n, m in rates.items() if m is not None],
        learning_rate=LR,
        weight_decay=0.0,
    )
    grad = np.array([[1.0, -2.0, 0.5], [3.0, -0.25, 4.0]], "float32")
    optimizer.apply([grad] * len(variables), list(variables.values()))
    for name, multiplier in rates.items():
        moved = keras.ops.convert_to_numpy(variables[name])
        m = 1.0 if multiplier is None else multiplier
        expected = _adam_first_step(optimizer, grad, m)
        np.testing.assert_allclose(moved, expected, rtol=1e-6, atol=0, err_msg=name)
        # |dw| == lr * m, up to Adam's epsilon and float32 rounding.
        np.testing.assert_allclose(np.abs(moved), LR * m, rtol=5e-5, atol=0, err_msg=name)


def check_weight_decay():
    """Decoupled decay uses each group's `lr * m` (a zero gradient isolates it: Adam moves 0)."""
    wd = 0.5
    rates = {"frozen": 0.0, "slow": 0.1, "fast": 2.0, "unlisted": None, "bias": 0.1}
    variables = {name: keras.Variable(np.ones((4,), "float32"), name=name) for name in rates}
    optimizer = DiscriminativeAdamW(
        multipliers=[(variables[n], m) for n, m in rates.items() if m is not None],
        learning_rate=LR,
        weight_decay=wd,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    optimizer.apply([np.zeros((4,), "float32")] * len(rates), list(variables.values()))
    for name, multiplier in rates.items():
        m = 1.0 if multiplier is None else multiplier
        expected = 1.0 if name == "bias" else 1.0 - wd * LR * m
        moved = keras.ops.convert_to_numpy(variables[name])
        np.testing.assert_allclose(moved, np.full(4, expected), rtol=1e-7, err_msg=name)


def check_matches_adamw():
    """Three steps with random gradients and decay: with every multiplier `m` it is AdamW at
    `lr * m`, `exclude_from_weight_decay` included."""
    rng = np.random.default_rng(0)
    shapes = {"kernel": (3, 2), "bias": (2,)}
    start = {name: rng.normal(size=shape).astype("float32") for name, shape in shapes.items()}
    # Tensors, not arrays: torch's own AdamW takes only tensors.
    steps = [
        [
            keras.ops.convert_to_tensor(rng.normal(size=shape), "float32")
            for shape in shapes.values()
        ]
        for _ in range(3)
    ]
    for m in (1.0, 0.5):
        results = []
        for make in (
            lambda vs, m=m: DiscriminativeAdamW(
                multipliers=[(v, m) for v in vs], learning_rate=LR, weight_decay=0.1
            ),
            lambda vs, m=m: keras.optimizers.AdamW(learning_rate=LR * m, weight_decay=0.1),
        ):
            variables = [keras.Variable(value, name=name) for name, value in start.items()]
            optimizer = make(variables)
            optimizer.exclude_from_weight_decay(var_names=["bias"])
            for grads in steps:
                optimizer.apply(grads, variables)
            results.append([keras.ops.convert_to_numpy(v) for v in variables])
        for ours, adamw in zip(*results, strict=True):
            np.testing.assert_allclose(ours, adamw, rtol=1e-6, atol=1e-7, err_msg=f"m={m}")


def check_fit():
    """`compile` + `fit`: a layer at multiplier 0.0 stays put, the others train."""
    inputs = keras.Input((4,))
    frozen = keras.layers.Dense(8, activation="relu", name="frozen")
    slow = keras.layers.Dense(8, activation="relu", name="slow")
    head = keras.layers.Dense(LABELS, name="head")
    model = keras.Model(inputs, head(slow(frozen(inputs))))
    optimizer = DiscriminativeAdamW(
        multipliers=[(v, 0.0) for v in frozen.weights] + [(v, 0.1) for v in slow.weights],
        learning_rate=LR,
        weight_decay=0.1,
    )
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, LABELS, 32)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(optimizer.iterations) == 4
    frozen_ids = {id(v) for v in frozen.weights}
    for v, start in zip(model.weights, before, strict=True):
        after = keras.ops.convert_to_numpy(v)
        if id(v) in frozen_ids:
            np.testing.assert_array_equal(after, start, err_msg=v.path)
        else:
            assert not np.allclose(after, start), v.path


def check_jax_stateless_jit():
    """The JAX trainer's path: `stateless_apply` under `jax.jit`."""
    import jax

    variables = [keras.Variable(np.zeros((3,), "float32")) for _ in range(2)]
    optimizer = DiscriminativeAdamW(
        multipliers=[(variables[0], 0.25)], learning_rate=LR, weight_decay=0.0
    )
    optimizer.build(variables)
    grad = np.array([1.0, -1.0, 2.0], "float32")
    new_values, _ = jax.jit(optimizer.stateless_apply)(
        [v.value for v in optimizer.variables], [grad, grad], [v.value for v in variables]
    )
    for value, m in zip(new_values, (0.25, 1.0), strict=True):
        expected = _adam_first_step(optimizer, grad, m)
        np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-6)


def run_backend_checks():
    check_one_step()
    check_weight_decay()
    check_matches_adamw()
    check_fit()
    if keras.backend.backend() == "jax":
        check_jax_stateless_jit()
    print("checks passed on", keras.backend.backend())


# Optimizer behaviour.


def test_each_group_moves_at_its_own_rate_on_tensorflow():
    # tests/system/test_backend_checks.py runs `run_backend_checks` on JAX and torch.
    assert keras.backend.backend() == "tensorflow"
    check_one_step()
    check_weight_decay()
    check_matches_adamw()


def test_fit_with_frozen_and_slow_layers():
    check_fit()


def test_rejects_bad_multipliers_and_has_a_plain_config():
    w = keras.Variable(np.zeros(2, "float32"), name="w")
    for bad in (-0.1, float("nan"), float("inf"), "fast"):
        with pytest.raises(ValueError, match="finite number >= 0"):
            DiscriminativeAdamW(multipliers=[(w, bad)])
    with pytest.raises(ValueError, match="two learning-rate multipliers"):
        DiscriminativeAdamW(multipliers=[(w, 0.1), (w, 0.2)])
    optimizer = DiscriminativeAdamW(multipliers=[(w, 0.1), (w, 0.1)], learning_rate=LR)
    assert optimizer._multiplier(w) == 0.1
    assert optimizer._multiplier(keras.Variable(np.zeros(2, "float32"))) == 1.0
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is DiscriminativeAdamW
    assert restored.get_config() == optimizer.get_config()
    assert restored._multiplier(w) == 1.0  # multipliers are not part of the config


# Layer groups.


def ids(variables) -> set[int]:
    return {id(v) for v in variables}


def weights_of(backbone, *names) -> set[int]:
    return {id(v) for name in names for v in backbone.get_layer(name).weights}


def assert_partition(model, groups) -> None:
    assert list(groups) == list(LAYER_GROUPS)
    every = [id(v) for name in LAYER_GROUPS for v in groups[name]]
    assert len(every) == len(set(every)) == len(ids(model.weights))
    assert set(every) == ids(model.weights)
    assert ids(groups["head"]) == ids(model.weights) - ids(model.backbone.weights)


def build_bert(tiny_preset, dropout=0.1):
    from ftk.config import ModelConfig
    from ftk.models.text import build_text_classifier
    from ftk.presets.resolve import resolve_preset

    info = resolve_preset(str(tiny_preset))
    return build_text_classifier(info, ModelConfig(sequence_length=16, dropout=dropout), LABELS)


def test_bert_groups(tiny_preset):
    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy

    model = build_bert(tiny_preset)
    groups = layer_groups(model)
    assert_partition(model, groups)
    backbone = model.backbone
    assert ids(groups["embeddings"]) == weights_of(
        backbone, "token_embedding", "position_embedding", "segment_embedding",
        "embeddings_layer_norm",
    )  # fmt: skip
    assert ids(groups["lower"]) == weights_of(backbone, "transformer_layer_0")
    assert ids(groups["upper"]) == weights_of(backbone, "transformer_layer_1", "pooled_dense")
    assert ids(groups["head"]) == ids(model.get_layer("logits").weights)
    # The upper half is what `last_n:1` trains in the backbone.
    apply_trainable_policy(model, TrainablePolicy.parse("last_n:1"))
    assert ids(backbone.trainable_weights) == ids(groups["upper"])

    multipliers = discriminative_multipliers(model, {"embeddings": 0.0, "upper": 0.5})
    assert [(id(v), m) for v, m in multipliers] == [(id(v), 0.0) for v in groups["embeddings"]] + [
        (id(v), 0.5) for v in groups["upper"]
    ]
    with pytest.raises(ConfigError, match="'encoder'"):
        discriminative_multipliers(model, {"encoder": 0.1})
    with pytest.raises(ConfigError, match="rates\\['head'\\]=-1"):
        discriminative_multipliers(model, {"head": -1})


def test_cnn_groups_resnet_odd_and_efficientnet():
    import keras_hub

    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy

    resnet = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 8],
        stackwise_num_blocks=[1, 2],  # 3 blocks: the middle one goes to upper
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(32, 32, 3),
    )
    model = keras_hub.models.ImageClassifier(backbone=resnet, num_classes=LABELS)
    groups = layer_groups(model)
    assert_partition(model, groups)
    assert ids(groups["embeddings"]) == weights_of(resnet, "conv1_conv", "conv1_bn")
    block = [la.name for la in resnet.layers if la.weights and la.name.startswith("stack")]
    assert ids(groups["lower"]) == weights_of(resnet, *[n for n in block if "stack0" in n])
    assert ids(groups["upper"]) == weights_of(resnet, *[n for n in block if "stack1" in n])

    stacks = 3
    efficientnet = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0] * stacks,
        stackwise_depth_coefficients=[1.0] * stacks,
        stackwise_kernel_sizes=[3] * stacks,
        stackwise_num_repeats=[1, 2, 1],  # blocks 1a | 2a || 2b, 3a
        stackwise_input_filters=[8, 8, 16],
        stackwise_output_filters=[8, 16, 16],
        stackwise_expansion_ratios=[1, 2, 2],
        stackwise_squeeze_and_excite_ratios=[0.25, 0.25, 0.0],
        stackwise_strides=[1, 2, 2],
        stackwise_block_types=["v1"] * stacks,
        stackwise_force_input_filters=[0] * stacks,
        stackwise_nores_option=[False] * stacks,
        num_features=32,
        input_shape=(32, 32, 3),
    )
    model = keras_hub.models.ImageClassifier(backbone=efficientnet, num_classes=LABELS)
    groups = layer_groups(model)
    assert_partition(model, groups)
    layers = [la.name for la in efficientnet.layers if la.weights]
    assert ids(groups["embeddings"]) == weights_of(efficientnet, "stem_conv", "stem_bn")
    below = [n for n in layers if n.startswith(("block1a", "block2a"))]
    above = [n for n in layers if n.startswith(("block2b", "block3a", "top_"))]
    assert ids(groups["lower"]) == weights_of(efficientnet, *below)
    assert ids(groups["upper"]) == weights_of(efficientnet, *above)
    apply_trainable_policy(model, TrainablePolicy.parse("last_n:2"))
    assert ids(efficientnet.trainable_weights) <= ids(groups["upper"])


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_bert_fit_with_discriminative_rates(tiny_preset):
    """The tiny BERT classifier trains with frozen embeddings and a slow lower half."""
    from helpers import make_rows

    keras.utils.set_random_seed(0)
    model = build_bert(tiny_preset, dropout=0.0)
    groups = layer_groups(model)
    rates = {"embeddings": 0.0, "lower": 0.1, "upper": 1.0, "head": 1.0}
    optimizer = DiscriminativeAdamW(
        multipliers=discriminative_multipliers(model, rates), learning_rate=1e-2
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # tracing BERT's train step would take most of the test's time
    )
    rows = make_rows(4)
    texts = [t for t, _ in rows]
    labels = np.array([sorted({y for _, y in rows}).index(y) for _, y in rows], "int32")
    before = {id(v): keras.ops.convert_to_numpy(v).copy() for v in model.weights}
    history = model.fit(texts, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    def moved(variable) -> bool:
        return not np.array_equal(keras.ops.convert_to_numpy(variable), before[id(variable)])

    assert not any(moved(v) for v in groups["embeddings"])
    for name in ("lower", "upper", "head"):
        assert all(moved(v) for v in groups[name] if v.trainable), name


# Checks in fresh processes (started by the first test).
