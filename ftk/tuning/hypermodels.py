"""KerasTuner HyperModels: one trial = one config (`ftk.tuning.space.trial_config`).

- `RecipeHyperModel` (the full path): builds the task model with `ftk.runs.model.build_model`,
  the builder `train.py` uses, and trains it with the recipe's phases (`ftk.training.recipes`): each
  phase sets its trainable weights and compiles with `compile_phase`, as in a run.
- `HeadHyperModel` (the cached-feature path, head-only searches): the backbone's output for
  every training and validation example is computed once (`cache_features`); each trial then
  trains only a copy of the classifier's head (its own dropout and dense layers, rebuilt from
  their configs) on those features. The head sees the same features a frozen backbone gives,
  computed in inference mode (the backbone's own dropout off).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from ftk.config import Config
from ftk.errors import ConfigError
from ftk.tuning.space import declare, trial_config, values_of

logger = logging.getLogger("ftk")


class _SpaceHyperModel(keras_tuner.HyperModel):
    """Declares the config's search space and turns a trial's values into a config."""

    def __init__(self, config: Config, space: dict, verbose="auto"):
        super().__init__(name="ftk")
        self.config = config
        self.space = space
        self.verbose = verbose

    def declare_hyperparameters(self, hp):
        declare(hp, self.space)

    def trial_config(self, hp) -> Config:
        try:
            return trial_config(self.config, values_of(hp.values, self.space))
        except ConfigError as e:  # a combination of valid values that is not valid together
            raise keras_tuner.errors.FailedTrialError(str(e)) from None


def _history(histories: list) -> keras.callbacks.History:
    """One History of several `fit` calls (the recipe's phases), epochs in order."""
    merged = keras.callbacks.History()
    merged.history = {}
    for history in histories:
        for key, values in history.history.items():
            merged.history.setdefault(key, []).extend(values)
    return merged


def _early_stopping(config: Config) -> list:
    """Early stopping on `train.monitor` (`val_loss` with `auto`), in its direction."""
    from ftk.training.monitor import monitor

    patience = config.train.early_stopping_patience
    if not patience:
        return []
    watched = monitor(config)
    return [keras.callbacks.EarlyStopping(watched.name, patience=patience, mode=watched.mode)]


def _callbacks(config: Config, task, examples, dataset, callbacks) -> list:
    """A trial's callbacks: the task's epoch metrics (`val_macro_f1`, ... when `tune.objective`
    or `train.monitor` names one) first, so that KerasTuner's and early stopping see them."""
    from ftk.training.epoch_metrics import epoch_metric_callbacks

    measure = epoch_metric_callbacks(task, config, examples, dataset)
    return [*measure, *callbacks, *_early_stopping(config)]


class RecipeHyperModel(_SpaceHyperModel):
    """The full path: the task's pretrained model, trained with the trial's recipe."""

    def __init__(self, config: Config, space: dict, task, info, splits, verbose="auto"):
        super().__init__(config, space, verbose)
        self.task, self.info, self.splits = task, info, splits

    def build(self, hp):
        from ftk.runs.model import build_model

        trial = self.trial_config(hp)
        keras.utils.set_random_seed(trial.run.seed)  # trials differ by their values only
        return build_model(self.task, self.info, trial, self.splits.label_names)

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        """Every phase of the trial's recipe, restricted to epochs `[initial_epoch, epochs)`
        (Hyperband trains the first epochs of a plan, then continues it)."""
        from ftk.models.trainable import backbone_blocks
        from ftk.training.recipes import compile_phase, plan_phases, steps_per_epoch

        trial = self.trial_config(hp)
        splits = self.splits
        train_ds = self.task.dataset(splits.train, trial, True)
        val_ds = self.task.dataset(splits.validation, trial, False)
        phases = plan_phases(trial, len(backbone_blocks(model.backbone)))
        steps = steps_per_epoch(trial, len(splits.train))
        last = trial.train.epochs if epochs is None else epochs
        histories, start = [], 0
        for phase in phases:
            end = start + phase.epochs
            first, stop = max(start, initial_epoch), min(end, last)
            if first < stop:
                compile_phase(model, trial, phase, steps * phase.epochs)
                history = model.fit(
                    train_ds,
                    validation_data=val_ds,
                    initial_epoch=first,
                    epochs=stop,
                    steps_per_epoch=trial.train.steps_per_epoch or None,
                    callbacks=_callbacks(trial, self.task, splits.validation, val_ds, callbacks),
                    verbose=self.verbose,
                )
                histories.append(history)
                if model.stop_training:  # early stopping ends the trial, not just the phase
                    break
            start = end
        return _history(histories)


class HeadHyperModel(_SpaceHyperModel):
    """The cached-feature path: the classifier's head trained on cached backbone features."""

    def __init__(self, config: Config, space: dict, features: dict, head: dict, verbose="auto"):
        super().__init__(config, space, verbose)
        self.features = features
        self.head = head  # {"dropout": Dropout config, "dense": Dense config}

    def build(self, hp):
        trial = self.trial_config(hp)
        keras.utils.set_random_seed(trial.run.seed)
        dim = self.features["train_x"].shape[-1]
        return keras.Sequential(
            [
                keras.Input((dim,), name="features"),
                keras.layers.Dropout.from_config(
                    {**self.head["dropout"], "rate": trial.model.dropout}
                ),
                keras.layers.Dense.from_config(self.head["dense"]),
            ],
            name="head",
        )

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        from ftk.tasks.registry import get_task
        from ftk.training.fit import compile_model
        from ftk.training.recipes import phase_schedule, plan_phases, steps_per_epoch

        trial = self.trial_config(hp)
        x, y = self.features["train_x"], self.features["train_y"]
        (phase,) = plan_phases(trial, 0)  # head-only: one phase at train.learning_rate
        steps = steps_per_epoch(trial, len(x))
        multipliers = (
            [(v, trial.recipe.lr_head) for v in model.trainable_weights]
            if trial.recipe.lr_head != 1.0
            else None
        )
        task = get_task(trial.run.task)
        compile_model(
            model,
            trial.train,
            task.loss(trial),
            task.metrics(trial),
            phase_schedule(trial, phase, steps * phase.epochs),
            multipliers,
        )
        return model.fit(
            x,
            y,
            batch_size=trial.train.batch_size,
            shuffle=True,
            validation_data=(self.features["validation_x"], self.features["validation_y"]),
            initial_epoch=initial_epoch,
            epochs=trial.train.epochs if epochs is None else epochs,
            steps_per_epoch=trial.train.steps_per_epoch or None,
            callbacks=_callbacks(trial, task, *self._validation(trial), callbacks),
            verbose=self.verbose,
        )

    def _validation(self, config: Config) -> tuple:
        """The validation split as the task's epoch metrics take it: examples (their labels)
        and batches of `(features, label)`."""
        import tensorflow as tf

        from ftk.data.splits import Examples

        x, y = self.features["validation_x"], self.features["validation_y"]
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.train.batch_size)
        return Examples([""] * len(y), y), dataset


FEATURE_FILES = ("train_x", "train_y", "validation_x", "validation_y")


def feature_key(config: Config, splits, info) -> str:
    """What the cached features depend on: the data, the backbone and its input size."""
    facts = {
        "data": splits.fingerprint,
        "preset": info.source,
        "task": config.run.task,
        "sequence_length": config.model.sequence_length,
        "image_size": config.model.image_size,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def cache_features(config: Config, task, info, splits, directory: Path) -> tuple[dict, dict]:
    """The frozen backbone's output (the head's input) for the training and validation splits,
    computed once into `directory` (`<name>.npy`, reused while the key matches), and the head's
    layer configs. Returns `(features, head)`."""
    from ftk.files import read_json, write_atomic, write_json
    from ftk.runs.model import build_model

    directory.mkdir(parents=True, exist_ok=True)
    key = feature_key(config, splits, info)
    meta_path = directory / "features.json"
    meta = read_json(meta_path) if meta_path.exists() else {}
    if meta.get("key") == key and all((directory / f"{n}.npy").exists() for n in FEATURE_FILES):
        logger.info("Cached features: reusing %s", directory)
        features = {n: np.load(directory / f"{n}.npy", allow_pickle=False) for n in FEATURE_FILES}
        return features, meta["head"]
    keras.utils.set_random_seed(config.run.seed)
    model = build_model(task, info, config, splits.label_names)
    head = {
        "dropout": model.output_dropout.get_config(),
        "dense": model.output_dense.get_config(),
    }
    extractor = keras.Model(model.inputs, model.output_dropout.input)
    preprocess = model.preprocessor or (lambda x: x)
    features = {}
    for split in ("train", "validation"):
        examples = getattr(splits, split)
        logger.info("Cached features: the backbone over %d %s examples", len(examples), split)
        dataset = task.dataset(examples, config, False)  # no shuffling, no augmentation
        inputs = dataset.map(lambda x, y: preprocess(x))
        features[f"{split}_x"] = np.asarray(extractor.predict(inputs, verbose=0), np.float32)
        features[f"{split}_y"] = np.asarray(examples.labels, np.int32)
    for name, array in features.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_atomic(directory / f"{name}.npy", buffer.getvalue())
    shapes = {n: list(a.shape) for n, a in features.items()}
    write_json(meta_path, {"key": key, "head": head, "shapes": shapes})
    return features, head
