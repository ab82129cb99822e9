"""What a task supplies to the shared run: its data reader, model builder, datasets and export.

A task is a `Task` value (`ftk.tasks.text_classification.TASK`, ...); `ftk.tasks.get_task`
finds one by its `run.task` name, and `ftk.tasks.runner.run` drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk.config import Config
from ftk.data.splits import Examples, Splits

# What every classifier's `serving_default` returns (recorded in the export metadata).
CLASSIFICATION_OUTPUTS = {
    "probabilities": "DT_FLOAT [-1, num_classes]",
    "class_id": "DT_INT32 [-1]",
    "class_name": "DT_STRING [-1]",
}


@dataclass(frozen=True)
class Task:
    """The task-specific steps of a run.

    - `load_data(config) -> Splits`: the default reader of `[data]` (a project's `data.py`
      may replace it).
    - `build_model(info, config, num_classes)`: the keras-hub classifier on a resolved preset.
    - `dataset(examples, config, training)`: batched `(inputs, labels)`; shuffled and (for
      images) augmented only when `training`.
    - `write_export(model, label_names, config, staging, inputs, probabilities)`: the
      SavedModel (and ONNX when `export.onnx`) plus the verification reference, in `staging`.
    - `signature`: the served `serving_default` signature, recorded in the export metadata.
    """

    name: str
    load_data: Callable[[Config], Splits]
    build_model: Callable[[Any, Config, int], Any]
    dataset: Callable[[Examples, Config, bool], Any]
    write_export: Callable[[Any, list[str], Config, Path, list[str], Any], None]
    signature: dict = field(default_factory=dict)
