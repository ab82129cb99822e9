"""End to end, as a user runs it: bake the template, run its train.py with the real pretrained
MiniLM-L6 on a slice of BBC News, export, verify (a few minutes on 2 CPU cores)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import TEXT_TEMPLATE, bake, only_run_dir, run_train_py


@pytest.mark.slow
def test_bake_train_export_verify_real_minilm(tmp_path, isolated_cookiecutter):
    project = bake(tmp_path, TEXT_TEMPLATE, project_name="BBC Slice")
    overrides = {
        "data.max_train_examples": "96",
        "data.test_split": "0.1",
        "model.sequence_length": "64",
        "train.epochs": "2",
        "train.learning_rate": "1e-4",
        "export.verify_examples": "16",
    }
    done = run_train_py(project, *(f"{key}={value}" for key, value in overrides.items()))
    assert "test accuracy:" in done.stdout and "SavedModel:" in done.stdout

    run_dir = only_run_dir(project)
    summary = json.loads((run_dir / "summary.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    assert run["preset"]["kind"] == "offline" and run["preset"]["exact_gelu"]
    assert sum(run["split_counts"]["train"].values()) == 96
    # Learning after 12 steps: five topics, chance is 0.2.
    assert summary["test_accuracy"] > 0.45, summary
    with (run_dir / "history.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < losses[0]

    export = summary["export"]
    version_dir = Path(export["version_dir"])
    assert version_dir == project / "saved_models" / "bbc_slice" / "1"
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    out = serve(text=tf.constant(["The striker scored twice as the club won the league."]))
    assert out["probabilities"].shape == (1, 5)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)
    labels = (version_dir / "assets.extra" / "labels.txt").read_text().split()
    assert labels == ["business", "entertainment", "politics", "sports", "tech"]
