"""Cross-field and range checks of a built `Config`, one function per section; a task's own
keys are checked by its `Task.validate`. Each failure is a `ConfigError` naming the key, what
was received and what is expected."""

from __future__ import annotations

import importlib.util

from ftk.config.choices import (
    CHOICES,
    CONFLICTING_LABELS,
    DISTRIBUTIONS,
    MAX_REPORT_MISTAKES,
    NAME_HELP,
    NAME_RE,
    TRAINABLE_HELP,
    TRAINABLE_RE,
)
from ftk.config.schema import Config
from ftk.config.space import search_spec
from ftk.errors import ConfigError
from ftk.tasks.registry import get_task


def validate(config: Config) -> None:
    """Cross-field and range checks. Raises `ConfigError` naming the key."""

    def fail(key: str, expected: str) -> None:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        raise ConfigError(f"`{key}` must be {expected}. Received: {key}={value!r}")

    _validate_runtime(config, fail)
    _validate_model(config, fail)
    get_task(config.run.task).validate(config, fail)
    _validate_data(config, fail)
    _validate_train(config, fail)
    _validate_run(config, fail)
    _validate_recipe(config, fail)
    _validate_tune(config, fail)
    _validate_export(config, fail)


def one_of(config: Config, fail, *keys: str) -> None:
    """Each key's value is one of its fixed choices (`schema.CHOICES`)."""
    for key in keys:
        section, name = key.split(".")
        if getattr(getattr(config, section), name) not in CHOICES[key]:
            fail(key, f"one of {', '.join(CHOICES[key])}")


def _validate_runtime(config: Config, fail) -> None:
    one_of(
        config,
        fail,
        "runtime.backend",
        "runtime.distribution",
        "runtime.precision",
        "runtime.scale_learning_rate",
    )
    allowed = {  # what each backend can run (ftk.runtime.distribute)
        "tensorflow": ("auto", "none", "mirrored", "multi_worker", "tpu"),
        "jax": ("auto", "none", "data_parallel", "model_parallel", "tpu"),
        "torch": ("auto", "none"),
    }.get(config.runtime.backend, DISTRIBUTIONS)
    if config.runtime.distribution not in allowed:
        fail(
            "runtime.distribution",
            f"one of {', '.join(allowed)} with runtime.backend={config.runtime.backend!r}",
        )
    if not 0 <= config.runtime.cpu_devices <= 64:
        fail("runtime.cpu_devices", "between 0 (as found) and 64")
    if config.runtime.model_devices == 1 or not 0 <= config.runtime.model_devices <= 64:
        fail("runtime.model_devices", "0 (every device) or between 2 and 64")


def _validate_model(config: Config, fail) -> None:
    if not config.model.preset:
        fail("model.preset", "a preset name or a directory")
    if not TRAINABLE_RE.match(config.model.trainable):
        fail("model.trainable", TRAINABLE_HELP)
    if not 0.0 <= config.model.dropout < 1.0:
        fail("model.dropout", "in [0, 1)")


def _validate_data(config: Config, fail) -> None:
    one_of(config, fail, "data.format")
    for key in ("validation_split", "test_split"):
        if not 0.0 <= getattr(config.data, key) < 1.0:
            fail(f"data.{key}", "in [0, 1)")
    if config.data.validation_split + config.data.test_split >= 0.9:
        fail("data.test_split", "small enough that validation_split + test_split < 0.9")
    if len(set(config.data.labels)) != len(config.data.labels):
        fail("data.labels", "a list without duplicates")
    if config.data.labels and len(config.data.labels) < 2:
        fail("data.labels", "empty (inferred from the data) or at least 2 names")
    if any(not label.strip() for label in config.data.labels):
        fail("data.labels", "a list of non-empty names")
    if config.data.conflicting_labels not in CONFLICTING_LABELS:
        fail(
            "data.conflicting_labels",
            "one of " + ", ".join(repr(c) for c in CONFLICTING_LABELS) + " (what an example "
            "found under two labels does: stop, drop every copy, or keep the most frequent label)",
        )
    for key in ("max_train_examples", "shuffle_buffer"):
        if getattr(config.data, key) < 0:
            fail(f"data.{key}", ">= 0")


def _validate_train(config: Config, fail) -> None:
    for key in ("epochs", "batch_size"):
        if getattr(config.train, key) < 1:
            fail(f"train.{key}", ">= 1")
    if not 0.0 < config.train.learning_rate < 1.0:
        fail("train.learning_rate", "in (0, 1)")
    if config.train.weight_decay < 0:
        fail("train.weight_decay", ">= 0")
    for key in ("early_stopping_patience", "steps_per_epoch"):
        if getattr(config.train, key) < 0:
            fail(f"train.{key}", ">= 0 (0 turns it off)")
    if config.train.gradient_accumulation_steps < 1:
        fail("train.gradient_accumulation_steps", ">= 1 (1 = update every batch)")
    if config.train.clip_norm < 0:
        fail("train.clip_norm", ">= 0 (0 turns it off)")
    objectives = get_task(config.run.task).objectives
    if config.train.monitor != "auto" and config.train.monitor not in objectives:
        fail(
            "train.monitor",
            f"'auto' or one of {', '.join(objectives)} (a validation metric of "
            f"run.task={config.run.task!r})",
        )


def _validate_run(config: Config, fail) -> None:
    if config.run.seed < 0:
        fail("run.seed", ">= 0")
    run_id = config.run.run_id
    if run_id and not (NAME_RE.match(run_id) and len(run_id) <= 100):
        fail("run.run_id", f"empty (a timestamp) or a name of {NAME_HELP}, at most 100 characters")
    if not 0 <= config.run.report_mistakes <= MAX_REPORT_MISTAKES:
        fail("run.report_mistakes", f"in [0, {MAX_REPORT_MISTAKES}]")


def _validate_export(config: Config, fail) -> None:
    one_of(config, fail, "tracking.backend")
    if not NAME_RE.match(config.export.model_name):
        fail("export.model_name", NAME_HELP)
    if config.export.openvino and not config.export.onnx:
        fail("export.openvino", "false when export.onnx is false (it converts the ONNX model)")
    if config.export.onnx_text and not config.export.onnx:
        fail("export.onnx_text", "false when export.onnx is false (it extends the ONNX model)")
    if config.export.onnx_text and importlib.util.find_spec("onnxruntime_extensions") is None:
        fail(
            "export.onnx_text",
            "false, or onnxruntime-extensions installed (pip install 'ftk[onnx-text]')",
        )
    if config.export.onnx_int8 and not config.export.onnx:
        fail("export.onnx_int8", "false when export.onnx is false (it quantizes the ONNX model)")
    if config.export.verify_examples < 1:
        fail("export.verify_examples", ">= 1")
    if not 0.0 < config.export.tolerance <= 0.1:
        fail("export.tolerance", "in (0, 0.1]")


def _validate_recipe(config: Config, fail) -> None:
    train, recipe = config.train, config.recipe
    one_of(config, fail, "train.schedule", "train.class_weight")
    if train.warmup_steps < 0:
        fail("train.warmup_steps", ">= 0 (0 = no warmup)")
    if train.warmup_epochs < 0:
        fail("train.warmup_epochs", ">= 0 (0 = no warmup)")
    if train.warmup_steps and train.warmup_epochs:
        fail("train.warmup_epochs", "0 when train.warmup_steps is set (warmup in steps or epochs)")
    if not 0.0 <= train.decay_to < 1.0:
        fail("train.decay_to", "in [0, 1) (the fraction of the peak rate left at the end)")
    if train.schedule == "exponential" and train.decay_to == 0:
        fail("train.decay_to", "> 0 for train.schedule='exponential'")
    for key in ("l2", "label_smoothing"):
        if getattr(train, key) < 0:
            fail(f"train.{key}", ">= 0 (0 turns it off)")
    if train.label_smoothing >= 1:
        fail("train.label_smoothing", "in [0, 1)")
    if train.l2 and train.weight_decay:
        fail("train.l2", "0 when train.weight_decay is set: choose AdamW decay or an L2 penalty")
    one_of(config, fail, "recipe.name")
    if recipe.head_epochs < 0:
        fail("recipe.head_epochs", ">= 0")
    if (
        recipe.name != "single"
        and recipe.head_epochs >= train.epochs
        and (config.model.trainable != "head")
    ):
        fail(
            "recipe.head_epochs",
            f"fewer than train.epochs={train.epochs} (they are counted in it) so that the "
            "backbone gets epochs too, or use recipe.name='single'",
        )
    if not 0.0 < recipe.head_learning_rate < 1.0:
        fail("recipe.head_learning_rate", "in (0, 1)")
    if recipe.unfreeze_every < 1:
        fail("recipe.unfreeze_every", ">= 1 (epochs between unfreezing one more block)")
    for group in ("embeddings", "lower", "upper", "head"):
        if not 0.0 <= getattr(recipe, f"lr_{group}") <= 10.0:
            fail(f"recipe.lr_{group}", "a learning-rate multiplier in [0, 10]")
    if not 2 <= recipe.interpolation_points <= 101:
        fail("recipe.interpolation_points", "between 2 and 101 (alphas evenly spaced in [0, 1])")
    if recipe.keep_best_alpha and not recipe.interpolate:
        fail("recipe.keep_best_alpha", "false unless recipe.interpolate is true")
    if recipe.interpolate and config.model.trainable == "head":
        fail(  # else it would fail after training, with nothing to interpolate from
            "recipe.interpolate",
            "false when model.trainable='head' (WiSE-FT interpolates from where the backbone "
            "started training, and a head-only run never trains it)",
        )
    if recipe.cv_folds == 1 or not 0 <= recipe.cv_folds <= 20:
        fail("recipe.cv_folds", "0 (off) or between 2 and 20")
    lora = config.model.lora_rank
    if config.model.lora_alpha < 0:
        fail("model.lora_alpha", ">= 0 (0 = the rank)")
    if lora < 0 or lora > 256:
        fail("model.lora_rank", "0 (off) or a rank between 1 and 256")
    if lora and config.model.trainable != "all":
        fail(
            "model.trainable",
            "'all' when model.lora_rank > 0 (LoRA adapts every block; the backbone's own "
            "weights stay frozen)",
        )
    if lora and recipe.name == "gradual":
        fail("recipe.name", "'single' or 'two_phase' when model.lora_rank > 0")


def _validate_tune(config: Config, fail) -> None:
    tune = config.tune
    one_of(config, fail, "tune.algorithm")
    objectives = get_task(config.run.task).objectives
    if tune.objective not in objectives:
        fail("tune.objective", f"one of {', '.join(objectives)} (a validation metric)")
    if not 1 <= tune.max_trials <= 10000:
        fail("tune.max_trials", "between 1 and 10000")
    if tune.epochs < 0:
        fail("tune.epochs", ">= 0 (epochs per trial; 0 = train.epochs)")
    if tune.max_minutes < 0:
        fail("tune.max_minutes", ">= 0 (0 = no time limit)")
    if not NAME_RE.match(tune.name):
        fail("tune.name", NAME_HELP)
    for key, spec in tune.space.items():
        search_spec(config, key, spec)
