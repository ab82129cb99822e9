"""The LR finder on a whole project config: the sweep sized to the data (still covering the
whole rate range) and logged, and the `lr-find` command's plot, suggestion and `--apply`."""

import json
import logging

import numpy as np
import pytest
from helpers import make_rows, write_csv, write_tiny_config

from ftk.config import load_config
from ftk.training.lr_find import ExponentialSweep


def test_sweep_on_40_examples_takes_fewer_steps_over_the_whole_range(
    tmp_path, tiny_preset, caplog, monkeypatch
):
    from ftk.runs.find_lr import find_learning_rate

    data = write_csv(tmp_path / "train.csv", make_rows(17)[:50])
    path = write_tiny_config(tmp_path, tiny_preset, data)
    config = load_config(path, ["data.validation_split=0.1", "data.test_split=0.1"])
    monkeypatch.setattr(logging.getLogger("ftk"), "propagate", True)  # off after a CLI test
    with caplog.at_level(logging.INFO, logger="ftk"):
        summary = find_learning_rate(config, steps=100, verbose=0)
    logged = [r.getMessage() for r in caplog.records]
    assert (
        "LR finder (finetune phase, all weights): 20 steps, rates 1e-07 to 1 (4 passes over 40 "
        "training examples at batch 8: at least 20 steps; --lr-find-steps 100 asks for 20 passes)"
    ) in logged
    (written,) = (tmp_path / "runs").glob("*/lr_find.json")
    assert json.loads(written.read_text()) == json.loads(json.dumps(summary))
    sizing = (summary["steps"], summary["steps_requested"], summary["batches_per_pass"])
    assert sizing == (20, 100, 5)
    lrs = summary["learning_rates"]
    assert len(lrs) == summary["steps_run"] <= 20
    # The 20 steps sweep the whole range: 1e-7 at the first, 1 at the last (geometric steps).
    sweep = ExponentialSweep(1e-7, 1.0, 20)
    np.testing.assert_allclose(lrs, [sweep.value(i) for i in range(len(lrs))], rtol=1e-9)
    assert sweep.value(19) == pytest.approx(1.0)
    if not summary["stopped_early"]:
        assert len(lrs) == 20 and lrs[-1] == pytest.approx(1.0)


def test_lr_find_command_plots_suggests_and_writes_only_when_asked(
    tmp_path, tiny_preset, tiny_csv, capsys
):
    from PIL import Image

    from ftk.cli.main import main as ftk_main

    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv, recipe="two_phase")
    original = path.read_text()
    args = ["lr-find", "--config", str(path), "--lr-find-steps", "60", "--quiet"]
    assert ftk_main(args) == 0
    assert path.read_text() == original  # no --apply: the config is untouched
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "lr_find.json").read_text())
    assert result["key"] == "train.learning_rate" and result["rule"] in (
        "steepest",
        "minimum_tenth",
    )
    assert 1e-7 <= result["suggestion"] <= 1.0
    assert Image.open(run_dir / "lr_find.png").size == (800, 500)
    # Nothing trained or saved: no checkpoints, weights or exports.
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "model.weights.h5").exists()
    assert not (tmp_path / "saved_models").exists()
    assert "suggested train.learning_rate" in capsys.readouterr().out

    assert ftk_main([*args, "--apply", "--lr-find", "head"]) == 0
    (backup,) = tmp_path.glob("config.toml.*.bak")
    assert backup.read_text() == original
    applied = json.loads(sorted((tmp_path / "runs").glob("*/lr_find.json"))[-1].read_text())
    assert applied["key"] == "recipe.head_learning_rate"
    assert load_config(path).recipe.head_learning_rate == applied["suggestion"]
    assert load_config(path).train.learning_rate == 3e-3  # the other key is unchanged
