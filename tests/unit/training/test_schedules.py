"""Learning-rate schedules: values against the formulas (computed here in float64 numpy), an
optimizer driven by them, serialisation and config errors (on JAX and PyTorch:
tests/system/test_backend_checks.py, with `CASES` and `expected_lr` from here).

Keras computes schedules in float32, so values are compared to `rel=1e-7` or, where that is
below float32 resolution (the tail of a decay to 0 loses relative precision to cancellation in
`1 + cos(x)`), to 2e-7 of the peak rate: under two float32 epsilons of the peak."""

import json

import keras
import numpy as np
import pytest

from ftk.errors import ConfigError
from ftk.training.schedules import (
    SCHEDULES,
    OneCycle,
    Warmup,
    learning_rate_at,
    learning_rate_schedule,
)

# (schedule, learning_rate, total_steps, warmup_steps, decay_to)
CASES = [
    ("constant", 3e-4, 100, 0, 0.0),
    ("constant", 3e-4, 100, 10, 0.0),
    ("linear", 3e-4, 100, 0, 0.0),
    ("linear", 2e-5, 100, 10, 0.1),
    ("exponential", 3e-4, 100, 0, 0.1),
    ("exponential", 1e-3, 100, 12, 0.01),
    ("cosine", 3e-4, 100, 0, 0.0),
    ("cosine", 5e-5, 100, 10, 0.1),
    ("one_cycle", 1e-3, 100, 0, 0.0),
    ("one_cycle", 3e-4, 100, 10, 0.1),
]


def case_id(case) -> str:
    name, lr, total, warmup, decay_to = case
    return f"{name}-lr{lr:g}-T{total}-w{warmup}-to{decay_to:g}"


def expected_lr(name, lr, total_steps, warmup_steps, decay_to, step) -> float:
    """The formula, written out independently of ftk.training.schedules, in float64."""
    lr, decay_to, step = np.float64(lr), np.float64(decay_to), np.float64(step)
    if name == "one_cycle":
        w = warmup_steps if warmup_steps > 0 else round(0.25 * total_steps)
        start = lr / 25
        final = lr * decay_to if decay_to > 0 else lr / 25e4
        if step < w:
            return float(start + (lr - start) * 0.5 * (1 - np.cos(np.pi * step / w)))
        span = total_steps - w
        t = np.clip(step - w, 0, span)
        return float(final + (lr - final) * 0.5 * (1 + np.cos(np.pi * t / span)))
    w = warmup_steps
    if step < w:
        return float(lr * step / w)
    span = total_steps - w
    t = np.clip(step - w, 0, span)
    if name == "constant":
        return float(lr)
    if name == "linear":
        return float(lr * (1 - (1 - decay_to) * t / span))
    if name == "exponential":
        return float(lr * decay_to ** (t / span))
    if name == "cosine":
        return float(lr * (decay_to + (1 - decay_to) * 0.5 * (1 + np.cos(np.pi * t / span))))
    raise AssertionError(name)


def close_to(expected: float, lr: float):
    return pytest.approx(expected, rel=1e-7, abs=2e-7 * lr)


def check_steps(case) -> list[int]:
    """0, mid-warmup, end of warmup, the middle of the decay, the last step, and beyond."""
    name, _, total, warmup, _ = case
    w = warmup if name != "one_cycle" or warmup else round(0.25 * total)
    steps = {0, 1, w // 2, max(w - 1, 0), w, w + 1, (w + total) // 2, total - 1, total}
    return sorted(steps | {total + 1, total + 10, 10 * total})


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_values_match_formula(case):
    schedule = learning_rate_schedule(*case)
    _, lr, total, _, _ = case
    for step in check_steps(case):
        actual = learning_rate_at(schedule, step)
        assert actual == close_to(expected_lr(*case, step), lr), (case, step)
    # After total_steps every schedule holds its final value.
    final = learning_rate_at(schedule, total)
    assert learning_rate_at(schedule, total + 1) == final
    assert learning_rate_at(schedule, 10 * total) == final


def test_end_points():
    lr = 1e-3
    for name, decay_to, end in [
        ("linear", 0.1, 1e-4),
        ("linear", 0.0, 0.0),
        ("exponential", 0.1, 1e-4),
        ("cosine", 0.1, 1e-4),
        ("cosine", 0.0, 0.0),
        ("one_cycle", 0.1, 1e-4),
        ("one_cycle", 0.0, lr / 25e4),
    ]:
        schedule = learning_rate_schedule(name, lr, 50, 5, decay_to)
        warmup_start = lr / 25 if name == "one_cycle" else 0.0
        assert learning_rate_at(schedule, 0) == close_to(warmup_start, lr), name
        assert learning_rate_at(schedule, 5) == close_to(lr, lr), name
        assert learning_rate_at(schedule, 50) == close_to(end, lr), name


def test_keras_classes_are_used():
    schedules = keras.optimizers.schedules
    assert learning_rate_schedule("constant", 1e-3, 100) == 1e-3
    assert isinstance(learning_rate_schedule("constant", 1e-3, 100), float)
    assert isinstance(learning_rate_schedule("linear", 1e-3, 100), schedules.PolynomialDecay)
    cosine = learning_rate_schedule("cosine", 1e-3, 100, 10, 0.1)
    assert isinstance(cosine, schedules.CosineDecay)
    assert cosine.get_config() | {"name": None} == {
        "initial_learning_rate": 0.0,
        "decay_steps": 90,
        "alpha": 0.1,
        "warmup_target": 1e-3,
        "warmup_steps": 10,
        "name": None,
    }
    linear = learning_rate_schedule("linear", 1e-3, 100, 10)
    assert isinstance(linear, Warmup) and isinstance(linear.schedule, schedules.PolynomialDecay)
    exponential = learning_rate_schedule("exponential", 1e-3, 100, 0, 0.5)
    assert isinstance(exponential, Warmup)
    assert isinstance(exponential.schedule, schedules.ExponentialDecay)
    assert isinstance(learning_rate_schedule("one_cycle", 1e-3, 100), OneCycle)


def test_one_cycle_default_warmup_is_a_quarter():
    schedule = learning_rate_schedule("one_cycle", 1e-3, 100)
    assert schedule.warmup_steps == 25
    rates = [learning_rate_at(schedule, step) for step in range(101)]
    assert int(np.argmax(rates)) == 25
    assert rates[25] == close_to(1e-3, 1e-3)
    assert rates[0] == close_to(1e-3 / 25, 1e-3)
    assert np.all(np.diff(rates[:26]) > 0) and np.all(np.diff(rates[25:]) < 0)


def test_one_step_run_ignores_warmup():
    for name in SCHEDULES:
        schedule = learning_rate_schedule(name, 1e-3, 1, warmup_steps=3, decay_to=0.5)
        for step in (0, 1, 2):
            expected = expected_lr(name, 1e-3, 1, 0, 0.5, step)
            assert learning_rate_at(schedule, step) == close_to(expected, 1e-3), (name, step)


@pytest.mark.parametrize("case", CASES[1:], ids=case_id)
def test_serialisation_round_trip(case):
    schedule = learning_rate_schedule(*case)
    config = json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    restored = keras.optimizers.schedules.deserialize(config)
    assert type(restored) is type(schedule)
    for step in check_steps(case):
        assert learning_rate_at(restored, step) == learning_rate_at(schedule, step)


def test_custom_schedules_are_registered():
    assert keras.saving.get_registered_name(Warmup) == "ftk>Warmup"
    assert keras.saving.get_registered_name(OneCycle) == "ftk>OneCycle"


def tiny_model(schedule) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule), loss="mse")
    return model


@pytest.mark.parametrize(
    "case",
    [
        ("linear", 1e-2, 20, 4, 0.1),
        ("exponential", 1e-2, 20, 4, 0.1),
        ("cosine", 1e-2, 20, 4, 0.0),
        ("one_cycle", 1e-2, 20, 4, 0.0),
    ],
    ids=case_id,
)
def test_schedule_drives_optimizer(case, tmp_path):
    _, lr, _, _, _ = case
    model = tiny_model(learning_rate_schedule(*case))
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    for k in range(1, 8):
        model.train_on_batch(x, y)
        assert int(model.optimizer.iterations) == k
        current = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        assert current == close_to(expected_lr(*case, k), lr), k
    # A saved model keeps its schedule and step.
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert int(loaded.optimizer.iterations) == 7
    current = float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate))
    assert current == close_to(expected_lr(*case, 7), lr)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"name": "cosin"},
            "`train.schedule` must be one of constant, linear, exponential, cosine, one_cycle. "
            "Received: train.schedule='cosin'",
        ),
        ({"total_steps": 0}, "`total_steps` must be >= 1 .* Received: total_steps=0"),
        ({"total_steps": 10.0}, "`total_steps` must be an integer. Received: total_steps=10.0"),
        ({"warmup_steps": -1}, "`train.warmup_steps` must be >= 0 .* train.warmup_steps=-1"),
        (
            {"warmup_steps": 100},
            r"`train.warmup_steps` must be < the number of training steps \(total_steps=100\). "
            "Received: train.warmup_steps=100",
        ),
        ({"warmup_steps": 1.5}, "`train.warmup_steps` must be an integer"),
        ({"decay_to": 1.0}, r"`train.decay_to` must be in \[0, 1\) .* train.decay_to=1.0"),
        ({"decay_to": -0.1}, r"`train.decay_to` must be in \[0, 1\) .* train.decay_to=-0.1"),
        (
            {"name": "exponential", "decay_to": 0.0},
            "`train.decay_to` must be > 0 for train.schedule='exponential'. "
            "Received: train.decay_to=0.0",
        ),
        ({"learning_rate": 0.0}, "`train.learning_rate` must be > 0"),
        ({"learning_rate": "1e-3"}, "`train.learning_rate` must be a number"),
    ],
)
def test_config_errors(kwargs, message):
    arguments = {
        "name": "cosine",
        "learning_rate": 1e-3,
        "total_steps": 100,
        "warmup_steps": 0,
        "decay_to": 0.1,
    }
    with pytest.raises(ConfigError, match=message):
        learning_rate_schedule(**(arguments | kwargs))


def test_learning_rate_at_checks_its_arguments():
    assert learning_rate_at(1e-3, 5) == 1e-3
    with pytest.raises(ValueError, match="`step` must be an integer >= 0"):
        learning_rate_at(1e-3, -1)
    with pytest.raises(TypeError, match="`schedule` must be"):
        learning_rate_at("1e-3", 0)
