"""JAX and PyTorch backends: the same project trains on each, and the TensorFlow export of
those weights matches what the training backend's model computed."""

import json
import os
import subprocess
import sys

import pytest
from conftest import tiny_config_toml


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_and_export_on_backend(backend, tiny_preset, tiny_csv, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(tiny_config_toml(tiny_preset, tiny_csv, tmp_path, backend), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-m", "ftk.cli", "train", "--config", str(path), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["backend"] == backend
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5  # chance is 1/3 (the tiny random BERT reaches 2/3)
    export = summary["export"]
    # Reference outputs came from the training backend; the exports were made under TensorFlow.
    assert export["savedmodel_max_abs_diff"] <= 1e-4
    assert export["onnx_max_abs_diff"] <= 1e-4
    assert (tmp_path / "saved_models" / "tiny" / "1" / "saved_model.pb").is_file()
