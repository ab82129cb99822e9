"""This project's own checks: a wrong config value stops train.py naming it, the conversations
load, and (slow) a short real run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ftk import load_config, train_main

import data

PROJECT = Path(__file__).resolve().parents[1]


def test_a_wrong_value_stops_train_py_naming_the_key(tmp_path, capsys):
    """A value config.toml's checks refuse (here from the command line): train.py exits with 2
    and one line naming the key, before a run directory is made."""
    argv = ["--set", "generate.max_new_tokens=0", "--set", f"run.run_dir={tmp_path / 'runs'}"]
    code = train_main(argv, load_data=data.load_data, default_config=PROJECT / "config.toml")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("ftk: error:") and "\n" not in err, err
    assert "generate.max_new_tokens" in err, err
    assert not (tmp_path / "runs").exists()


def test_conversations_load_and_split():
    splits = data.load_data(load_config(PROJECT / "config.toml"))
    assert len(splits.train) > 0 and len(splits.test) > 0
    for examples in (splits.train, splits.validation, splits.test):
        for conversation in examples.conversations:
            assert conversation[-1]["role"] == "assistant" and conversation[-1]["content"]
    prompts = {tuple(map(str, c[:-1])) for c in splits.train.conversations}
    assert not prompts & {tuple(map(str, c[:-1])) for c in splits.test.conversations}


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
        "train.steps_per_epoch=2",
        "--set",
        "data.max_train_examples=8",
        "--set",
        "generate.max_new_tokens=8",
        "--set",
        "export.verify_examples=2",
    ]
    subprocess.run(command, check=True, timeout=3600)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert Path(summary["export"]["version_dir"]).is_dir()
    assert summary["export"]["savedmodel_exact"] + summary["export"]["savedmodel_near_tie"] == 2
