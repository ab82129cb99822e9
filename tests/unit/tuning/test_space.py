"""The search space from the config and its errors, and what a trial trains (the recipe's
phases in its epoch window), on the tiny preset without a search."""

import dataclasses
from unittest.mock import ANY

import keras
import pytest
from helpers import head_search, write_tiny_config

from ftk.config import AugmentConfig, load_config
from ftk.errors import ConfigError
from ftk.tuning.command import tune
from ftk.tuning.space import search_space, trial_config, uses_cached_features


def test_space_from_config_and_errors(tmp_path, tiny_preset, tiny_csv):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
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


def test_full_trial_runs_the_recipe_phases_in_its_epoch_window(tmp_path, tiny_preset, tiny_csv):
    """RecipeHyperModel (what a trial process runs): the recipe's phases, restricted to the
    epochs a trial trains (Hyperband continues trials from a later epoch)."""
    import keras_tuner

    from ftk.runs.model import load_task
    from ftk.tuning.hypermodels import RecipeHyperModel

    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
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
