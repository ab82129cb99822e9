"""The recipe keys in whole runs on the tiny preset: k-fold cross-validation, a LoRA run that
crashes and resumes, WiSE-FT's curve."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import h5_arrays, h5_names, power_cut_after_epoch, write_tiny_config

from ftk.config import load_config


def run_config(tmp_path, tiny_preset, tiny_csv, *overrides):
    """The tiny project's config file with the default recipe (`two_phase`), and the config."""
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv, recipe="two_phase")
    return path, load_config(path, list(overrides))


def test_cross_validation_reports_mean_and_std(tmp_path, tiny_preset, tiny_csv):
    from ftk.runs import pipeline as runner

    _, config = run_config(
        tmp_path,
        tiny_preset,
        tiny_csv,
        'export.export_dir=""',
        "recipe.cv_folds=2",
        "train.epochs=2",
        "train.steps_per_epoch=2",
    )
    summary = runner.run(config, verbose=0)
    run_dir = Path(summary["run_dir"])
    cv = json.loads((run_dir / "cv.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [0, 1]
    pooled = sum(f["held_out_examples"] for f in cv["folds"])
    counts = json.loads((run_dir / "run.json").read_text())["split_counts"]
    assert pooled == sum(counts["train"].values()) + sum(counts["validation"].values())
    accuracies = [f["accuracy"] for f in cv["folds"]]
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert cv["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert json.loads((run_dir / "metrics.json").read_text())["cross_validation"] == cv
    assert math.isfinite(summary["test_accuracy"])


def test_lora_run_keeps_the_adapter_and_exports_merged_weights(tmp_path, tiny_preset, tiny_csv):
    """A LoRA run: fewer trainable parameters, adapter + head saved together, and an export
    without LoRA layers that verification checked against the unmerged model."""
    import tensorflow as tf

    from ftk.runs import pipeline as runner

    _, config = run_config(
        tmp_path, tiny_preset, tiny_csv, "model.lora_rank=2", "train.epochs=3", "recipe.name=single"
    )
    with power_cut_after_epoch(1), pytest.raises(RuntimeError, match="power cut"):
        runner.run(config, verbose=0)
    (run_dir,) = (tmp_path / "runs").iterdir()
    # Resumed from the LoRA phase's backup: Keras' weights file holds merged kernels only, and
    # the adapters must come back as real factors (not zeros, which could not learn or be saved).
    summary = runner.run(config, resume=run_dir, verbose=0)
    factors = h5_arrays(run_dir / "adapter.weights.h5", optimizer=True)
    b = [v for n, v in factors.items() if "lora_kernel_b" in n]
    assert len(b) == 4 and all(np.abs(v).max() > 0 for v in b)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    lora_phase = metrics["phases"][-1]
    assert lora_phase["trainable"] == "lora"
    # 2 layers x (query, value) x (adapters 16 x 2 + 2 x (2 x 8), and the (2 x 8) bias, which
    # keras-hub's enable_lora leaves trainable) + the head (16 x 3 + 3).
    adapters = 2 * 2 * (16 * 2 + 2 * 16 + 16)
    assert lora_phase["trainable_parameters"] == adapters + 16 * 3 + 3
    assert (run_dir / "adapter.weights.h5").is_file()
    assert (run_dir / "adapter.weights.h5").stat().st_size < (
        run_dir / "model.weights.h5"
    ).stat().st_size
    assert not [
        n for n in h5_names(run_dir / "model.weights.h5") if "lora" in n
    ]  # the exported weights are merged
    export = summary["export"]
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4
    loaded = tf.saved_model.load(export["version_dir"])
    assert not [v.name for v in loaded.variables if "lora" in v.name]


def test_wise_ft_curve_in_a_run(tmp_path, tiny_preset, tiny_csv):
    from PIL import Image

    from ftk.runs import pipeline as runner

    _, config = run_config(
        tmp_path,
        tiny_preset,
        tiny_csv,
        'export.export_dir=""',
        "train.epochs=2",
        "recipe.interpolate=true",
        "recipe.interpolation_points=3",
        "recipe.keep_best_alpha=true",
    )
    summary = runner.run(config, verbose=0)
    run_dir = Path(summary["run_dir"])
    result = json.loads((run_dir / "interpolation.json").read_text())
    assert [p["alpha"] for p in result["curve"]] == [0.0, 0.5, 1.0]
    assert result["kept_alpha"] == result["best_alpha"]
    best = max(p["accuracy"] for p in result["curve"])
    assert [p for p in result["curve"] if p["alpha"] == result["best_alpha"]][0]["accuracy"] == best
    assert Image.open(run_dir / "interpolation.png").format == "PNG"
    assert json.loads((run_dir / "metrics.json").read_text())["interpolation"] == result
