"""The fixed choices of the configuration's keys (`CHOICES`), the patterns of the others
(`PATTERNS`), and the limits the checks share. Standard library only.

`ftk.config.validation` and the tasks check them; `python -m ftk.docs_reference --write` lists
them in `docs/reference/config.md`.
"""

from __future__ import annotations

import re

BACKENDS = ("tensorflow", "jax", "torch")
DISTRIBUTIONS = tuple("auto none mirrored multi_worker tpu data_parallel model_parallel".split())
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
LR_SCALING = ("none", "linear", "sqrt")
DATA_FORMATS = ("folder", "csv", "tfds")
ON_BAD_IMAGES = ("error", "skip")
DECODE_ERRORS = ("strict", "replace")
CONFLICTING_LABELS = ("error", "drop", "majority")  # data.conflicting_labels
RECIPES = ("single", "two_phase", "gradual")
SCHEDULES = ("constant", "linear", "exponential", "cosine", "one_cycle")
TUNE_ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
QUANTIZE = ("none", "int8")  # model.quantize
CHAT_TEMPLATES = ("auto", "chatml", "plain")  # model.chat_template
CLASS_WEIGHTS = ("none", "balanced")  # train.class_weight
THRESHOLDS = ("tuned", "fixed")  # train.thresholds (multi-label)
LOSSES = ("auto", "cross_entropy", "focal", "mse", "mae", "huber")  # train.loss (by task)
SAMPLERS = ("greedy", "top_k", "top_p")  # generate.sampler
TRACKING = ("none", "mlflow")  # tracking.backend
TRAINABLE_HELP = "'head', 'all' or 'last_n:<k>' (k >= 1)"
TRAINABLE_RE = re.compile(r"^(head|all|last_n:[1-9][0-9]*)$")
MAX_REPORT_MISTAKES = 100  # run.report_mistakes and `ftk report --mistakes`
NAME_HELP = "letters, digits, '_', '-' or '.', starting with a letter or digit"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The keys whose value is one of a fixed set, and the keys whose value follows a pattern
# (what the reference lists; the checks are in `ftk.config.validation` and the tasks).
CHOICES = {
    "runtime.backend": BACKENDS,
    "runtime.distribution": DISTRIBUTIONS,
    "runtime.precision": PRECISIONS,
    "runtime.scale_learning_rate": LR_SCALING,
    "data.format": DATA_FORMATS,
    "data.conflicting_labels": CONFLICTING_LABELS,
    "data.decode_errors": DECODE_ERRORS,
    "data.on_bad_images": ON_BAD_IMAGES,
    "train.schedule": SCHEDULES,
    "recipe.name": RECIPES,
    "tune.algorithm": TUNE_ALGORITHMS,
    "model.quantize": QUANTIZE,
    "model.chat_template": CHAT_TEMPLATES,
    "generate.sampler": SAMPLERS,
    "train.class_weight": CLASS_WEIGHTS,
    "train.loss": LOSSES,
    "train.thresholds": THRESHOLDS,
    "tracking.backend": TRACKING,
}
PATTERNS = {
    "model.trainable": TRAINABLE_HELP,
    "tune.name": NAME_HELP,
    "export.model_name": NAME_HELP,
}
