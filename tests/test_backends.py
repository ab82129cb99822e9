"""JAX and PyTorch backends: the same project trains on each, and the TensorFlow export of
those weights matches what the training backend's model computed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config_toml


def train_with_cli(config: Path, runs: Path, backend: str) -> Path:
    """`ftk train` in a fresh process (the backend is chosen from the config); the run dir."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-m", "ftk.cli", "train", "--config", str(config), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["backend"] == backend
    return run_dir


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_and_export_on_backend(backend, tiny_preset, tiny_csv, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(tiny_config_toml(tiny_preset, tiny_csv, tmp_path, backend), encoding="utf-8")
    run_dir = train_with_cli(path, tmp_path / "runs", backend)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5  # chance is 1/3 (the tiny random BERT reaches 2/3)
    export = summary["export"]
    # Reference outputs came from the training backend; the exports were made under TensorFlow.
    assert export["savedmodel_max_abs_diff"] <= 1e-4
    assert export["onnx_max_abs_diff"] <= 1e-4
    assert (tmp_path / "saved_models" / "tiny" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_image_task_trains_and_exports_on_backend(backend, tmp_path):
    """The real EfficientNet-Lite0, head only, on two colours of photos-to-be."""
    import numpy as np
    from PIL import Image

    for label, rgb in (("red", (210, 40, 40)), ("blue", (40, 40, 210))):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(10):
            noise = np.random.default_rng(i).integers(-30, 30, (24, 24, 3))
            pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.jpg")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[run]
task = "image_classification"
run_dir = "{tmp_path / "runs"}"
[runtime]
backend = "{backend}"
[model]
image_size = 48
trainable = "head"
[data]
path = "{tmp_path / "images"}"
test_split = 0.3
[train]
epochs = 2
batch_size = 8
learning_rate = 1e-2
[export]
export_dir = "{tmp_path / "saved_models"}"
verify_examples = 6
""",
        encoding="utf-8",
    )
    run_dir = train_with_cli(path, tmp_path / "runs", backend)
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    for key in ("savedmodel_max_abs_diff", "savedmodel_pixels_max_abs_diff", "onnx_max_abs_diff"):
        assert export[key] <= 1e-4, export
    assert export["examples"] == 6
