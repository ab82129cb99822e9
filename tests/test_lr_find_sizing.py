"""LR finder log hygiene: the sweep sized to the data (still covering the whole rate range),
and a sweep that stops early reporting the step it stopped at (progress bar, lr_find.json)."""

import json
import logging

import numpy as np
import pytest
from conftest import make_rows, tiny_config_toml, write_csv
from test_lr_find import blobs, dataset, dense_model, sgd

from ftk.config import load_config
from ftk.errors import ConfigError
from ftk.training.lr_find import ExponentialSweep, lr_find, sweep_steps


def test_sweep_steps_are_sized_to_the_data():
    assert sweep_steps(100, 5) == 20  # 40 examples at batch 8: at least 20 steps
    assert sweep_steps(100, 25) == 50  # 200 examples at batch 8: at most 2 passes
    assert sweep_steps(100, 200) == 100  # plenty of data: the steps asked for
    assert sweep_steps(12, 5) == 12  # fewer asked for than the minimum: those
    with pytest.raises(ConfigError, match="batches"):
        sweep_steps(100, 0)


def test_sweep_on_40_examples_takes_fewer_steps_over_the_whole_range(
    tmp_path, tiny_preset, caplog, monkeypatch
):
    from ftk.runs.find_lr import find_learning_rate

    data = write_csv(tmp_path / "train.csv", make_rows(17)[:50])
    path = tmp_path / "config.toml"
    path.write_text(tiny_config_toml(tiny_preset, data, tmp_path), encoding="utf-8")
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


def test_a_sweep_that_stops_early_ends_its_bar_and_record_there(capsys):
    # As in test_lr_find's divergence test: random labels, huge rates.
    x, _ = blobs(256)
    y = np.random.default_rng(1).integers(0, 3, 256).astype("int32")
    capsys.readouterr()
    result = lr_find(
        dense_model(batch_norm=False),
        dataset(x, y, 64),
        sgd,
        start_lr=1e-3,
        end_lr=1e4,
        steps=100,
        verbose=2,
    )
    out = capsys.readouterr().out
    ran = len(result.losses)
    assert result.stopped_early and ran < 100
    # Keras' bar would jump to 100/100 here; it ends at the step the sweep stopped at.
    assert f"{ran}/{ran} " in out and "/100" not in out
    assert (result.to_json()["steps"], result.to_json()["steps_run"]) == (100, ran)
