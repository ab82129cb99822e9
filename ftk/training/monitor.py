"""`train.monitor`: the validation metric that picks the checkpoint a run keeps, stops it early
and chooses WiSE-FT's α, with its direction (`"max"` or `"min"`) from the task.

`"auto"` is `val_loss` (`loss` when there is no validation split), lower is better, and α is
chosen by the task's `interpolation_metric`, as before the key existed.

Example:

>>> monitor(config)                 # train.monitor = "val_macro_f1"
Monitor(name='val_macro_f1', mode='max')
>>> monitor(config, has_validation=False)
Monitor(name='loss', mode='min')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ftk.config import Config
from ftk.tasks.registry import get_task

logger = logging.getLogger("ftk")


@dataclass(frozen=True)
class Monitor:
    """A name in Keras' epoch logs (`val_loss`, `val_macro_f1`) and whether higher ("max") or
    lower ("min") is better."""

    name: str = "val_loss"
    mode: str = "min"

    @property
    def metric(self) -> str:
        """The name without `val_` (`macro_f1`): as `model.evaluate` and the task name it."""
        return self.name.removeprefix("val_")

    def best(self, values):
        """The best of `values` in this direction."""
        return max(values) if self.mode == "max" else min(values)


def monitor(config: Config, has_validation: bool = True) -> Monitor:
    """What `config` monitors. Without a validation split it is the training loss (a chosen
    validation metric does not exist there: cross-validation folds train without one)."""
    chosen = config.train.monitor
    if not has_validation:
        if chosen != "auto":
            logger.info("train.monitor=%r needs a validation split; monitoring loss", chosen)
        return Monitor("loss", "min")
    if chosen == "auto":
        return Monitor("val_loss", "min")
    return Monitor(chosen, get_task(config.run.task).direction(chosen))


def interpolation_metric(config: Config, task) -> str:
    """The validation metric WiSE-FT's α is chosen by (no `val_`): `train.monitor`'s, or with
    `"auto"` the task's `interpolation_metric`."""
    if config.train.monitor == "auto":
        return task.interpolation_metric
    return config.train.monitor.removeprefix("val_")


def epoch_metric_names(task, config: Config) -> tuple[str, ...]:
    """The task's epoch metrics (`Task.epoch_metrics`) that `train.monitor` or `tune.objective`
    names: those measured at each epoch's end (none: the cost of a prediction pass saved)."""
    chosen = {config.train.monitor, config.tune.objective}
    return tuple(name for name in task.epoch_metric_names if f"val_{name}" in chosen)
