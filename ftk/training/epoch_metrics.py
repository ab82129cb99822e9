"""Validation metrics that are no Keras compile metric (classification's macro-F1, entity F1
over whole sentences), measured at each epoch's end by the task (`Task.epoch_metrics`) and
written into the epoch's logs as `val_<name>`.

List the callback first: the checkpoint, early stopping, `CSVLogger`, TensorBoard, KerasTuner's
objective and Keras' `History` (always last) then see the value as if Keras had measured it.
"""

from __future__ import annotations

import keras

from ftk.config import Config
from ftk.training.monitor import epoch_metric_names


class EpochMetrics(keras.callbacks.Callback):
    """Adds the task's epoch metrics on `examples` (the validation split) to each epoch's logs.

    `dataset` is their batches (default: `task.dataset(examples, config, False)`)."""

    def __init__(self, task, config: Config, examples, dataset=None):
        super().__init__()
        self.task, self.config, self.examples = task, config, examples
        self.dataset = task.dataset(examples, config, False) if dataset is None else dataset

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        measured = self.task.epoch_metrics(self.model, self.dataset, self.examples, self.config)
        for name, value in measured.items():
            logs[f"val_{name}"] = float(value)


def epoch_metric_callbacks(task, config: Config, examples, dataset=None) -> list:
    """`[EpochMetrics]` when `train.monitor` or `tune.objective` names one of the task's epoch
    metrics and there are validation `examples`; else `[]` (nothing is measured)."""
    if examples is None or not len(examples) or not epoch_metric_names(task, config):
        return []
    return [EpochMetrics(task, config, examples, dataset)]
