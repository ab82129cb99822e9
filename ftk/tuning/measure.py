"""What a trial is measured by: the search's objective (`tune.objective` with its direction)
and the memory of the process that runs it.

Shared by the search process (`ftk.tuning.search`) and a trial run in its own process
(`ftk.tuning.trial`); it imports neither.

Example:

>>> objective(config)          # Objective(name="val_accuracy", direction="max")
>>> current, peak = memory_mb()
"""

from __future__ import annotations

import os
import resource

import keras_tuner

from ftk.config import Config
from ftk.tasks.registry import get_task


def memory_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        current = float("nan")
    return round(current, 1), round(peak, 1)


def objective(config: Config) -> keras_tuner.Objective:
    """`tune.objective` with its direction."""
    name = config.tune.objective
    return keras_tuner.Objective(name, get_task(config.run.task).direction(name))
