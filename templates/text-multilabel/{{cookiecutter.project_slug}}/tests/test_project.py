"""This project's own checks: a wrong config value stops train.py naming it, the texts load
with a 0/1 vector over the labels, and (slow) a short real run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ftk import load_config, train_main

import data

PROJECT = Path(__file__).resolve().parents[1]


def test_a_wrong_value_stops_train_py_naming_the_key(tmp_path, capsys):
    """A value config.toml's checks refuse (here from the command line): train.py exits with 2
    and one line naming the key, before a run directory is made."""
    argv = ["--set", "model.sequence_length=4", "--set", f"run.run_dir={tmp_path / 'runs'}"]
    code = train_main(argv, load_data=data.load_data, default_config=PROJECT / "config.toml")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("ftk: error:") and "\n" not in err, err
    assert "model.sequence_length" in err, err
    assert not (tmp_path / "runs").exists()


def test_texts_load_with_their_labels():
    splits = data.load_data(load_config(PROJECT / "config.toml"))
    assert len(splits.train) > 0 and len(splits.test) > 0 and splits.label_names
    for examples in (splits.train, splits.validation, splits.test):
        assert examples.labels.shape == (len(examples), len(splits.label_names))
        assert set(np.unique(examples.labels)) <= {0.0, 1.0}
        assert all(isinstance(t, str) and t for t in examples.inputs)
    assert splits.train.labels.sum(axis=0).min() > 0  # every label has training examples


@pytest.mark.slow
def test_short_training_run_exports_and_verifies(tmp_path):
    """A few training steps of the real model, then export and verification."""
    command = [
        sys.executable,
        str(PROJECT / "train.py"),
        "--quiet",
        "--set",
        f"run.run_dir={tmp_path / 'runs'}",
        "--set",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "--set",
        "train.epochs=1",
        "--set",
        "recipe.name=single",
        "--set",
        "train.steps_per_epoch=4",
        "--set",
        "export.verify_examples=8",
    ]
    subprocess.run(command, check=True, timeout=3600)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert Path(summary["export"]["version_dir"]).is_dir()
    assert summary["export"]["examples"] == 8
