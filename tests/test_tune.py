"""Hyperparameter search: the space from the config, a search that beats a bad default, the
cached-feature path against the full path, resume after a kill, Hyperband continuing trials,
the results files, flat memory, and the final training with the best values."""

import csv
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import ANY

import keras
import pytest
from conftest import REPO, make_rows, tiny_config_toml, tiny_vocabulary, write_csv

from ftk.config import AugmentConfig, load_config
from ftk.errors import ConfigError
from ftk.tuning.command import tune
from ftk.tuning.space import search_space, trial_config, uses_cached_features

SPACE_LR = '{"train.learning_rate" = [1e-6, 1e-4, 3e-2]}'


@pytest.fixture(scope="module")
def pretrained_tiny(tmp_path_factory) -> Path:
    """A tiny BERT briefly trained on the toy topics, saved as a keras-hub preset: its frozen
    features carry the labels, so head-only tuning has something to find (a random tiny BERT's
    pooled output does not)."""
    import keras
    import keras_hub
    import tensorflow as tf
    from conftest import TINY_BACKBONE

    path = tmp_path_factory.mktemp("pretrained_tiny")
    keras.utils.set_random_seed(0)
    vocab = tiny_vocabulary()
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), **TINY_BACKBONE)
    classifier = keras_hub.models.BertTextClassifier(
        backbone,
        num_classes=3,
        preprocessor=keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16),
    )
    rows = make_rows(40, seed=5)
    labels = sorted({label for _, label in rows})
    data = tf.data.Dataset.from_tensor_slices(
        ([t for t, _ in rows], [labels.index(label) for _, label in rows])
    )
    classifier.compile(
        optimizer=keras.optimizers.AdamW(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier.fit(data.shuffle(200, seed=0).batch(8), epochs=6, verbose=0)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
    return path


@pytest.fixture(scope="module")
def topics_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("topics") / "train.csv", make_rows(60, seed=1))


def write_config(tmp_path, preset, data, *extra: str) -> Path:
    text = tiny_config_toml(preset, data, tmp_path) + "\n".join(extra) + "\n"
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def head_search(tmp_path, preset, data, *overrides):
    path = write_config(tmp_path, preset, data)
    return path, load_config(
        path,
        [
            "model.trainable=head",
            "export.onnx=false",
            "tune.objective=val_loss",
            "tune.epochs=4",
            *overrides,
        ],
    )


def ftk_tune(config: Path, overrides: list[str], *args: str) -> list[str]:
    """`python -m ftk.cli.main tune` for a subprocess: search only, quiet."""
    command = [sys.executable, "-m", "ftk.cli.main", "tune", "--config", str(config), *args]
    command += ["--search-only", "--quiet"]
    for override in overrides:
        command += ["--set", override]
    return command


def trials(directory: Path) -> list[dict]:
    with (directory / "trials.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- the space -------------------------------------------------------------------------------


def test_space_from_config_and_errors(tmp_path, tiny_preset, tiny_csv):
    path = write_config(tmp_path, tiny_preset, tiny_csv)
    config = load_config(path)
    lr = config.train.learning_rate
    assert search_space(config) == {
        "train.learning_rate": {"min": lr / 10, "max": lr * 10, "log": True, "step": None}
    }
    spaced = load_config(
        path,
        [
            'tune.space={"model.trainable" = ["head", "all"], "train.weight_decay" = 0.0, '
            '"train.batch_size" = {min = 4, max = 16, step = 4}}'
        ],
    )
    space = search_space(spaced)
    assert space["model.trainable"] == {"values": ["head", "all"]}
    assert space["train.weight_decay"] == {"value": 0.0}
    assert space["train.batch_size"] == {"min": 4, "max": 16, "log": False, "step": 4}
    trial = trial_config(spaced, {"model.trainable": "head", "train.batch_size": 12})
    assert (trial.model.trainable, trial.train.batch_size, trial.tune.enabled) == (
        "head",
        12,
        False,
    )
    assert uses_cached_features(spaced, space)[0] is False  # model.trainable is searched
    images = dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, task="image_classification"),
        model=dataclasses.replace(config.model, trainable="head"),
    )
    plain = dataclasses.replace(images, augment=AugmentConfig(False, 0.0, 0.0, 0.0))
    assert uses_cached_features(plain, search_space(config)) == (True, ANY)
    cached, why = uses_cached_features(images, search_space(config))  # default augmentation
    assert not cached and "training images are augmented" in why

    def error(*overrides) -> str:
        with pytest.raises(ConfigError) as info:
            config = load_config(path, list(overrides))
            from ftk.tuning.space import check_space

            check_space(config, search_space(config))
        return str(info.value)

    assert "'data.path' cannot be searched" in error('tune.space={"data.path" = ["a"]}')
    assert "not a number" in error('tune.space={"model.trainable" = {min = 1, max = 2}}')
    assert "min < max" in error('tune.space={"model.dropout" = {min = 0.5, max = 0.1}}')
    message = error('tune.space={"train.learning_rate" = [1e-3, 2.0]}')
    assert '`tune.space."train.learning_rate"` includes 2.0' in message and "(0, 1)" in message
    assert "needs a finite grid" in error(
        "tune.algorithm=grid", 'tune.space={"model.dropout" = {min = 0.0, max = 0.3}}'
    )
    assert "tune.algorithm" in error("tune.algorithm=annealing")
    message = error("recipe.name=two_phase", "tune.epochs=1")
    assert "trial with tune.epochs=1 is not valid" in message and "recipe.head_epochs" in message


def test_no_validation_split_is_an_error(tmp_path, tiny_preset, tiny_csv):
    _, config = head_search(tmp_path, tiny_preset, tiny_csv, "data.validation_split=0")
    with pytest.raises(ConfigError, match="validation split"):
        tune(config, search_only=True, verbose=0)


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
    rows = trials(directory)
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
    assert path.read_text() == write_config(tmp_path, pretrained_tiny, topics_csv).read_text()


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
        rows = trials(Path(search["directory"]))
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


def _status(directory: Path, trial_id: str) -> str | None:
    path = directory / f"trial_{trial_id}" / "trial.json"
    try:
        return json.loads(path.read_text())["status"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_killed_search_resumes_without_repeating_trials(tmp_path, pretrained_tiny, topics_csv):
    path, config = head_search(
        tmp_path,
        pretrained_tiny,
        topics_csv,
        "tune.max_trials=3",
        "tune.epochs=10",
    )
    overrides = [
        "model.trainable=head",
        "tune.objective=val_loss",
        "tune.epochs=10",
        "tune.max_trials=3",
    ]
    command = ftk_tune(path, overrides)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    directory = Path(config.run.run_dir) / "tune" / "search"
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while _status(directory, "1") != "COMPLETED" or _status(directory, "2") != "RUNNING":
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the search did not reach trial 2 in time"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)  # mid-trial 2
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        process.stderr.close()
    done = {t: (directory / f"trial_{t}" / "ftk_trial.json").stat().st_mtime_ns for t in "01"}
    assert not (directory / "trial_2" / "ftk_trial.json").exists()

    search = tune(
        load_config(path, overrides + ["export.onnx=false"]), search_only=True, verbose=0
    )["search"]
    rows = trials(directory)
    assert [r["trial"] for r in rows] == ["1", "2", "3"]  # directories trial_0 .. trial_2
    assert all(r["status"] == "COMPLETED" for r in rows) and search["completed"] == 3
    assert {
        t: (directory / f"trial_{t}" / "ftk_trial.json").stat().st_mtime_ns for t in "01"
    } == done
    values = [
        tuple(
            sorted(
                json.loads((directory / f"trial_{t}" / "trial.json").read_text())[
                    "hyperparameters"
                ]["values"].items()
            )
        )
        for t in "012"
    ]
    assert len(set(values)) == 3  # the interrupted trial was retried, not duplicated


# --- the full flow and memory ----------------------------------------------------------------


def test_tune_then_train_exports_the_best_config(tmp_path, pretrained_tiny, topics_csv):
    from ftk.cli.main import train_main

    path = write_config(tmp_path, pretrained_tiny, topics_csv)
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


def test_full_trial_runs_the_recipe_phases_in_its_epoch_window(tmp_path, tiny_preset, tiny_csv):
    """RecipeHyperModel (what a trial process runs): the recipe's phases, restricted to the
    epochs a trial trains (Hyperband continues trials from a later epoch)."""
    import keras_tuner

    from ftk.runs.model import load_task
    from ftk.tuning.hypermodels import RecipeHyperModel

    path = write_config(tmp_path, tiny_preset, tiny_csv)
    config = load_config(
        path, ["recipe.name=two_phase", "tune.epochs=2", "train.steps_per_epoch=1"]
    )
    space = search_space(config)
    task, splits, info = load_task(config, None)
    hypermodel = RecipeHyperModel(config, space, task, info, splits, verbose=0)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    seen = []

    class Trainable(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((epoch, len(self.model.trainable_weights)))

    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model, callbacks=[Trainable()])
    assert len(history.history["val_loss"]) == 2  # tune.epochs: 1 head epoch + 1 fine-tuning
    head_only, full = seen[0][1], seen[1][1]
    assert head_only == 2 and full > head_only
    seen.clear()
    history = hypermodel.fit(hp, model, callbacks=[Trainable()], initial_epoch=1)
    assert seen == [(1, full)] and len(history.history["val_loss"]) == 1


def test_cli_errors_are_one_line(tmp_path, tiny_preset, tiny_csv, capsys):
    from ftk.cli.main import train_main

    path = write_config(tmp_path, tiny_preset, tiny_csv)
    for argv, message in [
        (["--workers", "2"], "--workers N (N >= 1) goes with --tune"),
        (["--search-only"], "--search-only goes with --tune"),
        (["--tune", "--lr-find"], "one at a time"),
        (["--tune", "--resume", str(tmp_path)], "rerunning the same --tune command"),
    ]:
        assert train_main(["--config", str(path), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ftk: error: ") and message in err and "\n" not in err


# --- distributed -----------------------------------------------------------------------------


def test_chief_and_two_workers_on_loopback(tmp_path, pretrained_tiny, topics_csv):
    """`ftk tune --workers 2`: KerasTuner's chief and two workers on 127.0.0.1, supervised by
    ftk.tuning.distributed (its failure handling is tested in test_tune_launcher.py)."""
    path = write_config(tmp_path, pretrained_tiny, topics_csv)
    overrides = [
        "model.trainable=head",
        "tune.objective=val_loss",
        "tune.epochs=10",
        "tune.max_trials=4",
    ]
    command = ftk_tune(path, overrides, "--workers", "2")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 400
    directory = tmp_path / "runs" / "tune" / "search"
    rows = trials(directory)
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows)
    assert {r["worker"] for r in rows} == {"tuner0", "tuner1"}
    assert {p.name for p in (directory / "logs").iterdir()} >= {"chief.log", "tuner0.log"}
    assert "best trial" in done.stdout
