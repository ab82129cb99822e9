"""`RunFiles`: the one place that names the files of a run directory.

Standard library only and imports nothing from ftk, so the run, the export, the report and
the search all ask it for paths instead of spelling file names themselves.

Example:

>>> RunFiles("runs/20261123-101500").weights.name
'model.weights.h5'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFiles:
    """Paths in one run directory (`root`). Each property is a path; nothing is created."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def _at(self, name: str) -> Path:
        return self.root / name

    # What the run is: written first, before any training.
    config = property(lambda self: self._at("config.toml"))  # the resolved config
    run = property(lambda self: self._at("run.json"))  # run facts: backend, preset, data
    labels = property(lambda self: self._at("labels.json"))  # the label names, index = id

    # Training.
    history = property(lambda self: self._at("history.csv"))  # one row per epoch
    checkpoints = property(lambda self: self._at("checkpoints"))  # per improving epoch
    phases = property(lambda self: self._at("phases"))  # each finished recipe phase
    backup = property(lambda self: self._at("backup"))  # BackupAndRestore state
    logs = property(lambda self: self._at("logs"))  # TensorBoard
    pretrained = property(lambda self: self._at("pretrained.weights.h5"))  # WiSE-FT's start
    cross_validation = property(lambda self: self._at("cv.json"))
    folds = property(lambda self: self._at("cv"))  # cv/fold<i>/

    # The trained model and what it was measured on.
    weights = property(lambda self: self._at("model.weights.h5"))  # what is exported
    adapter = property(lambda self: self._at("adapter.weights.h5"))  # LoRA factors + head
    interpolation = property(lambda self: self._at("interpolation.json"))  # WiSE-FT curve
    interpolation_plot = property(lambda self: self._at("interpolation.png"))
    calibration = property(lambda self: self._at("calibration.json"))  # Task.calibrate
    metrics = property(lambda self: self._at("metrics.json"))  # test metrics
    test_split = property(lambda self: self._at("test_split.json"))  # inputs and targets
    outputs = property(lambda self: self._at("test_probabilities.npy"))  # model outputs on it
    reference = property(lambda self: self._at("verify_reference.json"))  # exports checked on

    # The end of a run.
    export = property(lambda self: self._at("export.json"))
    summary = property(lambda self: self._at("summary.json"))
    report_html = property(lambda self: self._at("report.html"))
    report_md = property(lambda self: self._at("report.md"))
    report_dir = property(lambda self: self._at("report"))  # its images

    # Other kinds of run.
    lr_find = property(lambda self: self._at("lr_find.json"))
    lr_find_plot = property(lambda self: self._at("lr_find.png"))
