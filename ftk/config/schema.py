"""The configuration's schema: one frozen dataclass per `config.toml` section, and the
choices its keys take. Standard library only; imports nothing from ftk but its errors.

Every key of every task is a field here, so a baked project's `config.toml` reads the same
for all tasks; which task reads a key, and its task-specific default, is said by the task
class (`Task.only_keys`, `Task.defaults` in `ftk.tasks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker", "tpu", "data_parallel")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
LR_SCALING = ("none", "linear", "sqrt")
DATA_FORMATS = ("folder", "csv", "tfds")
ON_BAD_IMAGES = ("error", "skip")
CONFLICTING_LABELS = ("error", "drop", "majority")  # data.conflicting_labels
RECIPES = ("single", "two_phase", "gradual")
SCHEDULES = ("constant", "linear", "exponential", "cosine", "one_cycle")
TUNE_ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
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
TRAINABLE_RE = re.compile(r"^(head|all|last_n:[1-9][0-9]*)$")
MAX_REPORT_MISTAKES = 100  # run.report_mistakes and `ftk report --mistakes`
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    """Keras backend (chosen before keras is imported), devices and precision
    (`ftk.runtime.distribute`)."""

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
    conflicting_labels: str = "error"
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
