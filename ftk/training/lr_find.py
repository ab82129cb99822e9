"""Learning-rate finder (Smith 2015, "Cyclical Learning Rates for Training Neural Networks";
fastai's `lr_find`) for keras-hub task models.

The learning rate grows exponentially from `start_lr` to `end_lr` over `steps` training steps
(`sweep_steps` sizes them to the data: at most two passes, at least 20 steps) on the real
training data, with the run's own optimizer and loss (`compile_fn`). The per-batch training
loss is recorded and smoothed; the sweep stops once the smoothed loss is `diverge` times its
minimum (or not finite). Afterwards the model is exactly as it was: every
variable (trainable, non-trainable such as BatchNorm statistics, and dropout seed states) is
restored bit for bit, along with its compile state, trainable flags and regularizers.

Typical use:

>>> compile_fn = lambda m, lr: compile_classifier(m, dataclasses.replace(train, learning_rate=lr))
>>> result = lr_find(model, train_ds, compile_fn)
>>> result.suggestion, result.rule   # e.g. (3.1e-4, "steepest")
>>> plot_lr_find(result, run_dir / "lr_find.png")   # ftk.training.lr_plot
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import keras
import numpy as np

from ftk.errors import ConfigError, DataError

RULES = ("steepest", "minimum_tenth")
START_LR, END_LR = 1e-7, 1.0
# The sweep sized to the data (`sweep_steps`): at most SWEEP_PASSES passes over the training
# set (in the first pass each loss is measured on batches the model has not trained on yet;
# later passes mostly measure memorization, and cost time), but at least MIN_SWEEP_STEPS steps:
# over 1e-7 .. 1 that is a factor of 2.3 between neighbouring rates (0.78 decades at 10 steps,
# where the suggestion is a coarse grid point).
SWEEP_PASSES = 2
MIN_SWEEP_STEPS = 20
# `steepest` is searched after this leading fraction of the sweep's points: there the
# bias-corrected average is still mostly the first few (noisy) batches (fastai skips them too).
EARLY_FRACTION = 0.1


@dataclasses.dataclass
class LrFindResult:
    """One sweep. `learning_rates[i]` is the rate of the step whose training loss (before that
    step's update) is `losses[i]`; `smoothed` is their centered moving average
    (`centered_average`), `running` the bias-corrected running average that stops the sweep.

    `suggestion` is `steepest` (where the smoothed loss falls fastest against log10 of the rate,
    between the first 10% of the points and the minimum, as fastai does) unless there is no such
    descent; then it is `minimum_tenth` (the rate at the smoothed-loss minimum, divided by 10).
    `rule` says which. `steps` is the sweep's length (the rate reaches `end_lr` at its last
    step); `steps_run` how many steps ran (fewer when the loss diverged: `stopped_early`).
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    rule: str
    steepest: float
    minimum_tenth: float
    stopped_early: bool
    running: list[float] = dataclasses.field(default_factory=list)
    steps: int = 0
    steps_run: int = 0

    def to_json(self) -> dict:
        """A JSON-ready dict of every field; NaN and infinities become `None` (JSON has none)."""
        return {
            "learning_rates": [_json_float(v) for v in self.learning_rates],
            "losses": [_json_float(v) for v in self.losses],
            "smoothed": [_json_float(v) for v in self.smoothed],
            "running": [_json_float(v) for v in self.running],
            "suggestion": _json_float(self.suggestion),
            "rule": self.rule,
            "steepest": _json_float(self.steepest),
            "minimum_tenth": _json_float(self.minimum_tenth),
            "stopped_early": bool(self.stopped_early),
            "steps": int(self.steps),
            "steps_run": int(self.steps_run),
        }


def _json_float(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@keras.saving.register_keras_serializable(package="ftk")
class ExponentialSweep(keras.optimizers.schedules.LearningRateSchedule):
    """`start_lr * (end_lr / start_lr) ** (step / (steps - 1))`: `start_lr` at step 0, `end_lr`
    at step `steps - 1` (and growing on past it)."""

    def __init__(self, start_lr: float, end_lr: float, steps: int):
        self.start_lr = float(start_lr)
        self.end_lr = float(end_lr)
        self.steps = int(steps)
        self._log_ratio = math.log(self.end_lr / self.start_lr)

    def __call__(self, step):
        fraction = keras.ops.cast(step, "float32") / float(self.steps - 1)
        return self.start_lr * keras.ops.exp(self._log_ratio * fraction)

    def value(self, step: float) -> float:
        """The rate at `step` (a float is allowed), in float64."""
        return self.start_lr * math.exp(self._log_ratio * step / (self.steps - 1))

    def get_config(self):
        return {"start_lr": self.start_lr, "end_lr": self.end_lr, "steps": self.steps}


def sweep_steps(requested: int, batches: int) -> int:
    """The sweep's length for `batches` batches per pass over the training set: `requested`,
    but at most `SWEEP_PASSES` passes, and at least `MIN_SWEEP_STEPS` steps (or `requested`,
    if that is fewer). The sweep covers `start_lr .. end_lr` whatever its length."""
    if batches < 1:
        raise ConfigError(f"`batches` must be >= 1. Received: batches={batches!r}")
    return min(int(requested), max(MIN_SWEEP_STEPS, SWEEP_PASSES * int(batches)))


def batch_losses(running_means: Sequence[float], counts: Sequence[int]) -> list[float]:
    """Per-batch losses from Keras' running means: `running_means[i]` is the mean loss over the
    first `counts[i]` batches of the epoch (what `fit` passes to `on_train_batch_end`).

    loss_i = (n_i * mean_i - n_(i-1) * mean_(i-1)) / (n_i - n_(i-1)), in float64; with one
    batch per call (`steps_per_execution=1`) that is i * mean_i - (i - 1) * mean_(i-1). Each
    value is exact up to float32 rounding of the running total (about 6e-8 * the total).
    """
    out, total, count = [], 0.0, 0
    for mean, n in zip(running_means, counts, strict=True):
        if n <= count:
            raise ValueError(f"`counts` must increase. Received: {list(counts)}")
        new_total = float(mean) * n
        out.append((new_total - total) / (n - count))
        total, count = new_total, n
    return out


def smooth(losses: Sequence[float], beta: float) -> list[float]:
    """fastai's bias-corrected exponential moving average:
    avg = beta * avg + (1 - beta) * loss;  smoothed_i = avg / (1 - beta ** (i + 1))."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * float(loss)
        out.append(avg / (1.0 - beta ** (i + 1)))
    return out


def centered_average(losses: Sequence[float], half_width: int | None = None) -> list[float]:
    """A centered moving average of the per-batch losses (`2 * half_width + 1` points, fewer at
    the ends; `half_width` defaults to 5% of the points, at least 2).

    The suggestion reads this curve, not the running average that stops the sweep: a running
    average lags behind the rising rate (with beta 0.98 by about 50 steps), which moves its
    steepest point towards the rates where the loss already blows up.
    """
    values = np.asarray(losses, dtype=np.float64)
    k = half_width if half_width is not None else max(2, len(values) // 20)
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k) : i + k + 1]
        window = window[np.isfinite(window)]
        out.append(float(window.mean()) if len(window) else math.nan)
    return out


def suggest(learning_rates: Sequence[float], smoothed: Sequence[float]) -> tuple:
    """`(suggestion, rule, steepest, minimum_tenth)` for a sweep (see `LrFindResult`)."""
    lrs = np.asarray(learning_rates, dtype=np.float64)
    loss = np.asarray(smoothed, dtype=np.float64)
    finite = np.isfinite(loss)
    if not finite.any():
        raise DataError("The LR finder recorded no finite loss, so it has nothing to suggest.")
    best = int(np.argmin(np.where(finite, loss, np.inf)))
    minimum_tenth = float(lrs[best] / 10.0)
    steepest = math.nan
    # fastai's rule: the steepest descent between the first 10% of the sweep (batch noise
    # while nothing is learned yet) and the minimum of the smoothed loss.
    first = int(math.ceil(EARLY_FRACTION * len(loss)))
    window = slice(first, best + 1)
    if best - first >= 2 and finite[window].all():
        slopes = np.gradient(loss[window], np.log10(lrs[window]))
        if np.isfinite(slopes).any():
            steepest = float(lrs[first + int(np.nanargmin(slopes))])
    if math.isfinite(steepest):
        return steepest, "steepest", steepest, minimum_tenth
    return minimum_tenth, "minimum_tenth", steepest, minimum_tenth


class _Sweep(keras.callbacks.Callback):
    """Records (learning rate, batch loss, smoothed loss) per step; stops on divergence."""

    def __init__(self, schedule: ExponentialSweep, smoothing: float, diverge: float):
        super().__init__()
        self.schedule, self.smoothing, self.diverge = schedule, smoothing, diverge
        self.learning_rates: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._total, self._count, self._avg, self._best = 0.0, 0, 0.0, math.inf

    @property
    def steps_run(self) -> int:
        return self._count

    def on_train_batch_end(self, batch, logs=None):
        # Keras' logs hold the running mean of the loss over the epoch's first batch + 1
        # batches (there is one epoch); the difference of running totals is this call's loss,
        # as in `batch_losses`.
        count = batch + 1
        total = float(np.asarray(logs["loss"])) * count
        loss = (total - self._total) / (count - self._count)
        # A call covers steps self._count .. count - 1 (several with steps_per_execution > 1):
        # their geometric-mean rate, which is the rate at the middle step.
        self.learning_rates.append(self.schedule.value((self._count + count - 1) / 2))
        self._total, self._count = total, count
        self.losses.append(loss)
        i = len(self.losses) - 1
        beta = self.smoothing
        self._avg = beta * self._avg + (1.0 - beta) * loss
        smoothed = self._avg / (1.0 - beta ** (i + 1))
        self.smoothed.append(smoothed)
        if math.isfinite(smoothed):
            self._best = min(self._best, smoothed)
        if not math.isfinite(smoothed) or smoothed > self.diverge * self._best:
            self.stopped_early = True
            self.model.stop_training = True


class _SweepProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, ending at the step the sweep stopped at: Keras' own bar jumps to
    `steps_per_epoch` when training stops early (e.g. 87 -> 100)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.seen and self.target and self.seen < self.target:
            self.target = self.seen
            if self.progbar is not None:
                self.progbar.target = self.seen
        super().on_epoch_end(epoch, logs)


def _check_args(start_lr, end_lr, steps, smoothing, diverge) -> None:
    def number(value) -> bool:
        return (
            isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        )

    if not (number(start_lr) and number(end_lr) and 0 < start_lr < end_lr):
        raise ConfigError(
            "`start_lr` and `end_lr` must be numbers with 0 < start_lr < end_lr. "
            f"Received: start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 10:
        raise ConfigError(f"`steps` must be an integer >= 10. Received: steps={steps!r}")
    if not (number(smoothing) and 0 <= smoothing < 1):
        raise ConfigError(
            f"`smoothing` must be a number in [0, 1). Received: smoothing={smoothing!r}"
        )
    if not (number(diverge) and diverge > 1):
        raise ConfigError(f"`diverge` must be a number > 1. Received: diverge={diverge!r}")


class _ModelState:
    """Everything `compile_fn` + `fit` change on a built model, captured so it can be put back:
    variable values (`model.variables`: weights and seed-generator states), each variable's
    `trainable` and `regularizer`, each layer's `trainable` flag, and the model's own attributes
    (optimizer, compiled loss and metrics, train function, history, ...), including TensorFlow's
    checkpoint dependencies (`compile` re-points the `optimizer` one at the new optimizer)."""

    _TF_DEPENDENCIES = (
        "_self_unconditional_checkpoint_dependencies",
        "_self_unconditional_dependency_names",
    )

    def __init__(self, model):
        self.model = model
        self.variables = list(model.variables)
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.variable_flags = [(v.trainable, v.regularizer) for v in self.variables]
        self.layers = list(model._flatten_layers(include_self=True, recursive=True))
        self.layer_flags = [layer._trainable for layer in self.layers]
        self.attributes = dict(vars(model))
        self.dependencies = {
            name: _shallow_copy(vars(model)[name])
            for name in self._TF_DEPENDENCIES
            if name in vars(model)
        }

    def restore(self) -> None:
        model = self.model
        new = [v for v in model.variables if all(v is not w for w in self.variables)]
        attributes = vars(model)
        for name in [name for name in attributes if name not in self.attributes]:
            del attributes[name]
        attributes.update(self.attributes)
        for name, saved in self.dependencies.items():
            current = attributes[name]
            if isinstance(current, list):
                current[:] = saved
            else:
                current.clear()
                current.update(saved)
        for layer, flag in zip(self.layers, self.layer_flags, strict=True):
            layer._trainable = flag
        for variable, value, (trainable, regularizer) in zip(
            self.variables, self.values, self.variable_flags, strict=True
        ):
            variable.assign(value)
            variable.trainable = trainable
            variable.regularizer = regularizer
        if new:
            raise RuntimeError(
                f"The LR finder's compile_fn or training created {len(new)} new model "
                f"variable(s) (e.g. {new[0].path!r}), which cannot be undone. Build the model "
                "before calling lr_find, and create no variables in compile_fn."
            )


def _shallow_copy(value):
    return list(value) if isinstance(value, list) else dict(value)


def lr_find(
    model,
    dataset,
    compile_fn: Callable,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    verbose=0,
) -> LrFindResult:
    """Sweep the learning rate from `start_lr` to `end_lr` (exponentially, over `steps` training
    steps, fewer if the loss diverges) and suggest one; the model is left exactly as it was.

    `dataset` is the training `tf.data.Dataset` of `(inputs, labels)` batches (raw inputs: a
    keras-hub task's `fit` maps its preprocessor); it is repeated, so a short one still gives
    `steps` batches. `compile_fn(model, learning_rate)` compiles the model with the run's
    optimizer and loss and the given rate (a Keras `LearningRateSchedule`; the run passes
    its task's loss through `ftk.training.recipes.compile_phase`). It may also set trainable
    flags and regularizers: those are undone too.

    The sweep stops early once the smoothed loss exceeds `diverge` times its minimum so far, or is
    not finite; Keras' progress bar (`verbose` goes to `model.fit`) then ends at that step.
    `smoothing` is the moving average's beta.
    """
    _check_args(start_lr, end_lr, steps, smoothing, diverge)
    if not hasattr(dataset, "repeat"):
        raise ConfigError(
            "`dataset` must be a tf.data.Dataset of (inputs, labels) batches. "
            f"Received: dataset of type {type(dataset).__name__}"
        )
    if not getattr(model, "built", False):
        raise ConfigError(
            "`model` must be built (its weights created) so the LR finder can restore them. "
            f"Received: an unbuilt {type(model).__name__}"
        )
    if int(dataset.cardinality()) == 0:
        raise DataError("The LR finder's dataset gave no batches (it is empty).")
    schedule = ExponentialSweep(start_lr, end_lr, int(steps))
    sweep = _Sweep(schedule, smoothing, diverge)
    state = _ModelState(model)
    try:
        compile_fn(model, schedule)
        with warnings.catch_warnings():
            # fit's default shuffle=True (keras-hub passes it too) is ignored for a Dataset.
            warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
            model.fit(
                dataset.repeat(),
                epochs=1,
                steps_per_epoch=int(steps),
                callbacks=[sweep, _SweepProgbar()] if verbose else [sweep],
                verbose=verbose,
            )
    finally:
        state.restore()
    if not sweep.losses:
        raise DataError("The LR finder's dataset gave no batches (it is empty).")
    if not math.isfinite(sweep.losses[0]):
        raise DataError(
            f"The training loss was {sweep.losses[0]} at the first step of the LR finder "
            f"(learning rate {sweep.learning_rates[0]:.2e}), before any learning: check the "
            "labels (in range for the model's classes?) and the inputs."
        )
    smoothed = centered_average(sweep.losses)
    suggestion, rule, steepest, minimum_tenth = suggest(sweep.learning_rates, smoothed)
    return LrFindResult(
        learning_rates=sweep.learning_rates,
        losses=sweep.losses,
        smoothed=smoothed,
        running=sweep.smoothed,
        suggestion=suggestion,
        rule=rule,
        steepest=steepest,
        minimum_tenth=minimum_tenth,
        stopped_early=sweep.stopped_early,
        steps=int(steps),
        steps_run=sweep.steps_run,
    )
