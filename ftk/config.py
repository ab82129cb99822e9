"""Typed, frozen configuration: defaults, then `config.toml`, then `--set section.key=value`.

Standard library only, so it can run before the Keras backend is chosen.

Example:

```python
from ftk.config import load_config
config = load_config("config.toml", overrides=["train.epochs=3"])
config.train.epochs  # 3
```

Unknown sections or keys and values of the wrong type raise `ConfigError`, naming the
key, what was received, and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker", "tpu", "data_parallel")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
LR_SCALING = ("none", "linear", "sqrt")
TASKS = ("text_classification", "image_classification")
DATA_FORMATS = ("folder", "csv", "tfds")
ON_BAD_IMAGES = ("error", "skip")
RECIPES = ("single", "two_phase", "gradual")
SCHEDULES = ("constant", "linear", "exponential", "cosine", "one_cycle")
TUNE_ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
TUNE_OBJECTIVES = ("val_accuracy", "val_loss")
# Keys `tune.space` may search: those of these sections, except the ones below.
SEARCHABLE_SECTIONS = ("model", "train", "recipe", "augment")
NOT_SEARCHABLE = (
    "model.preset",
    "train.epochs",  # epochs per trial: tune.epochs
    "train.steps_per_epoch",
    "recipe.cv_folds",
    "recipe.interpolate",
    "recipe.interpolation_points",
    "recipe.keep_best_alpha",
)
TRAINABLE_HELP = "'head', 'all' or 'last_n:<k>' (k >= 1)"
_TRAINABLE_RE = re.compile(r"^(head|all|last_n:[1-9][0-9]*)$")
MAX_REPORT_MISTAKES = 100  # run.report_mistakes and `ftk report --mistakes`
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RunConfig:
    """Where runs are written, the seed, and what a run shows (progress, report)."""

    task: str = "text_classification"
    run_dir: str = "runs"
    seed: int = 42
    quiet: bool = False
    report_mistakes: int = 12


@dataclass(frozen=True)
class RuntimeConfig:
    """Keras backend (chosen before keras is imported), devices and precision (`ftk.distribute`)."""

    backend: str = "tensorflow"
    distribution: str = "auto"
    precision: str = "auto"
    per_replica_batch: bool = False
    scale_learning_rate: str = "none"
    cpu_devices: int = 0
    tpu: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """The pretrained backbone and what is trained."""

    preset: str = "minilm_l6"
    sequence_length: int = 128
    image_size: int = 224
    trainable: str = "all"
    dropout: float = 0.1
    lora_rank: int = 0
    freeze_batchnorm: bool = True


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from and how they are split."""

    format: str = "folder"
    path: str = "example:bbc_news"
    validation_path: str = ""
    test_path: str = ""
    text_column: str = "text"
    image_column: str = "path"
    label_column: str = "label"
    labels: list[str] = field(default_factory=list)
    decode_errors: str = "strict"
    on_bad_images: str = "error"
    validation_split: float = 0.1
    test_split: float = 0.2
    max_train_examples: int = 0
    shuffle_buffer: int = 10000


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training images (never validation, test or export).

    0 (or `flip = false`) turns each one off. `rotation` is a fraction of a full turn
    (0.05 = up to 18 degrees either way), `zoom` the largest zoom in or out (0.1 = 10%),
    `contrast` the largest contrast change (0.1 = 10%).
    """

    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    contrast: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    early_stopping_patience: int = 2
    steps_per_epoch: int = 0
    schedule: str = "constant"
    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    decay_to: float = 0.0
    l2: float = 0.0
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class RecipeConfig:
    """How training is staged: phases, unfreezing, per-group learning rates, interpolation."""

    name: str = "two_phase"
    head_epochs: int = 1
    head_learning_rate: float = 1e-2
    unfreeze_every: int = 1
    lr_embeddings: float = 1.0
    lr_lower: float = 1.0
    lr_upper: float = 1.0
    lr_head: float = 1.0
    interpolate: bool = False
    interpolation_points: int = 11
    keep_best_alpha: bool = False
    cv_folds: int = 0


@dataclass(frozen=True)
class TuneConfig:
    """Hyperparameter search with KerasTuner (`python train.py --tune`).

    `space` maps `"section.key"` to a range `{min = .., max = .., log = true, step = ..}`, a
    list of choices, or one value (fixed). Keys not in `space` keep their configured value.
    """

    enabled: bool = False
    algorithm: str = "random"
    objective: str = "val_accuracy"
    max_trials: int = 10
    epochs: int = 0
    max_minutes: float = 0.0
    name: str = "search"
    cache_features: bool = True
    space: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExportConfig:
    """Where and how the trained model is published."""

    export_dir: str = "saved_models"
    model_name: str = "text_classifier"
    onnx: bool = True
    onnx_int8: bool = False
    litert: bool = False
    verify_examples: int = 64
    tolerance: float = 1e-4


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run. Build it with `load_config`."""

    run: RunConfig = field(default_factory=RunConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # Directory that relative paths in the config are resolved against (not a TOML key).
    base_dir: str = field(default=".", compare=False)

    def resolve_path(self, value: str) -> Path:
        """An absolute path for a config value, relative paths taken from `base_dir`."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (Path(self.base_dir) / path).resolve()


# Keys that only one task reads; every other key applies to every task. A config that sets
# another task's key is an error (it would be silently ignored otherwise).
TASK_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    "text_classification": ("model.sequence_length", "data.text_column", "data.decode_errors"),
    "image_classification": (
        "model.image_size",
        "model.freeze_batchnorm",
        "data.image_column",
        "data.on_bad_images",
        "augment.flip",
        "augment.rotation",
        "augment.zoom",
        "augment.contrast",
        "export.litert",
    ),
}

# Defaults that differ from the dataclass defaults (which are the text task's), by task.
TASK_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "text_classification": {},
    "image_classification": {
        "model": {"preset": "efficientnet_lite0", "dropout": 0.2},
        "data": {"path": ""},
        "train": {"batch_size": 32, "learning_rate": 3e-4, "schedule": "one_cycle"},
        "export": {"model_name": "image_classifier"},
    },
}


def _foreign_keys(task: str) -> set[str]:
    return {key for other, keys in TASK_ONLY_KEYS.items() if other != task for key in keys}


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "base_dir"}


def valid_keys(task: str | None = None) -> list[str]:
    """Every `section.key` the configuration accepts; with `task`, those that task reads."""
    foreign = _foreign_keys(task) if task else set()
    return [
        key
        for name, cls in _sections().items()
        for key in (f"{name}.{f.name}" for f in dataclasses.fields(cls))
        if key not in foreign
    ]


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against the field's type; ints are accepted where floats are expected."""
    origin = typing.get_origin(annotation)
    if annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"`{key}` must be a table. Received: {key}={value!r}")
        return dict(value)
    if origin in (list, types.GenericAlias) or annotation is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f'`{key}` must be a list of strings, like ["a", "b"]. Received: {key}={value!r}'
            )
        return list(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"`{key}` must be true or false. Received: {key}={value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"`{key}` must be an integer. Received: {key}={value!r}")
        return value
    if annotation is float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"`{key}` must be a number. Received: {key}={value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"`{key}` must be a string. Received: {key}={value!r}")
        return value
    raise TypeError(f"Unsupported config annotation {annotation!r} for {key}")


def _task_of(tree: dict[str, Any]) -> str:
    run = tree.get("run", {})
    task = (
        _coerce("run.task", run.get("task", RunConfig.task), str) if isinstance(run, dict) else ""
    )
    if task not in TASKS:
        raise ConfigError(
            f"`run.task` must be one of {', '.join(TASKS)}. Received: run.task={task!r}"
        )
    return task


def _build(tree: dict[str, Any], base_dir: str) -> Config:
    sections = _sections()
    task = _task_of(tree)
    foreign = _foreign_keys(task)
    merged = {name: dict(values) for name, values in TASK_DEFAULTS[task].items()}
    for name, section in tree.items():
        if isinstance(section, dict):
            for key in section:
                if f"{name}.{key}" in foreign:
                    owner = next(t for t, keys in TASK_ONLY_KEYS.items() if f"{name}.{key}" in keys)
                    raise ConfigError(
                        f"`{name}.{key}` is a setting of {owner} runs, and this config has "
                        f"run.task={task!r}. Remove it or change run.task."
                    )
            merged.setdefault(name, {}).update(section)
        else:
            merged[name] = section
    kwargs = {}
    for name, section in merged.items():
        if name not in sections:
            raise ConfigError(
                f"Unknown config section `[{name}]`. Valid sections: {', '.join(sections)}."
            )
        if not isinstance(section, dict):
            raise ConfigError(f"`{name}` must be a table like [{name}]. Received: {section!r}")
        cls = sections[name]
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in section.items():
            if key not in hints:
                keys = ", ".join(k for k in valid_keys(task) if k.startswith(f"{name}."))
                raise ConfigError(f"Unknown config key `{name}.{key}`. Valid keys: {keys}.")
            values[key] = _coerce(f"{name}.{key}", value, hints[key])
        kwargs[name] = cls(**values)
    config = Config(**kwargs, base_dir=base_dir)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field and range checks. Raises `ConfigError` naming the key."""

    def fail(key: str, expected: str) -> None:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        raise ConfigError(f"`{key}` must be {expected}. Received: {key}={value!r}")

    if config.runtime.backend not in BACKENDS:
        fail("runtime.backend", f"one of {', '.join(BACKENDS)}")
    if config.runtime.distribution not in DISTRIBUTIONS:
        fail("runtime.distribution", f"one of {', '.join(DISTRIBUTIONS)}")
    if config.runtime.precision not in PRECISIONS:
        fail("runtime.precision", f"one of {', '.join(PRECISIONS)}")
    if config.runtime.scale_learning_rate not in LR_SCALING:
        fail("runtime.scale_learning_rate", f"one of {', '.join(LR_SCALING)}")
    allowed = {  # what each backend can run (ftk.distribute)
        "tensorflow": ("auto", "none", "mirrored", "multi_worker", "tpu"),
        "jax": ("auto", "none", "data_parallel", "tpu"),
        "torch": ("auto", "none"),
    }.get(config.runtime.backend, DISTRIBUTIONS)
    if config.runtime.distribution not in allowed:
        fail(
            "runtime.distribution",
            f"one of {', '.join(allowed)} with runtime.backend={config.runtime.backend!r}",
        )
    if not 0 <= config.runtime.cpu_devices <= 64:
        fail("runtime.cpu_devices", "between 0 (as found) and 64")
    if not config.model.preset:
        fail("model.preset", "a preset name or a directory")
    if not 8 <= config.model.sequence_length <= 4096:
        fail("model.sequence_length", "between 8 and 4096")
    if not _TRAINABLE_RE.match(config.model.trainable):
        fail("model.trainable", TRAINABLE_HELP)
    if not 0.0 <= config.model.dropout < 1.0:
        fail("model.dropout", "in [0, 1)")
    if config.data.format not in DATA_FORMATS:
        fail("data.format", f"one of {', '.join(DATA_FORMATS)}")
    image = config.run.task == "image_classification"
    if not config.data.path:
        fail(
            "data.path",
            "a folder of <label>/ sub-folders, a CSV file or a TFDS name"
            + ("" if image else ", or example:bbc_news"),
        )
    if not 32 <= config.model.image_size <= 1024:
        fail("model.image_size", "between 32 and 1024 (pixels, square)")
    if config.data.on_bad_images not in ON_BAD_IMAGES:
        fail(
            "data.on_bad_images", "'error' (stop before training, listing each bad file) or 'skip'"
        )
    for key, high in (("rotation", 0.5), ("zoom", 0.9), ("contrast", 1.0)):
        if not 0.0 <= getattr(config.augment, key) <= high:
            fail(f"augment.{key}", f"in [0, {high}] (0 turns it off)")
    if config.data.decode_errors not in ("strict", "replace"):
        fail("data.decode_errors", "'strict' (stop at undecodable bytes) or 'replace'")
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
    for key in ("max_train_examples", "shuffle_buffer"):
        if getattr(config.data, key) < 0:
            fail(f"data.{key}", ">= 0")
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
    if config.run.seed < 0:
        fail("run.seed", ">= 0")
    if not 0 <= config.run.report_mistakes <= MAX_REPORT_MISTAKES:
        fail("run.report_mistakes", f"in [0, {MAX_REPORT_MISTAKES}]")
    _validate_recipe(config, fail)
    _validate_tune(config, fail)
    if not _NAME_RE.match(config.export.model_name):
        fail(
            "export.model_name", "letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    if config.export.onnx_int8 and not config.export.onnx:
        fail("export.onnx_int8", "false when export.onnx is false (it quantizes the ONNX model)")
    if config.export.verify_examples < 1:
        fail("export.verify_examples", ">= 1")
    if not 0.0 < config.export.tolerance <= 0.1:
        fail("export.tolerance", "in (0, 0.1]")


def _validate_recipe(config: Config, fail) -> None:
    train, recipe = config.train, config.recipe
    if train.schedule not in SCHEDULES:
        fail("train.schedule", f"one of {', '.join(SCHEDULES)}")
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
    if recipe.name not in RECIPES:
        fail("recipe.name", f"one of {', '.join(RECIPES)}")
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
    if recipe.cv_folds == 1 or not 0 <= recipe.cv_folds <= 20:
        fail("recipe.cv_folds", "0 (off) or between 2 and 20")
    lora = config.model.lora_rank
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
    if tune.algorithm not in TUNE_ALGORITHMS:
        fail("tune.algorithm", f"one of {', '.join(TUNE_ALGORITHMS)}")
    if tune.objective not in TUNE_OBJECTIVES:
        fail("tune.objective", f"one of {', '.join(TUNE_OBJECTIVES)} (a validation metric)")
    if not 1 <= tune.max_trials <= 10000:
        fail("tune.max_trials", "between 1 and 10000")
    if tune.epochs < 0:
        fail("tune.epochs", ">= 0 (epochs per trial; 0 = train.epochs)")
    if tune.max_minutes < 0:
        fail("tune.max_minutes", ">= 0 (0 = no time limit)")
    if not _NAME_RE.match(tune.name):
        fail("tune.name", "letters, digits, '_', '-' or '.', starting with a letter or digit")
    for key, spec in tune.space.items():
        search_spec(config, key, spec)


def searchable_keys(task: str) -> list[str]:
    """The `section.key` names `tune.space` accepts for `task`."""
    return [
        key
        for key in valid_keys(task)
        if key.split(".")[0] in SEARCHABLE_SECTIONS and key not in NOT_SEARCHABLE
    ]


def search_spec(config: Config, key: str, spec: Any) -> dict[str, Any]:
    """Check one `tune.space` entry; returns it normalised as one of
    `{"values": [...]}` (choices), `{"value": v}` (fixed) or
    `{"min": a, "max": b, "log": bool, "step": s or None}` (a numeric range)."""
    name = f'tune.space."{key}"'
    allowed = searchable_keys(config.run.task)
    if key not in allowed:
        raise ConfigError(
            f"`{name}`: {key!r} cannot be searched. Searchable keys: {', '.join(allowed)}."
        )
    section, field_name = key.split(".")
    annotation = typing.get_type_hints(type(getattr(config, section)))[field_name]
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"`{name}` must list at least one value. Received: []")
        values = [_coerce(name, v, annotation) for v in spec]
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"`{name}` lists a value twice. Received: {spec!r}")
        return {"values": values}
    if not isinstance(spec, dict):
        return {"value": _coerce(name, spec, annotation)}
    if annotation not in (int, float):
        raise ConfigError(
            f"`{name}` is not a number, so it takes a list of choices, like "
            f'["a", "b"], not a range. Received: {spec!r}'
        )
    unknown = set(spec) - {"min", "max", "log", "step"}
    if unknown or not {"min", "max"} <= set(spec):
        raise ConfigError(
            f"`{name}` must be a range like {{min = 1e-5, max = 1e-3, log = true}} (optional "
            f"`step`), a list of choices or one value. Received: {spec!r}"
        )
    low = _coerce(f"{name}.min", spec["min"], annotation)
    high = _coerce(f"{name}.max", spec["max"], annotation)
    log = _coerce(f"{name}.log", spec.get("log", False), bool)
    step = spec.get("step")
    if step is not None:
        step = _coerce(f"{name}.step", step, annotation)
        if step <= 0:
            raise ConfigError(f"`{name}.step` must be > 0. Received: step={step!r}")
    if not low < high:
        raise ConfigError(f"`{name}` needs min < max. Received: min={low!r}, max={high!r}")
    if log and low <= 0:
        raise ConfigError(f"`{name}` with log = true needs min > 0. Received: min={low!r}")
    return {"min": low, "max": high, "log": log, "step": step}


def parse_override(text: str) -> tuple[str, str, Any]:
    """`'train.epochs=3'` -> `('train', 'epochs', 3)`. Values are TOML; bare words are strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1:
        raise ConfigError(
            f"An override must look like section.key=value. Received: {text!r}. "
            f"Valid keys: {', '.join(valid_keys())}."
        )
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, name, value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    base_dir: str | Path | None = None,
) -> Config:
    """Defaults, then the TOML file at `path` (if any), then `overrides` (`section.key=value`).

    Relative paths in the config are resolved against `base_dir`, by default the directory
    of `path` (or the working directory when there is no file).
    """
    tree: dict[str, dict[str, Any]] = {}
    default_base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"Config file not found. Received: path={str(path)!r}. Run this in a project "
                "directory (`ftk new` makes one) or pass --config <file>."
            )
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
        default_base = path.resolve().parent
    for text in overrides:
        section, name, value = parse_override(text)
        tree.setdefault(section, {})
        if not isinstance(tree[section], dict):
            raise ConfigError(f"`{section}` is not a table in {path}.")
        tree[section][name] = value
    return _build(tree, str(Path(base_dir).resolve() if base_dir else default_base))


def replace(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys changed, validated: `replace(c, train={"epochs": 1})`."""
    tree = to_dict(config)
    for name, values in sections.items():
        tree.setdefault(name, {}).update(values)
    return _build(tree, config.base_dir)


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The keys the config's task reads, as nested dicts (TOML sections), without `base_dir`."""
    foreign = _foreign_keys(config.run.task)
    tree = {}
    for name in _sections():
        values = dataclasses.asdict(getattr(config, name))
        kept = {k: v for k, v in values.items() if f"{name}.{k}" not in foreign}
        if kept:
            tree[name] = kept
    return tree


# Keys that may name a file or folder (relative to `base_dir`) rather than a catalog name.
PATH_KEYS = (
    "run.run_dir",
    "model.preset",
    "data.path",
    "data.validation_path",
    "data.test_path",
    "export.export_dir",
)


def with_absolute_paths(config: Config) -> Config:
    """`config` with every path that exists (and the run and export folders) made absolute, so
    it can be written anywhere and still mean the same files."""
    sections: dict[str, dict[str, Any]] = {}
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not value:
            continue
        path = config.resolve_path(value)
        if section in ("run", "export") or path.exists():
            sections.setdefault(section, {})[name] = str(path)
    return replace(config, **sections)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}" if items else "{}"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_toml(config: Config) -> str:
    """The resolved configuration as TOML that `load_config` reads back unchanged."""
    lines = [f"# Resolved ftk configuration (base_dir: {config.base_dir})"]
    for name, values in to_dict(config).items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def update_config_file(path: str | Path, key: str, value: Any) -> Path:
    """Set one `section.key` in a TOML file, keeping every other line (comments included).

    The file is checked first (the result must load), a copy of the original is kept next to it
    as `<name>.<timestamp>.bak` (never overwriting an earlier copy), and the new text replaces
    the file atomically. Returns the backup's path.
    """
    import time

    path = Path(path)
    section, name = key.split(".")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    new_line = f"{name} = {_toml_value(value)}\n"
    header = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
    assignment = re.compile(rf"^\s*{re.escape(name)}\s*=")
    current, start, done = None, None, False
    for i, line in enumerate(lines):
        match = header.match(line)
        if match:
            if current == section and not done:
                break
            current = match[1].strip()
            if current == section:
                start = i
            continue
        if current == section and assignment.match(line):
            lines[i] = new_line
            done = True
            break
    if not done:
        if start is None:
            lines.append(f"\n[{section}]\n{new_line}")
        else:
            lines.insert(start + 1, new_line)
    text = "".join(lines)
    check = tomllib.loads(text)
    if check.get(section, {}).get(name) != value:
        raise ConfigError(f"Could not set `{key}` in {path}: edit it by hand to {value!r}.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{i}" for i in range(1, 100)]:
        backup = path.with_name(f"{path.name}.{stamp}{suffix}.bak")
        try:
            with backup.open("xb") as f:
                f.write(path.read_bytes())
            break
        except FileExistsError:
            continue
    from ftk.runs import write_atomic  # ftk.runs imports this module

    write_atomic(path, text)
    return backup
