"""`train.monitor`: checkpoints, early stopping, WiSE-FT's α and the search's trials choose by
any of the task's validation metrics, in its direction; metrics that are no Keras compile
metric (classification's macro-F1) are measured at each epoch's end before anything reads
the epoch's logs."""

import csv

import keras
import numpy as np
import pytest
from helpers import examples, write_tiny_config

from ftk.config import TrainConfig, load_config
from ftk.errors import ConfigError
from ftk.tasks.registry import get_task
from ftk.training.epoch_metrics import EpochMetrics, epoch_metric_callbacks
from ftk.training.fit import best_checkpoint, callbacks, fit
from ftk.training.monitor import Monitor, interpolation_metric, monitor


def config_for(tmp_path, tiny_preset, tiny_csv, *overrides):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    return load_config(path, ['export.export_dir=""', *overrides])


def test_monitor_names_one_of_the_tasks_objectives(tmp_path, tiny_preset, tiny_csv):
    with pytest.raises(ConfigError) as error:
        config_for(tmp_path, tiny_preset, tiny_csv, "train.monitor=val_f1")
    assert str(error.value) == (
        "`train.monitor` must be 'auto' or one of val_accuracy, val_macro_f1, val_loss (a "
        "validation metric of run.task='text_classification'). Received: train.monitor='val_f1'"
    )
    auto = config_for(tmp_path, tiny_preset, tiny_csv)
    assert auto.train.monitor == "auto"
    assert monitor(auto) == Monitor("val_loss", "min")
    assert monitor(auto, has_validation=False) == Monitor("loss", "min")
    f1 = config_for(tmp_path, tiny_preset, tiny_csv, "train.monitor=val_macro_f1")
    assert monitor(f1) == Monitor("val_macro_f1", "max")
    assert monitor(f1, has_validation=False) == Monitor("loss", "min")  # a fold without one
    assert monitor(config_for(tmp_path, tiny_preset, tiny_csv, "train.monitor=val_loss")).mode == (
        "min"
    )
    task = get_task("text_classification")
    assert interpolation_metric(auto, task) == "accuracy"  # the task's own, as before
    assert interpolation_metric(f1, task) == "macro_f1"
    # The epoch metric is measured only when something chooses by it.
    assert epoch_metric_callbacks(task, auto, examples(2)) == []
    assert len(epoch_metric_callbacks(task, f1, examples(2))) == 1
    assert epoch_metric_callbacks(task, f1, None) == []  # no validation split
    searched = config_for(tmp_path, tiny_preset, tiny_csv, "tune.objective=val_macro_f1")
    assert len(epoch_metric_callbacks(task, searched, examples(2))) == 1


def test_best_checkpoint_follows_the_monitors_direction(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for name in (
        "epoch001-val_macro_f1=0.500000",
        "epoch002-val_macro_f1=0.900000",
        "epoch003-val_macro_f1=0.700000",
        "epoch004-val_macro_f1=nan",
        "epoch005-val_loss=0.100000",  # another metric's file is never compared
    ):
        (tmp_path / "checkpoints" / f"{name}.weights.h5").write_bytes(b"")
    best = best_checkpoint(tmp_path, Monitor("val_macro_f1", "max"))
    assert best.name == "epoch002-val_macro_f1=0.900000.weights.h5"
    lowest = best_checkpoint(tmp_path, Monitor("val_macro_f1", "min"))
    assert lowest.name == "epoch001-val_macro_f1=0.500000.weights.h5"
    assert best_checkpoint(tmp_path, Monitor("val_accuracy", "max")) is None
    # Names from before train.monitor are still read, beside new ones (a resumed old run).
    (tmp_path / "checkpoints" / "epoch003-val_loss0.050000.weights.h5").write_bytes(b"")
    for watched in (None, Monitor("val_loss", "min")):
        assert best_checkpoint(tmp_path, watched).name == "epoch003-val_loss0.050000.weights.h5"


def test_early_stopping_and_the_checkpoint_follow_the_direction(tmp_path):
    train = TrainConfig(early_stopping_patience=1)
    out = callbacks(tmp_path, train, True, monitor=Monitor("val_macro_f1", "max"))
    (checkpoint,) = [c for c in out if isinstance(c, keras.callbacks.ModelCheckpoint)]
    (stopping,) = [c for c in out if isinstance(c, keras.callbacks.EarlyStopping)]
    assert (checkpoint.monitor, stopping.monitor) == ("val_macro_f1", "val_macro_f1")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def stops_after(stopping, values) -> int | None:
        model.stop_training = False
        stopping.set_model(model)
        stopping.on_train_begin()
        for epoch, value in enumerate(values):
            stopping.on_epoch_end(epoch, {"val_macro_f1": value})
            if model.stop_training:
                return epoch
        return None

    rising = [0.5, 0.6, 0.7, 0.65]  # better and better, then one epoch worse
    assert stops_after(stopping, rising) == 3  # patience 1 runs out only after the drop
    assert stopping.best == 0.7
    minimised = callbacks(tmp_path, train, True, monitor=Monitor("val_macro_f1", "min"))
    (wrong_way,) = [c for c in minimised if isinstance(c, keras.callbacks.EarlyStopping)]
    assert stops_after(wrong_way, rising) == 1  # read as a loss, rising is getting worse
    # The search's trials stop on the same metric, in the same direction.
    from ftk.config import Config
    from ftk.config.loading import replace
    from ftk.tuning.hypermodels import _early_stopping

    config = replace(Config(), train={"monitor": "val_macro_f1", "early_stopping_patience": 2})
    (trial_stopping,) = _early_stopping(config)
    assert (trial_stopping.monitor, trial_stopping.mode) == ("val_macro_f1", "max")


class _Scores:
    """A task whose epoch metric is a fixed sequence, one value per epoch."""

    epoch_metric_names = ("macro_f1",)

    def __init__(self, values):
        self.values = iter(values)

    def epoch_metrics(self, model, dataset, examples, config):
        return {"macro_f1": next(self.values)}


def test_epoch_metrics_reach_the_checkpoint_history_and_csv(tmp_path):
    """The epoch metric is in the logs before the checkpoint, early stopping and CSVLogger read
    them: without it first, ModelCheckpoint would find no `val_macro_f1` and save nothing."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 2), np.float32), np.zeros((8, 2), np.float32)
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    scores = [0.2, 0.8, 0.5, 0.6]
    measure = EpochMetrics(_Scores(scores), None, examples(1), dataset=data)
    watched = Monitor("val_macro_f1", "max")
    out = callbacks(tmp_path, TrainConfig(), True, monitor=watched, first=[measure])
    assert out[0] is measure
    history = fit(
        model,
        data,
        data,
        tmp_path,
        TrainConfig(epochs=4, early_stopping_patience=0),
        verbose=0,
        monitor=watched,
        first_callbacks=[EpochMetrics(_Scores(scores), None, examples(1), dataset=data)],
    )
    assert history.history["val_macro_f1"] == scores
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == [  # only the epochs that improved the maximum
        "epoch001-val_macro_f1=0.200000.weights.h5",
        "epoch002-val_macro_f1=0.800000.weights.h5",
    ]
    with (tmp_path / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_macro_f1"]) for r in rows] == scores


def test_a_run_monitoring_macro_f1_keeps_its_best_epoch_and_alpha(tmp_path, tiny_preset, tiny_csv):
    """A real (tiny) fit with train.monitor = "val_macro_f1": the loaded weights are those of
    the epoch with the highest validation macro-F1, and WiSE-FT scores α by macro-F1."""
    from ftk.data.text import to_dataset
    from ftk.models.text import build_text_classifier
    from ftk.presets.resolve import resolve_preset
    from ftk.runs.files import RunFiles
    from ftk.runs.finalize import interpolate_run
    from ftk.training.interpolate import best_alpha
    from ftk.training.recipes import train_phases

    config = config_for(
        tmp_path,
        tiny_preset,
        tiny_csv,
        "train.monitor=val_macro_f1",
        "train.epochs=3",
        "train.learning_rate=1e-2",
        "recipe.interpolate=true",
        "recipe.interpolation_points=3",
    )
    task = get_task(config.run.task)
    keras.utils.set_random_seed(1)
    model = build_text_classifier(resolve_preset(str(tiny_preset)), config.model, 3)
    train, validation = examples(8), examples(6, seed=5)
    val_ds = task.dataset(validation, config, False)
    run_dir = tmp_path / "run"
    train_phases(
        model,
        to_dataset(train, 8, 100, 0),
        val_ds,
        run_dir,
        config,
        len(train),
        0,
        validation_examples=validation,
    )
    with (run_dir / "history.csv").open() as f:
        f1s = [float(r["val_macro_f1"]) for r in csv.DictReader(f)]
    assert len(f1s) == 3
    best = best_checkpoint(run_dir, Monitor("val_macro_f1", "max"))
    assert best.name.startswith(f"epoch{int(np.argmax(f1s)) + 1:03d}-val_macro_f1=")
    measured = task.epoch_metrics(model, val_ds, validation, config)["macro_f1"]
    assert measured == pytest.approx(max(f1s), abs=1e-6)  # the loaded weights are that epoch's

    result = interpolate_run(model, task, val_ds, RunFiles(run_dir), config, validation)
    assert result["metric"] == "macro_f1"
    curve = result["curve"]
    assert [p["alpha"] for p in curve] == [0.0, 0.5, 1.0]
    assert curve[-1]["macro_f1"] == pytest.approx(measured, abs=1e-6)
    assert result["best_alpha"] == best_alpha(curve, "macro_f1", maximize=True)


def test_a_search_trial_logs_macro_f1(tmp_path, tiny_preset, tiny_csv):
    """A cached-feature trial (KerasTuner reads the objective from the epoch's logs and the
    returned history) measures `val_macro_f1` at every epoch, on the head's predictions."""
    import keras_tuner

    from ftk.tasks.classification.metrics import classification_report
    from ftk.tuning.hypermodels import HeadHyperModel

    config = config_for(
        tmp_path,
        tiny_preset,
        tiny_csv,
        "model.trainable=head",
        "tune.objective=val_macro_f1",
        "train.epochs=3",
    )
    rng = np.random.default_rng(0)
    labels = (np.arange(24) % 3).astype(np.int32)
    features = {
        "train_x": (rng.normal(size=(24, 4)) + labels[:, None]).astype(np.float32),
        "train_y": labels,
        "validation_x": (rng.normal(size=(12, 4)) + labels[:12, None]).astype(np.float32),
        "validation_y": labels[:12],
    }
    head = {
        "dropout": keras.layers.Dropout(0.1).get_config(),
        "dense": keras.layers.Dense(3, name="logits").get_config(),
    }
    hypermodel = HeadHyperModel(config, {}, features, head, verbose=0)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model)
    f1s = history.history["val_macro_f1"]
    assert len(f1s) == 3 and all(0.0 <= f for f in f1s)
    predicted = model.predict(features["validation_x"], verbose=0).argmax(-1)
    expected = classification_report(labels[:12], predicted, ["a", "b", "c"])["macro_f1"]
    assert f1s[-1] == pytest.approx(expected)
