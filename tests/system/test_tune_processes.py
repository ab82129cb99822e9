"""Searches as processes: a search killed with SIGKILL mid-trial and rerun (finished trials not
rerun, the interrupted one retried), and `ftk tune --workers 2` (a chief and two workers on
127.0.0.1). The supervisor's failure handling: tests/system/test_tune_launcher.py."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO, head_search, read_trials, write_tiny_config

from ftk.config import load_config
from ftk.tuning.command import tune


def ftk_tune(config: Path, overrides: list[str], *args: str) -> list[str]:
    """`python -m ftk.cli.main tune` for a subprocess: search only, quiet."""
    command = [sys.executable, "-m", "ftk.cli.main", "tune", "--config", str(config), *args]
    command += ["--search-only", "--quiet"]
    for override in overrides:
        command += ["--set", override]
    return command


def _status(directory: Path, trial_id: str) -> str | None:
    path = directory / f"trial_{trial_id}" / "trial.json"
    try:
        return json.loads(path.read_text())["status"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_killed_search_resumes_without_repeating_trials(tmp_path, pretrained_tiny, topics_csv):
    path, config = head_search(
        tmp_path,
        pretrained_tiny,
        topics_csv,
        "tune.max_trials=3",
        "tune.epochs=10",
    )
    overrides = [
        "model.trainable=head",
        "tune.objective=val_loss",
        "tune.epochs=10",
        "tune.max_trials=3",
    ]
    command = ftk_tune(path, overrides)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    directory = Path(config.run.run_dir) / "tune" / "search"
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while _status(directory, "1") != "COMPLETED" or _status(directory, "2") != "RUNNING":
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the search did not reach trial 2 in time"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)  # mid-trial 2
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        process.stderr.close()
    done = {t: (directory / f"trial_{t}" / "ftk_trial.json").stat().st_mtime_ns for t in "01"}
    assert not (directory / "trial_2" / "ftk_trial.json").exists()

    search = tune(
        load_config(path, overrides + ["export.onnx=false"]), search_only=True, verbose=0
    )["search"]
    rows = read_trials(directory)
    assert [r["trial"] for r in rows] == ["1", "2", "3"]  # directories trial_0 .. trial_2
    assert all(r["status"] == "COMPLETED" for r in rows) and search["completed"] == 3
    assert {
        t: (directory / f"trial_{t}" / "ftk_trial.json").stat().st_mtime_ns for t in "01"
    } == done
    values = [
        tuple(
            sorted(
                json.loads((directory / f"trial_{t}" / "trial.json").read_text())[
                    "hyperparameters"
                ]["values"].items()
            )
        )
        for t in "012"
    ]
    assert len(set(values)) == 3  # the interrupted trial was retried, not duplicated


def test_chief_and_two_workers_on_loopback(tmp_path, pretrained_tiny, topics_csv):
    """`ftk tune --workers 2`: KerasTuner's chief and two workers on 127.0.0.1, supervised by
    ftk.tuning.distributed (its failure handling is tested in test_tune_launcher.py)."""
    path = write_tiny_config(tmp_path, pretrained_tiny, topics_csv)
    overrides = [
        "model.trainable=head",
        "tune.objective=val_loss",
        "tune.epochs=10",
        "tune.max_trials=4",
    ]
    command = ftk_tune(path, overrides, "--workers", "2")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 400
    directory = tmp_path / "runs" / "tune" / "search"
    rows = read_trials(directory)
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows)
    assert {r["worker"] for r in rows} == {"tuner0", "tuner1"}
    assert {p.name for p in (directory / "logs").iterdir()} >= {"chief.log", "tuner0.log"}
    assert "best trial" in done.stdout
