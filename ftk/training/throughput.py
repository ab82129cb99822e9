"""Training speed per epoch, written into `history.csv` beside the metrics: `steps_per_second`
over the epoch's training batches after its first (which may include tracing or compiling), so
runs on different backends, precisions and machines compare as they train."""

from __future__ import annotations

import time

import keras


class Throughput(keras.callbacks.Callback):
    """Adds `steps_per_second` to each epoch's logs (list it before `CSVLogger`)."""

    def __init__(self):
        super().__init__()
        self._ends: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._ends = []

    def on_train_batch_end(self, batch, logs=None):
        self._ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and len(self._ends) > 1:
            logs["steps_per_second"] = (len(self._ends) - 1) / (self._ends[-1] - self._ends[0])
