"""LR finder: the sweep and its per-batch losses, the suggestion rule, divergence, exact
restoration of the model (plain Keras and keras-hub), the plot, and argument errors."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import build_classifier, examples
from PIL import Image

from ftk.config import TrainConfig
from ftk.data.text import to_dataset
from ftk.errors import ConfigError, DataError
from ftk.models.trainable import TrainablePolicy, apply_trainable_policy
from ftk.tasks.classification.losses import compile_classifier
from ftk.training.lr_find import (
    ExponentialSweep,
    LrFindResult,
    batch_losses,
    centered_average,
    lr_find,
    smooth,
    suggest,
    sweep_steps,
)
from ftk.training.lr_plot import plot_lr_find


def blobs(n=512, seed=0):
    """Three well-separated Gaussian clusters in 10-D (linearly separable)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 10)) * 3
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(size=(n, 10))).astype("float32"), y.astype("int32")


def dense_model(seed=0, batch_norm=True, dropout=0.0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((10,)), keras.layers.Dense(32, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential([*layers, keras.layers.Dense(3)])


def cross_entropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def adam(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=cross_entropy())


def sgd(model, learning_rate):
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=cross_entropy())


def dataset(x, y, batch_size):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def state(model) -> list[np.ndarray]:
    """Every variable's value: weights, BatchNorm statistics, dropout seed states."""
    return [np.array(v.numpy(), copy=True) for v in model.variables]


def assert_identical(before, after):
    assert len(before) == len(after)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


# -- the sweep on a real (small) problem ---------------------------------------------------------


def test_adam_suggestion_is_in_a_sane_range():
    # One full batch of 512 examples, so the per-batch loss has no batch-to-batch noise and the
    # steepest descent of the smoothed loss is the real one. Adam moves each weight by about the
    # learning rate per step; 1e-4 .. 1e-1 is the range Adam is used in for a small dense net
    # (default 1e-3). Over 12 model and data seeds this sweep suggested 8.9e-3 .. 1.5e-2.
    x, y = blobs()
    model = dense_model()
    result = lr_find(model, dataset(x, y, 512), adam)
    assert result.rule == "steepest"
    assert 1e-4 < result.suggestion < 1e-1
    assert result.suggestion == result.steepest < result.minimum_tenth * 10
    assert len(result.losses) == len(result.learning_rates) == len(result.smoothed) == 100
    assert result.losses[-1] < 0.2 * result.losses[0]  # it learned during the sweep
    assert result.learning_rates[0] == pytest.approx(1e-7)
    assert result.learning_rates[-1] == pytest.approx(1.0)
    ratios = np.diff(np.log(result.learning_rates))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # exponential in the step
    assert json.loads(json.dumps(result.to_json(), allow_nan=False))["rule"] == "steepest"


def test_per_batch_losses_equal_an_independent_replay():
    # Keras passes on_train_batch_end the epoch's running mean; lr_find recovers each batch's
    # loss. Replay the sweep step by step on a copy of the model and compute each batch's loss
    # before its update, independently (no BatchNorm or dropout: train loss = inference loss).
    x, y = blobs(64)
    model = dense_model(batch_norm=False)
    model.compile(loss=cross_entropy())
    first_loss = model.evaluate(x[:16], y[:16], verbose=0, return_dict=True)["loss"]
    twin = dense_model(batch_norm=False)
    twin.set_weights(model.get_weights())
    steps, start, end = 30, 1e-4, 1e-1
    result = lr_find(model, dataset(x, y, 16), adam, start_lr=start, end_lr=end, steps=steps)

    twin.compile(
        optimizer=keras.optimizers.Adam(ExponentialSweep(start, end, steps)), loss=cross_entropy()
    )
    expected = []
    for step in range(steps):
        xb, yb = x[16 * (step % 4) : 16 * (step % 4 + 1)], y[16 * (step % 4) : 16 * (step % 4 + 1)]
        logits = twin(xb, training=True)
        expected.append(
            float(np.mean(keras.losses.sparse_categorical_crossentropy(yb, logits, True)))
        )
        twin.train_on_batch(xb, yb)
    assert result.losses[0] == pytest.approx(first_loss, abs=1e-5)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5, atol=1e-5)
    # ... and they are not the running means: late in the sweep the two differ a lot.
    running_mean = np.cumsum(expected) / np.arange(1, steps + 1)
    assert abs(running_mean[-1] - result.losses[-1]) > 0.1


def test_stops_early_once_the_loss_diverges():
    # Random labels: not separable, so huge steps give huge logits on the wrong class.
    x, _ = blobs(256)
    y = np.random.default_rng(1).integers(0, 3, 256).astype("int32")
    model = dense_model(batch_norm=False)
    before = state(model)
    result = lr_find(model, dataset(x, y, 64), sgd, start_lr=1e-3, end_lr=1e4, steps=100)
    assert result.stopped_early
    assert len(result.losses) < 100
    smoothed = result.running  # the running average is what stops the sweep
    last = smoothed[-1]
    assert not math.isfinite(last) or last > 4.0 * min(smoothed[:-1])
    # It stopped at the first point past the threshold, not later.
    assert all(s <= 4.0 * min(smoothed[: i + 1]) for i, s in enumerate(smoothed[:-1]))
    assert 1e-3 <= result.suggestion < result.learning_rates[-1]
    assert_identical(before, state(model))
    json.dumps(result.to_json(), allow_nan=False)  # non-finite values become null


# -- the model is never changed ------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [True, False])
def test_every_variable_and_the_compile_state_are_restored(compiled):
    x, y = blobs(256)
    model = dense_model(batch_norm=True, dropout=0.2)
    if compiled:
        sgd(model, 0.01)
        model.fit(
            dataset(x, y, 64), epochs=1, shuffle=False, verbose=0
        )  # the optimizer now has state
        optimizer, loss = model.optimizer, model.loss
        optimizer_state = [np.array(v.numpy(), copy=True) for v in optimizer.variables]
    weights, variables = model.get_weights(), state(model)
    trainable = [v.trainable for v in model.weights]

    result = lr_find(model, dataset(x, y, 32), adam, steps=30)

    assert result.losses[-1] != result.losses[0]  # the sweep trained the model
    assert_identical(weights, model.get_weights())  # incl. BatchNorm moving statistics
    assert_identical(variables, state(model))  # incl. the dropout layer's seed state
    assert [v.trainable for v in model.weights] == trainable
    assert model.compiled == compiled
    if compiled:
        assert model.optimizer is optimizer and model.loss is loss
        assert_identical(optimizer_state, [v.numpy() for v in optimizer.variables])
        # TensorFlow checkpoints (and SavedModel exports) track the original optimizer again.
        assert model._self_unconditional_dependency_names["optimizer"] is optimizer
        history = model.fit(
            dataset(x, y, 64), epochs=1, shuffle=False, verbose=0
        )  # still trains as before
        assert math.isfinite(history.history["loss"][0])
        assert int(optimizer.iterations) == 8
    else:
        assert "optimizer" not in model._self_unconditional_dependency_names


def test_keras_hub_classifier_is_restored_bit_for_bit(tiny_preset):
    keras.utils.set_random_seed(0)
    model = build_classifier(tiny_preset)  # dropout on: its seed states must come back too
    weights, variables = model.get_weights(), state(model)
    trainable = [v.trainable for v in model.weights]
    optimizer = model.optimizer

    def head_only(m, learning_rate):  # like the runner: a trainable policy, then compile
        apply_trainable_policy(m, TrainablePolicy.parse("head"))
        compile_classifier(m, TrainConfig(learning_rate=learning_rate))

    result = lr_find(model, to_dataset(examples(), 8, 100, 0), head_only, steps=20)

    assert len(result.losses) == 20 and all(math.isfinite(v) for v in result.losses)
    assert result.rule in ("steepest", "minimum_tenth")
    assert_identical(weights, model.get_weights())
    assert_identical(variables, state(model))
    assert [v.trainable for v in model.weights] == trainable  # "all" again, not "head"
    assert model.backbone.trainable
    assert model.optimizer is optimizer


def test_a_nan_loss_at_the_first_step_is_a_data_error_and_the_model_is_restored():
    x, y = blobs(64)
    x[:] = np.nan
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])  # relu(nan) may be 0
    before = state(model)
    with pytest.raises(DataError, match="first step"):
        lr_find(model, dataset(x, y, 16), adam, steps=10)
    assert_identical(before, state(model))


# -- the pieces ----------------------------------------------------------------------------------


def test_batch_losses_from_running_means():
    losses = [2.0, 1.0, 3.0, 0.5]
    means = np.cumsum(losses) / np.arange(1, 5)
    assert batch_losses(means, [1, 2, 3, 4]) == pytest.approx(losses)
    # Several steps per call (steps_per_execution): the mean loss of each call's steps.
    assert batch_losses([means[1], means[3]], [2, 4]) == pytest.approx([1.5, 1.75])
    with pytest.raises(ValueError, match="increase"):
        batch_losses([1.0, 1.0], [2, 2])


def test_centered_average_does_not_lag():
    losses = [5.0, 4.0, 3.0, 2.0, 1.0, 2.0, 3.0]
    centered = centered_average(losses, half_width=1)
    assert centered == pytest.approx([4.5, 4.0, 3.0, 2.0, 5 / 3, 2.0, 2.5])
    assert int(np.argmin(centered)) == 4  # the minimum stays where it is
    assert int(np.argmin(smooth(losses, 0.9))) > 4  # a running average's minimum comes later
    assert centered_average([1.0, float("nan"), 3.0], half_width=1) == pytest.approx([1, 2, 3])


def test_smoothing_is_the_bias_corrected_moving_average():
    assert smooth([3.0] * 5, 0.98) == pytest.approx([3.0] * 5)  # no bias towards 0
    losses, beta = [1.0, 2.0, 0.5], 0.9
    avg, expected = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        expected.append(avg / (1 - beta ** (i + 1)))
    assert smooth(losses, beta) == pytest.approx(expected)
    assert smooth(losses, 0.0) == pytest.approx(losses)


LRS = np.geomspace(1e-7, 1.0, 100)


def test_suggest_steepest_descent_before_the_minimum():
    # Falls fastest at 1e-3, bottoms out at ~1e-1, then rises.
    log_lr = np.log10(LRS)
    loss = 2.0 - 1.5 / (1 + np.exp(-3 * (log_lr + 3))) + np.where(log_lr > -1, (log_lr + 1) ** 2, 0)
    suggestion, rule, steepest, minimum_tenth = suggest(LRS, loss)
    assert rule == "steepest" and suggestion == steepest
    assert steepest == pytest.approx(1e-3, rel=0.2)
    assert minimum_tenth == pytest.approx(LRS[np.argmin(loss)] / 10)


def test_suggest_skips_early_noise_and_falls_back_to_minimum_tenth():
    # A dip in the first 10% of the points (noise while nothing is learned) is not the steepest.
    loss = np.linspace(2.0, 1.0, 100)
    loss[10:] -= 0.5 * np.linspace(0, 1, 90) ** 2  # falls fastest at the end
    loss[1] -= 0.5
    suggestion, rule, steepest, minimum_tenth = suggest(LRS, loss)
    assert rule == "steepest" and steepest >= LRS[10]
    # Descent only inside the first 10%, then flat: nothing to suggest but minimum / 10.
    loss = np.full(30, 1.0)
    loss[:3] = [2.0, 1.5, 1.0]
    suggestion, rule, steepest, minimum_tenth = suggest(LRS[:30], loss)
    assert rule == "minimum_tenth" and suggestion == minimum_tenth == LRS[2] / 10
    # The minimum is the first point: no descent, no steepest.
    suggestion, rule, steepest, _ = suggest(LRS[:20], np.linspace(1.0, 5.0, 20))
    assert math.isnan(steepest) and rule == "minimum_tenth" and suggestion == LRS[0] / 10
    # A NaN tail (the loss blew up) is ignored.
    loss = np.linspace(2.0, 1.0, 100)
    loss[-3:] = np.nan
    assert suggest(LRS, loss)[3] == pytest.approx(LRS[-4] / 10)
    with pytest.raises(DataError, match="no finite loss"):
        suggest(LRS[:3], [np.nan] * 3)


def test_sweep_schedule():
    schedule = ExponentialSweep(1e-6, 1e-2, 9)
    values = [float(schedule(step)) for step in range(9)]
    np.testing.assert_allclose(values, np.geomspace(1e-6, 1e-2, 9), rtol=1e-5)
    assert schedule.value(8) == pytest.approx(1e-2)
    assert ExponentialSweep.from_config(schedule.get_config()).get_config() == {
        "start_lr": 1e-6,
        "end_lr": 1e-2,
        "steps": 9,
    }


# -- the plot ------------------------------------------------------------------------------------


def a_result(stopped_early=False) -> LrFindResult:
    lrs = list(np.geomspace(1e-7, 1.0, 60))
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) for lr in lrs]
    if stopped_early:
        losses[-2:] = [50.0, math.nan]
    smoothed = smooth(losses, 0.9)
    suggestion, rule, steepest, minimum_tenth = suggest(lrs, smoothed)
    return LrFindResult(
        lrs, losses, smoothed, suggestion, rule, steepest, minimum_tenth, stopped_early
    )


@pytest.mark.parametrize("stopped_early", [False, True])
def test_plot_is_a_png_of_the_figure_size(tmp_path, stopped_early):
    path = plot_lr_find(a_result(stopped_early), tmp_path / "lr_find.png")
    assert path == tmp_path / "lr_find.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (800, 500)  # 8 x 5 inches at 100 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["lr_find.png"]  # no temporary file left
    small = plot_lr_find(a_result(), tmp_path / "sub" / "small.png", size=(4, 3), dpi=50)
    with Image.open(small) as image:
        assert image.size == (200, 150)


def test_plot_needs_a_png_path(tmp_path):
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_lr_find(a_result(), tmp_path / "lr_find.svg")


# -- argument errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 0.0}, "start_lr=0.0"),
        ({"start_lr": -1e-5}, "0 < start_lr < end_lr"),
        ({"start_lr": 1e-2, "end_lr": 1e-3}, "end_lr=0.001"),
        ({"start_lr": 1e-3, "end_lr": 1e-3}, "0 < start_lr < end_lr"),
        ({"end_lr": math.inf}, "end_lr=inf"),
        ({"start_lr": "1e-5"}, "start_lr='1e-5'"),
        ({"steps": 9}, "steps=9"),
        ({"steps": 50.0}, "integer >= 10"),
        ({"steps": True}, "steps=True"),
        ({"smoothing": 1.0}, "smoothing=1.0"),
        ({"diverge": 1.0}, "diverge=1.0"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, message):
    x, y = blobs(32)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lr_find(dense_model(), dataset(x, y, 8), adam, **kwargs)


def test_bad_model_or_dataset():
    x, y = blobs(32)
    with pytest.raises(ConfigError, match="tf.data.Dataset"):
        lr_find(dense_model(), (x, y), adam)
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ConfigError, match="must be built"):
        lr_find(unbuilt, dataset(x, y, 8), adam)
    model = dense_model()
    before = state(model)
    with pytest.raises(DataError, match="empty"):
        lr_find(model, dataset(x, y, 8).take(0), adam)
    assert_identical(before, state(model))


def test_sweep_steps_are_sized_to_the_data():
    assert sweep_steps(100, 5) == 20  # 40 examples at batch 8: at least 20 steps
    assert sweep_steps(100, 25) == 50  # 200 examples at batch 8: at most 2 passes
    assert sweep_steps(100, 200) == 100  # plenty of data: the steps asked for
    assert sweep_steps(12, 5) == 12  # fewer asked for than the minimum: those
    with pytest.raises(ConfigError, match="batches"):
        sweep_steps(100, 0)


def test_a_sweep_that_stops_early_ends_its_bar_and_record_there(capsys):
    # As in test_lr_find's divergence test: random labels, huge rates.
    x, _ = blobs(256)
    y = np.random.default_rng(1).integers(0, 3, 256).astype("int32")
    capsys.readouterr()
    result = lr_find(
        dense_model(batch_norm=False),
        dataset(x, y, 64),
        sgd,
        start_lr=1e-3,
        end_lr=1e4,
        steps=100,
        verbose=2,
    )
    out = capsys.readouterr().out
    ran = len(result.losses)
    assert result.stopped_early and ran < 100
    # Keras' bar would jump to 100/100 here; it ends at the step the sweep stopped at.
    assert f"{ran}/{ran} " in out and "/100" not in out
    assert (result.to_json()["steps"], result.to_json()["steps_run"]) == (100, ran)
