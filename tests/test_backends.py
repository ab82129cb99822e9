"""The three backends: the text template baked for TensorFlow, JAX and PyTorch trains, exports
and verifies with the same test metrics on each; the image template baked for JAX and PyTorch
(real EfficientNet-Lite0 weights) trains, exports and verifies (TensorFlow: test_template_image
and test_e2e_image)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_rows, write_csv
from test_template import (  # noqa: F401  (isolated_cookiecutter is an autouse fixture)
    bake,
    isolated_cookiecutter,
)

TIMEOUT = 600
TEXT_TEMPLATE = REPO / "templates" / "text-classification"


def run_train(project: Path, *overrides: str) -> Path:
    """The baked project's `python train.py --set ...` in a fresh process; its run directory."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    command = [sys.executable, "train.py", "--quiet"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def colour_images(root: Path) -> Path:
    """Two colours of noisy 24x24 photos-to-be, 10 of each."""
    import numpy as np
    from PIL import Image

    for label, rgb in (("red", (210, 40, 40)), ("blue", (40, 40, 210))):
        (root / label).mkdir(parents=True)
        for i in range(10):
            noise = np.random.default_rng(i).integers(-30, 30, (24, 24, 3))
            pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.jpg")
    return root


def test_text_template_on_each_backend_trains_exports_and_agrees(still_preset, tmp_path):
    """The text template baked for TensorFlow, JAX and PyTorch, the same data, seed and initial
    weights (a dropout-free tiny BERT; the head is seeded the same on every backend): each
    trains, exports under TensorFlow and verifies, and the test metrics agree within 1 point."""
    data = write_csv(tmp_path / "topics.csv", make_rows(100))  # 60 test examples
    metrics = {}
    for backend in ("tensorflow", "jax", "torch"):
        project = bake(tmp_path / backend, TEXT_TEMPLATE, backend=backend)
        run_dir = run_train(
            project,
            f"model.preset={still_preset}",
            "model.sequence_length=16",
            "model.dropout=0.0",
            "data.format=csv",
            f"data.path={data}",
            "train.epochs=3",
            "train.batch_size=8",
            "train.learning_rate=3e-3",
            "train.early_stopping_patience=0",
            "recipe.name=single",
            f"export.export_dir={tmp_path / backend / 'saved_models'}",
            "export.verify_examples=8",
        )
        run = json.loads((run_dir / "run.json").read_text())
        assert run["backend"] == backend == run["runtime"]["backend"]
        summary = json.loads((run_dir / "summary.json").read_text())
        # Reference outputs came from the training backend; the exports were made under TF.
        assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4, backend
        assert summary["export"]["onnx_max_abs_diff"] <= 1e-4, backend
        assert (Path(summary["export"]["version_dir"]) / "saved_model.pb").is_file()
        metrics[backend] = json.loads((run_dir / "metrics.json").read_text())
    accuracy = {b: m["accuracy"] for b, m in metrics.items()}
    print(f"test accuracy by backend: {accuracy}")
    assert min(accuracy.values()) > 0.5, accuracy  # chance is 1/3: it learned
    assert max(accuracy.values()) - min(accuracy.values()) <= 0.01, accuracy
    f1 = {b: m["macro_f1"] for b, m in metrics.items()}
    assert max(f1.values()) - min(f1.values()) <= 0.01, f1


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_image_template_baked_for_backend_trains_exports_and_verifies(backend, tmp_path):
    """The real EfficientNet-Lite0, head only, on two colours."""
    images = colour_images(tmp_path / "images")
    project = bake(
        tmp_path,
        REPO / "templates" / "image-classification",
        backend=backend,
        path=str(images),
        image_size="48",
        trainable="head",
    )
    run_dir = run_train(
        project,
        "data.test_split=0.3",
        "train.epochs=2",
        "train.batch_size=8",
        "train.learning_rate=1e-2",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "export.verify_examples=6",
    )
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    for key in ("savedmodel_max_abs_diff", "savedmodel_pixels_max_abs_diff", "onnx_max_abs_diff"):
        assert export[key] <= 1e-4, export
    assert export["examples"] == 6
