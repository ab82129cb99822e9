"""Learning-rate schedules for fine-tuning, built from Keras' own schedule classes.

`learning_rate_schedule` turns the `train.schedule`, `train.learning_rate`,
`train.warmup_steps` and `train.decay_to` settings into what a Keras optimizer takes as
`learning_rate`: a float (constant, no warmup) or a `keras.optimizers.schedules`
`LearningRateSchedule`. `step` is the optimizer's iteration count, starting at 0. With
`w = warmup_steps`, `T = total_steps - w` and `t = clip(step - w, 0, T)`:

- warmup (constant, linear, exponential, cosine): `lr * step / w` for `step < w`.
- `constant`: `lr`.
- `linear`: `lr * (1 - (1 - decay_to) * t / T)`, a `PolynomialDecay(power=1)`.
- `exponential`: `lr * decay_to ** (t / T)`, an `ExponentialDecay` (`decay_to` must be > 0).
- `cosine`: `lr * (decay_to + (1 - decay_to) * 0.5 * (1 + cos(pi * t / T)))`, a `CosineDecay`
  with its built-in warmup (`initial_learning_rate=0.0, warmup_target=lr, alpha=decay_to`).
- `one_cycle` (Smith; fastai's `fit_one_cycle`): over `w` steps (`round(0.25 * total_steps)`
  when `w == 0`) a cosine rise from `lr / 25` to `lr`, then a cosine anneal to `lr * decay_to`
  (to `lr / 25e4`, fastai's default end, when `decay_to == 0`).

Every schedule reaches its final value at `step == total_steps` and stays there. A one-step run
(`total_steps == 1`) has no room to warm up, so `warmup_steps` is ignored for it.

Keras computes schedules in float32, so values match these formulas to float32 precision.

Example:

>>> import keras
>>> schedule = learning_rate_schedule("cosine", 1e-3, total_steps=1000, warmup_steps=100)
>>> optimizer = keras.optimizers.AdamW(learning_rate=schedule)
>>> round(learning_rate_at(schedule, 50), 10)  # half-way through the warmup
0.0005
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from ftk.config import SCHEDULES
from ftk.errors import ConfigError

ONE_CYCLE_DIV = 25.0  # fastai's div: one_cycle starts at lr / 25
ONE_CYCLE_FINAL_DIV = 25e4  # fastai's div_final: one_cycle ends at lr / 25e4 when decay_to == 0
ONE_CYCLE_WARMUP_FRACTION = 0.25  # fastai's pct_start, used when warmup_steps == 0

_LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="ftk")
class Warmup(_LearningRateSchedule):
    """A linear warmup from 0 to `schedule(0)` over `warmup_steps`, then `schedule`.

    After the warmup, `schedule` is called with `t = clip(step - warmup_steps, 0, decay_steps)`,
    so it starts at its own step 0 and holds its value at `decay_steps` from then on.

    Args:
        schedule: a `LearningRateSchedule`, or a float for a constant rate.
        warmup_steps: optimizer steps to warm up over (0: no warmup, only the hold).
        decay_steps: the step of `schedule` after which the rate stays constant.
        name: name of the operation.
    """

    def __init__(self, schedule, warmup_steps: int, decay_steps: int, name: str = "Warmup"):
        super().__init__()
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            if isinstance(self.schedule, _LearningRateSchedule):
                peak = ops.convert_to_tensor(self.schedule(0))
            else:
                peak = ops.convert_to_tensor(float(self.schedule))
            dtype = peak.dtype
            step = ops.cast(step, dtype)
            t = ops.clip(step - float(self.warmup_steps), 0.0, float(self.decay_steps))
            if isinstance(self.schedule, _LearningRateSchedule):
                decayed = ops.cast(self.schedule(t), dtype)
            else:
                decayed = peak
            if self.warmup_steps == 0:
                return decayed
            warm = peak * step / float(self.warmup_steps)
            return ops.where(step < float(self.warmup_steps), warm, decayed)

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, _LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="ftk")
class OneCycle(_LearningRateSchedule):
    """The one-cycle policy: a cosine rise, then a cosine anneal.

    With `w = warmup_steps`, `T = total_steps - w` and `t = clip(step - w, 0, T)`:

    - `step < w`: `start + (peak - start) * 0.5 * (1 - cos(pi * step / w))`,
      with `start = max_learning_rate / div_factor`;
    - otherwise: `final + (peak - final) * 0.5 * (1 + cos(pi * t / T))`.

    Args:
        max_learning_rate: the peak rate, reached at `step == warmup_steps`.
        total_steps: the step at which the rate reaches `final_learning_rate` (held after).
        warmup_steps: steps of the rise; 0 starts at the peak.
        final_learning_rate: the rate at the end.
        div_factor: the rate at step 0 is `max_learning_rate / div_factor`.
        name: name of the operation.
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        warmup_steps: int,
        final_learning_rate: float,
        div_factor: float = ONE_CYCLE_DIV,
        name: str = "OneCycle",
    ):
        super().__init__()
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                "Argument `warmup_steps` must be in [0, total_steps). "
                f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.final_learning_rate = final_learning_rate
        self.div_factor = div_factor
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            peak = ops.convert_to_tensor(float(self.max_learning_rate))
            dtype = peak.dtype
            step = ops.cast(step, dtype)
            pi = ops.cast(math.pi, dtype)
            w = float(self.warmup_steps)
            decay_steps = float(self.total_steps - self.warmup_steps)
            final = ops.cast(float(self.final_learning_rate), dtype)
            t = ops.clip(step - w, 0.0, decay_steps)
            anneal = final + (peak - final) * 0.5 * (1.0 + ops.cos(pi * t / decay_steps))
            if self.warmup_steps == 0:
                return anneal
            start = ops.cast(float(self.max_learning_rate) / float(self.div_factor), dtype)
            rise_fraction = ops.clip(step, 0.0, w) / w
            rise = start + (peak - start) * 0.5 * (1.0 - ops.cos(pi * rise_fraction))
            return ops.where(step < w, rise, anneal)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_learning_rate": self.final_learning_rate,
            "div_factor": self.div_factor,
            "name": self.name,
        }


def _check_number(key: str, value, integer: bool = False) -> None:
    kinds = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = "an integer" if integer else "a number"
        raise ConfigError(f"`{key}` must be {expected}. Received: {key}={value!r}")


def _validate(name, learning_rate, total_steps, warmup_steps, decay_to) -> None:
    def fail(key: str, value, expected: str) -> None:
        raise ConfigError(f"`{key}` must be {expected}. Received: {key}={value!r}")

    if name not in SCHEDULES:
        fail("train.schedule", name, f"one of {', '.join(SCHEDULES)}")
    _check_number("train.learning_rate", learning_rate)
    _check_number("total_steps", total_steps, integer=True)
    _check_number("train.warmup_steps", warmup_steps, integer=True)
    _check_number("train.decay_to", decay_to)
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        fail("train.learning_rate", learning_rate, "> 0")
    if total_steps < 1:
        fail("total_steps", total_steps, ">= 1 (the number of optimizer steps in training)")
    if warmup_steps < 0:
        fail("train.warmup_steps", warmup_steps, ">= 0 (0 = no warmup)")
    if total_steps > 1 and warmup_steps >= total_steps:
        fail(
            "train.warmup_steps",
            warmup_steps,
            f"< the number of training steps (total_steps={total_steps})",
        )
    if not 0.0 <= decay_to < 1.0:
        fail(
            "train.decay_to", decay_to, "in [0, 1) (the fraction of the peak rate left at the end)"
        )
    if name == "exponential" and decay_to == 0:
        fail("train.decay_to", decay_to, "> 0 for train.schedule='exponential'")


def learning_rate_schedule(
    name: str,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    decay_to: float = 0.0,
):
    """Returns a float (constant, no warmup) or a keras LearningRateSchedule.

    Args:
        name: one of `SCHEDULES` (the `train.schedule` setting).
        learning_rate: the peak learning rate (`train.learning_rate`).
        total_steps: optimizer steps in the whole run; the rate holds its final value after.
        warmup_steps: steps of warmup before the decay (`train.warmup_steps`); for `one_cycle`,
            0 means `round(0.25 * total_steps)`. Ignored when `total_steps == 1`.
        decay_to: the fraction of `learning_rate` left at the end, in [0, 1)
            (`train.decay_to`); > 0 for `exponential`.

    Raises:
        ConfigError: for an unknown name or an argument out of range.
    """
    _validate(name, learning_rate, total_steps, warmup_steps, decay_to)
    lr, decay_to = float(learning_rate), float(decay_to)
    total_steps, warmup_steps = int(total_steps), int(warmup_steps)
    if total_steps == 1:
        warmup_steps = 0
    schedules = keras.optimizers.schedules

    if name == "one_cycle":
        if warmup_steps == 0:
            warmup_steps = round(ONE_CYCLE_WARMUP_FRACTION * total_steps)
        final = lr * decay_to if decay_to > 0 else lr / ONE_CYCLE_FINAL_DIV
        return OneCycle(lr, total_steps, warmup_steps, final)

    decay_steps = total_steps - warmup_steps
    if name == "cosine":
        if warmup_steps == 0:
            return schedules.CosineDecay(lr, decay_steps, alpha=decay_to)
        # `initial_learning_rate` must be a float: with the int 0 (as in Keras' own example),
        # the whole schedule is computed in int32 and is 0 at every step (or fails under TF).
        return schedules.CosineDecay(
            0.0, decay_steps, alpha=decay_to, warmup_target=lr, warmup_steps=warmup_steps
        )
    if name == "constant":
        return lr if warmup_steps == 0 else Warmup(lr, warmup_steps, decay_steps)
    if name == "linear":
        linear = schedules.PolynomialDecay(lr, decay_steps, end_learning_rate=lr * decay_to)
        # PolynomialDecay holds its end value by itself.
        return linear if warmup_steps == 0 else Warmup(linear, warmup_steps, decay_steps)
    # exponential: ExponentialDecay keeps decaying past decay_steps; Warmup holds the end value.
    exponential = schedules.ExponentialDecay(lr, decay_steps, decay_rate=decay_to)
    return Warmup(exponential, warmup_steps, decay_steps)


def learning_rate_at(schedule, step: int) -> float:
    """The learning rate a schedule (or float) gives at `step`, as a Python float.

    `schedule` is what `learning_rate_schedule` returns (or any Keras `learning_rate`: a
    number, a `LearningRateSchedule` or a callable of the step); `step` is the optimizer
    iteration, from 0.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"`step` must be an integer >= 0. Received: step={step!r}")
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        return float(schedule)
    if callable(schedule):
        return float(ops.convert_to_numpy(schedule(int(step))))
    raise TypeError(
        "`schedule` must be a number or a keras LearningRateSchedule. "
        f"Received: schedule={schedule!r}"
    )
