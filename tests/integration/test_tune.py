"""Hyperparameter search: the space from the config, a search that beats a bad default, the
cached-feature path against the full path, resume after a kill, Hyperband continuing trials,
the results files, flat memory, and the final training with the best values."""

import json
import logging
from pathlib import Path

import pytest
from helpers import head_search, read_trials, write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError
from ftk.tuning.command import tune

SPACE_LR = '{"train.learning_rate" = [1e-6, 1e-4, 3e-2]}'


# --- the space -------------------------------------------------------------------------------


# --- searching -------------------------------------------------------------------------------


def test_search_beats_a_bad_default_and_writes_results(
    tmp_path, pretrained_tiny, topics_csv, capsys, caplog, monkeypatch
):
    path, config = head_search(
        tmp_path,
        pretrained_tiny,
        topics_csv,
        "train.learning_rate=1e-6",  # deliberately bad: the head barely moves
        'tune.space={"train.learning_rate" = {min = 1e-3, max = 1e-1, log = true}, '
        '"model.dropout" = [0.0, 0.2]}',
        "tune.max_trials=3",
    )
    monkeypatch.setattr(logging.getLogger("ftk"), "propagate", True)  # off after a CLI test
    with caplog.at_level(logging.INFO, logger="ftk"):
        result = tune(config, search_only=True, verbose=1)  # KerasTuner's lines too
    search = result["search"]
    directory = Path(search["directory"])
    rows = read_trials(directory)
    assert len(rows) == 3 and all(r["status"] == "COMPLETED" for r in rows)
    assert all(r["path"] == "cached" for r in rows)
    # One numbering, from 1, as KerasTuner's "Trial 1 Complete" lines: in the table, the
    # summary, our log lines; the directories keep KerasTuner's ids (trial_0 is trial 1).
    assert [r["trial"] for r in rows] == ["1", "2", "3"]
    assert [r["trial_dir"] for r in rows] == ["trial_0", "trial_1", "trial_2"]
    shown = json.loads((directory / "oracle.json").read_text())["display"]["trial_number"]
    assert shown == {r["trial_dir"].removeprefix("trial_"): int(r["trial"]) for r in rows}
    out = capsys.readouterr().out
    assert all(f"Trial {n} Complete" in out for n in (1, 2, 3))
    logged = [r.getMessage() for r in caplog.records]
    assert all(any(m.startswith(f"Trial {n}: val_loss = ") for m in logged) for n in (1, 2, 3))
    assert not any(m.startswith("Trial 0") for m in logged)
    baseline = search["baseline"]
    assert float(rows[0]["train.learning_rate"]) == 1e-6 and baseline["trial"] == 1
    best_number = search["best"]["trial"]
    assert best_number in (2, 3) and f"trial {best_number}, val_loss" in logged[-1]
    assert "(the untuned config, trial 1: " in logged[-1]
    assert search["best"]["score"] < baseline["score"] - 0.05  # val_loss: lower is better
    assert 1e-3 <= search["best"]["values"]["train.learning_rate"] <= 1e-1
    # best_config.toml: the whole config with the best values, runnable from anywhere
    tuned = load_config(search["best_config"])
    assert tuned.train.learning_rate == search["best"]["values"]["train.learning_rate"]
    assert tuned.model.dropout == search["best"]["values"]["model.dropout"]
    assert tuned.tune.enabled is False and tuned.train.epochs == config.train.epochs
    assert Path(tuned.data.path) == topics_csv and Path(tuned.model.preset) == pretrained_tiny
    best = json.loads((directory / "best.json").read_text())
    assert best["best"] == search["best"] and best["trials"] == 3
    markdown = (directory / "trials.md").read_text()
    assert "| 1 (baseline) |" in markdown and f"| {best_number} (best) |" in markdown
    import matplotlib.image

    assert matplotlib.image.imread(directory / "trials.png").shape[:2] == (500, 800)
    assert path.read_text() == write_tiny_config(tmp_path, pretrained_tiny, topics_csv).read_text()


def test_cached_and_full_paths_pick_the_same_learning_rate(tmp_path, pretrained_tiny, topics_csv):
    picked, seconds = {}, {}
    for cached in (True, False):
        _, config = head_search(
            tmp_path,
            pretrained_tiny,
            topics_csv,
            f"tune.space={SPACE_LR}",
            "tune.algorithm=grid",
            "tune.max_trials=3",
            "tune.epochs=2",
            f"tune.cache_features={str(cached).lower()}",
            f"tune.name={'cached' if cached else 'full'}",
        )
        search = tune(config, search_only=True, verbose=0)["search"]
        rows = read_trials(Path(search["directory"]))
        assert {r["path"] for r in rows} == {"cached" if cached else "full"}
        assert sorted(float(r["train.learning_rate"]) for r in rows) == [1e-6, 1e-4, 3e-2]
        table = (Path(search["directory"]) / "trials.md").read_text()
        assert search["baseline"] is None and "(baseline)" not in table  # grid: no baseline
        picked[cached] = search["best"]["values"]["train.learning_rate"]
        seconds[cached] = search["median_trial_seconds"]
        if not cached:
            # Each full trial runs in its own process (TensorFlow keeps memory of every model
            # a process trained): the search process and the trial processes stay flat.
            for column in ("peak_rss_mb", "trial_peak_rss_mb"):
                peak = [float(r[column]) for r in rows]
                assert peak[-1] <= 1.10 * peak[0], (column, peak)
    assert picked[True] == picked[False] == 3e-2
    assert seconds[True] < seconds[False]


def test_budget_in_minutes_runs_the_first_trial_only(tmp_path, pretrained_tiny, topics_csv):
    _, config = head_search(
        tmp_path, pretrained_tiny, topics_csv, "tune.max_trials=5", "tune.max_minutes=0.0001"
    )
    search = tune(config, search_only=True, verbose=0)["search"]
    assert search["trials"] == 1 and search["completed"] == 1


def test_a_changed_config_does_not_continue_a_search(tmp_path, pretrained_tiny, topics_csv):
    _, config = head_search(tmp_path, pretrained_tiny, topics_csv, "tune.max_trials=1")
    tune(config, search_only=True, verbose=0)
    _, changed = head_search(
        tmp_path, pretrained_tiny, topics_csv, "tune.max_trials=2", "train.batch_size=4"
    )
    with pytest.raises(ConfigError, match=r"train.batch_size: 8 -> 4.*tune.name"):
        tune(changed, search_only=True, verbose=0)
    # More trials is the same search: it continues (trial 0 is not rerun).
    first = Path(config.run.run_dir) / "tune" / "search" / "trial_0" / "ftk_trial.json"
    before = first.stat().st_mtime_ns
    _, more = head_search(tmp_path, pretrained_tiny, topics_csv, "tune.max_trials=2")
    assert tune(more, search_only=True, verbose=0)["search"]["trials"] == 2
    assert first.stat().st_mtime_ns == before


def test_hyperband_continues_trials_from_their_weights(tmp_path, pretrained_tiny, topics_csv):
    _, config = head_search(
        tmp_path,
        pretrained_tiny,
        topics_csv,
        "tune.algorithm=hyperband",
        "tune.epochs=3",
        "tune.max_trials=5",
        'tune.space={"train.learning_rate" = {min = 1e-3, max = 1e-1, log = true}}',
    )
    search = tune(config, search_only=True, verbose=0)["search"]
    directory = Path(search["directory"])
    continued = [
        json.loads(p.read_text())["hyperparameters"]["values"]
        for p in directory.glob("trial_*/trial.json")
    ]
    continued = [v for v in continued if "tuner/trial_id" in v]
    assert continued, "no Hyperband trial continued an earlier one"
    assert search["completed"] == search["trials"] == 5


# --- resume ----------------------------------------------------------------------------------


# --- the full flow and memory ----------------------------------------------------------------


def test_tune_then_train_exports_the_best_config(tmp_path, pretrained_tiny, topics_csv):
    from ftk.cli.main import train_main

    path = write_tiny_config(tmp_path, pretrained_tiny, topics_csv)
    rc = train_main(
        [
            "--config",
            str(path),
            "--tune",
            "--apply",
            "--quiet",
            "--set",
            "model.trainable=head",
            "--set",
            "export.onnx=false",
            "--set",
            "tune.max_trials=2",
            "--set",
            "tune.objective=val_loss",
            "--set",
            "tune.epochs=4",
            "--set",
            f"tune.space={SPACE_LR}",
        ]
    )
    assert rc == 0
    best = json.loads((tmp_path / "runs" / "tune" / "search" / "best.json").read_text())
    runs = [p for p in (tmp_path / "runs").iterdir() if p.name != "tune"]
    assert len(runs) == 1
    run = json.loads((runs[0] / "run.json").read_text())
    assert run["tuned"]["best"] == best["best"]
    trained = load_config(runs[0] / "config.toml", base_dir=run["base_dir"])
    assert trained.train.learning_rate == best["best"]["values"]["train.learning_rate"]
    assert trained.train.epochs == 4 and trained.tune.enabled is False  # the run's own epochs
    assert (tmp_path / "saved_models" / "tiny" / "1" / "saved_model.pb").exists()
    # --apply wrote the best value into config.toml, keeping a backup
    assert load_config(path).train.learning_rate == best["best"]["values"]["train.learning_rate"]
    assert len(list(tmp_path.glob("config.toml.*.bak"))) == 1


# --- distributed -----------------------------------------------------------------------------
