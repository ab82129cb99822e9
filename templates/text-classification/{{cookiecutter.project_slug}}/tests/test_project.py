"""This project's own checks: a wrong config value stops train.py naming it, the data loads,
and (slow) a short real run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ftk import load_config, train_main

import data

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    return load_config(PROJECT / "config.toml")


def test_a_wrong_value_stops_train_py_naming_the_key(tmp_path, capsys):
    """A value config.toml's checks refuse (here from the command line): train.py exits with 2
    and one line naming the key, before a run directory is made."""
    argv = ["--set", "train.epochs=0", "--set", f"run.run_dir={tmp_path / 'runs'}"]
    code = train_main(argv, load_data=data.load_data, default_config=PROJECT / "config.toml")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("ftk: error:") and "\n" not in err, err
    assert "train.epochs" in err and "Received: train.epochs=0" in err, err
    assert not (tmp_path / "runs").exists()


def test_data_loads_and_splits(config):
    splits = data.load_data(config)
    assert len(splits.label_names) >= 2
    for name in ("train", "validation", "test"):
        examples = getattr(splits, name)
        assert len(examples.texts) == len(examples.labels)
        assert set(examples.labels.tolist()) <= set(range(len(splits.label_names)))
    assert len(splits.train) > 0 and len(splits.test) > 0
    train, test = set(splits.train.texts), set(splits.test.texts)
    assert len(train & test) <= len(splits.test) // 20, "train and test overlap"


@pytest.mark.slow
def test_short_training_run_exports_and_verifies(tmp_path):
    """Two training steps of the real model, then export and verification."""
    command = [
        sys.executable,
        str(PROJECT / "train.py"),
        "--quiet",
        "--set",
        f"run.run_dir={tmp_path / 'runs'}",
        "--set",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "--set",
        "train.epochs=2",  # one step of the head phase, one of the fine-tuning phase
        "--set",
        "train.steps_per_epoch=1",
        "--set",
        "data.max_train_examples=32",
        "--set",
        "export.verify_examples=8",
    ]
    subprocess.run(command, check=True, timeout=1800)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert Path(summary["export"]["version_dir"]).is_dir()
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
