"""The three backends: the text template baked for TensorFlow, JAX and PyTorch trains, exports
and verifies with the same test metrics on each; the image template baked for JAX and PyTorch
(real EfficientNet-Lite0 weights) trains, exports and verifies (TensorFlow: test_e2e_image)."""

import json
from pathlib import Path

import pytest
from helpers import (
    IMAGE_TEMPLATE,
    TEXT_TEMPLATE,
    bake,
    colour_photos,
    make_rows,
    only_run_dir,
    run_train_py,
    write_csv,
)

TIMEOUT = 600
pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


def test_text_template_on_each_backend_trains_exports_and_agrees(still_preset, tmp_path):
    """The text template baked for TensorFlow, JAX and PyTorch, the same data, seed and initial
    weights (a dropout-free tiny BERT; the head is seeded the same on every backend): each
    trains, exports under TensorFlow and verifies, and the test metrics agree within 1 point."""
    data = write_csv(tmp_path / "topics.csv", make_rows(100))  # 60 test examples
    metrics = {}
    for backend in ("tensorflow", "jax", "torch"):
        project = bake(tmp_path / backend, TEXT_TEMPLATE, backend=backend)
        run_train_py(
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
            timeout=TIMEOUT,
        )
        run_dir = only_run_dir(project)
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
    images = colour_photos(tmp_path / "images")
    project = bake(
        tmp_path,
        IMAGE_TEMPLATE,
        backend=backend,
        path=str(images),
        image_size="48",
        trainable="head",
    )
    run_train_py(
        project,
        "data.test_split=0.3",
        "train.epochs=2",
        "train.batch_size=8",
        "train.learning_rate=1e-2",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "export.verify_examples=6",
        timeout=TIMEOUT,
    )
    run_dir = only_run_dir(project)
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    for key in ("savedmodel_max_abs_diff", "savedmodel_pixels_max_abs_diff", "onnx_max_abs_diff"):
        assert export[key] <= 1e-4, export
    assert export["examples"] == 6
