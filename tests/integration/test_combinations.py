"""Supported combinations of the recipe switches, in the spirit of cookiecutter-django's
SUPPORTED_COMBINATIONS (issue 19 item 10: LoRA + two_phase + WiSE-FT stopped after training).

The switches that change what a run trains and finalizes: `recipe.name` (single, two_phase,
gradual), LoRA (`model.lora_rank`), WiSE-FT (`recipe.interpolate`) and k-fold cross-validation
(`recipe.cv_folds`), plus the search's cached-feature path (`tune.cache_features`).

- Config level, the full product (3 x 2 x 2 x 2 = 24 configs, milliseconds each): a combination
  is refused exactly when it holds a pair the README refuses (LoRA with `gradual`).
- End to end, pairwise: the 20 allowed combinations of the full product would take 64 fits
  (cross-validation trains each fold with the whole recipe), about 9 minutes on this 2-core
  machine, so `SUPPORTED` is a covering array of 6 rows and 20 fits in which every allowed pair
  of values of two switches occurs at least once (`test_supported_rows_cover_every_allowed_pair`
  checks it). Each row trains, evaluates and exports on the tiny BERT (SavedModel verified
  against Keras; ONNX in one row).
- The search's cached-feature path: a 2-trial head-only search, then the final run, exported.
- `REFUSED`: each combination that cannot work fails through `train.py` with a one-line error
  naming both keys, before a run directory exists.
"""

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import h5_names, make_rows, write_csv, write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError

SWITCHES = {
    "recipe": ("single", "two_phase", "gradual"),
    "lora": (False, True),
    "interpolate": (False, True),
    "cv": (False, True),
}
# Pairs of switch values the README refuses (validation names both keys).
REFUSED_PAIRS = {frozenset({("recipe", "gradual"), ("lora", True)})}


@dataclass(frozen=True)
class Combo:
    recipe: str
    lora: bool = False
    interpolate: bool = False
    cv: bool = False
    onnx: bool = False  # the slowest export step: one row
    extra: tuple[str, ...] = ()  # more overrides, riding along (not a switch)

    @property
    def id(self) -> str:
        on = [name for name in ("lora", "interpolate", "cv", "onnx") if getattr(self, name)]
        return "-".join([self.recipe, *on, *(e.split(".")[-1] for e in self.extra)])

    def values(self) -> dict:
        return {name: getattr(self, name) for name in SWITCHES}

    def overrides(self) -> list[str]:
        epochs = 1 if self.recipe == "single" else 2  # two_phase/gradual: the head, then more
        out = [f"recipe.name={self.recipe}", f"train.epochs={epochs}"]
        if self.recipe == "gradual" and not self.lora:
            out.append("model.trainable=last_n:1")  # head, then the top block: 2 fits
        if self.lora:
            out.append("model.lora_rank=2")
        if self.interpolate:
            out += ["recipe.interpolate=true", "recipe.interpolation_points=2"]
        if self.cv:
            out.append("recipe.cv_folds=2")
        out.append(f"export.onnx={str(self.onnx).lower()}")
        return [*out, *self.extra]


# Pairwise: 6 rows for 3 x 2 x 2 x 2 values (gradual has no LoRA), 20 fits in all. The first row
# is the crash (LoRA merged, then WiSE-FT); it keeps its best alpha, so the exports are
# verified against the interpolated merged model whenever that alpha is not 1. Mixed precision
# makes the run evaluate and interpolate a float32 copy built after training, which crashed the
# same way.
SUPPORTED = [
    Combo(
        "two_phase", lora=True, interpolate=True, onnx=True, extra=("recipe.keep_best_alpha=true",)
    ),
    Combo("two_phase", cv=True),
    Combo("single", lora=True, cv=True),
    Combo("single", interpolate=True, extra=("runtime.precision=mixed_bfloat16",)),
    Combo("gradual", interpolate=True, cv=True),
    Combo("gradual"),
]

# (overrides, the keys the one-line error names): what the README says does not combine.
REFUSED = [
    (["recipe.name=gradual", "model.lora_rank=2"], ("recipe.name", "model.lora_rank")),
    (["model.trainable=last_n:1", "model.lora_rank=2"], ("model.trainable", "model.lora_rank")),
    (
        ["model.trainable=head", "recipe.interpolate=true"],
        ("recipe.interpolate", "model.trainable"),
    ),
    (["recipe.keep_best_alpha=true"], ("recipe.keep_best_alpha", "recipe.interpolate")),
]


def refused(values: dict) -> bool:
    pairs = itertools.combinations(values.items(), 2)
    return any(frozenset(pair) in REFUSED_PAIRS for pair in pairs)


@pytest.fixture(scope="session")  # cheap: no need to keep its tests on one xdist worker
def small_csv(tmp_path_factory) -> Path:
    """30 examples: 21 train, 3 validation, 6 test."""
    return write_csv(tmp_path_factory.mktemp("combos") / "train.csv", make_rows(10))


def config_path(tmp_path: Path, tiny_preset: Path, data: Path) -> Path:
    return write_tiny_config(tmp_path, tiny_preset, data, recipe="two_phase")


def test_supported_rows_cover_every_allowed_pair():
    covered = set()
    for combo in SUPPORTED:
        assert not refused(combo.values()), combo
        covered |= {frozenset(p) for p in itertools.combinations(combo.values().items(), 2)}
    for (a, xs), (b, ys) in itertools.combinations(SWITCHES.items(), 2):
        for x, y in itertools.product(xs, ys):
            pair = frozenset({(a, x), (b, y)})
            assert pair in covered or pair in REFUSED_PAIRS, sorted(pair, key=str)


def test_full_product_is_refused_exactly_on_the_refused_pairs(tmp_path, tiny_preset, small_csv):
    path = config_path(tmp_path, tiny_preset, small_csv)
    for values in itertools.product(*SWITCHES.values()):
        combo = Combo(*values)
        if not refused(combo.values()):
            config = load_config(path, combo.overrides())
            assert config.recipe.name == combo.recipe and bool(config.model.lora_rank) == combo.lora
            continue
        with pytest.raises(ConfigError) as error:
            load_config(path, combo.overrides())
        message = str(error.value)
        assert "\n" not in message and "recipe.name" in message and "model.lora_rank" in message


@pytest.mark.parametrize("overrides, keys", REFUSED, ids=lambda v: "+".join(v))
def test_refused_combinations_fail_in_one_line_before_training(
    tmp_path, tiny_preset, small_csv, capsys, overrides, keys
):
    from ftk.cli.main import train_main

    argv = ["--config", str(config_path(tmp_path, tiny_preset, small_csv))]
    for override in overrides:
        argv += ["--set", override]
    assert train_main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ftk: error: `"), lines
    assert all(key in lines[0] for key in keys), lines[0]
    assert not (tmp_path / "runs").exists()  # refused before the run directory


@pytest.mark.parametrize("combo", SUPPORTED, ids=lambda c: c.id)
def test_supported_combination_trains_evaluates_and_exports(
    tmp_path, tiny_preset, small_csv, combo
):
    from ftk.runs import pipeline

    config = load_config(config_path(tmp_path, tiny_preset, small_csv), combo.overrides())
    summary = pipeline.run(config, verbose=0)
    run_dir = Path(summary["run_dir"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(summary["test_accuracy"])
    assert [p["name"] for p in metrics["phases"]] == {
        "single": ["finetune"],
        "two_phase": ["head", "finetune"],
        "gradual": ["head", "unfreeze1"],
    }[combo.recipe]
    check_export(summary["export"], combo.onnx, config.export.tolerance)
    if config.runtime.precision == "mixed_bfloat16":  # evaluated on a float32 copy
        assert json.loads((run_dir / "run.json").read_text())["runtime"]["precision"] == (
            "mixed_bfloat16"
        )
    if combo.lora:
        check_lora(run_dir, metrics)
    if combo.interpolate:
        curve = json.loads((run_dir / "interpolation.json").read_text())["curve"]
        assert [point["alpha"] for point in curve] == [0.0, 1.0]
        assert metrics["interpolation"]["curve"] == curve
    if combo.lora and combo.interpolate:
        check_pretrained_snapshot(config, run_dir, curve[0])
    if combo.cv:
        folds = json.loads((run_dir / "cv.json").read_text())["folds"]
        assert [fold["fold"] for fold in folds] == [0, 1]
        assert metrics["cross_validation"]["folds"] == folds


def check_export(export: dict, onnx: bool, tolerance: float) -> None:
    version_dir = Path(export["version_dir"])
    assert (version_dir / "saved_model.pb").is_file()
    assert export["savedmodel_max_abs_diff"] <= tolerance
    assert ("onnx_max_abs_diff" in export) == onnx
    if onnx:
        assert export["onnx_max_abs_diff"] <= tolerance


def check_lora(run_dir: Path, metrics: dict) -> None:
    """The adapter is saved, and the weights that were exported have no LoRA variables."""
    assert metrics["phases"][-1]["trainable"] == "lora"
    assert (run_dir / "adapter.weights.h5").is_file()
    names = h5_names(run_dir / "model.weights.h5")
    assert names and not [name for name in names if "lora" in name]


def check_pretrained_snapshot(config, run_dir: Path, alpha_zero: dict) -> None:
    """θ_pre of a LoRA run, loaded into the merged plain model as WiSE-FT does, is the preset's
    backbone with the head the head phase ended with, and α = 0 of the curve scores it."""
    from ftk.runs.finalize import compile_for_evaluation
    from ftk.runs.model import load_task
    from ftk.training.fit import load_weights

    task, splits, info = load_task(config)

    def plain(path=None):
        model = task.build_model(info, config, splits.label_names)  # no LoRA
        if path is not None:
            load_weights(model, path)
        return model

    pre, fresh, after_head = plain(run_dir / "pretrained.weights.h5"), plain(), plain()
    load_weights(after_head, run_dir / "phases" / "0-head.weights.h5")
    for got, preset in zip(pre.backbone.get_weights(), fresh.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(got, preset)
    for got, head in zip(pre.get_weights(), after_head.get_weights(), strict=True):
        np.testing.assert_array_equal(got, head)
    compile_for_evaluation(pre, task, config)
    scored = pre.evaluate(
        task.dataset(splits.validation, config, False), verbose=0, return_dict=True
    )
    assert alpha_zero["accuracy"] == pytest.approx(scored["accuracy"], abs=1e-6)
    assert alpha_zero["loss"] == pytest.approx(scored["loss"], rel=1e-5)


def test_cached_feature_search_then_the_final_run_exports(tmp_path, tiny_preset, small_csv):
    """The search's cached-feature path (a head-only search), then the best config trained,
    evaluated and exported."""
    import csv

    from ftk.tuning.command import tune

    config = load_config(
        config_path(tmp_path, tiny_preset, small_csv),
        [
            "model.trainable=head",
            "train.epochs=1",
            "export.onnx=false",
            "tune.max_trials=2",
            "tune.epochs=1",
            "tune.objective=val_loss",
            'tune.space={"train.learning_rate" = [1e-3, 3e-2]}',
        ],
    )
    assert config.tune.cache_features
    result = tune(config, verbose=0)
    directory = Path(result["search"]["directory"])
    with (directory / "trials.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {row["path"] for row in rows} == {"cached"}
    assert all(row["status"] == "COMPLETED" for row in rows)
    summary = result["run"]
    assert math.isfinite(summary["test_accuracy"])
    check_export(summary["export"], False, config.export.tolerance)
