"""`--lr-find` / `ftk lr-find`: sweep one phase's learning rate on the training split and
suggest a value (the sweep itself is `ftk.training.lr_find`). Import after the backend is set."""

from __future__ import annotations

import logging
from pathlib import Path

from ftk.config import Config, update_config_file
from ftk.errors import ConfigError
from ftk.files import write_json
from ftk.runs.dirs import new_run_dir, save_run_config
from ftk.runs.files import RunFiles
from ftk.runs.model import LoadData, build_model, load_task

logger = logging.getLogger("ftk")


def find_learning_rate(
    config: Config,
    load_data: LoadData | None = None,
    phase: str = "finetune",
    steps: int = 100,
    config_path: Path | None = None,
    verbose: str | int = "auto",
) -> dict:
    """`--lr-find`: sweep the learning rate of one phase of the recipe on the training split,
    write `lr_find.png` and `lr_find.json` into a new run directory, and suggest a value.

    `phase="finetune"` sweeps with the recipe's last phase's trainable weights (the value is
    `train.learning_rate`); `"head"` with only the head training (`recipe.head_learning_rate`).
    The model is built for the sweep and thrown away: no checkpoint, weights file or export is
    written. With `config_path`, the suggestion is written into that file (a backup is kept).
    """

    from ftk.models.trainable import backbone_blocks
    from ftk.training.lr_find import lr_find, plot_lr_find
    from ftk.training.recipes import Phase, compile_phase, plan_phases

    if phase not in ("finetune", "head"):
        raise ConfigError(f"--lr-find takes 'finetune' or 'head'. Received: {phase!r}")
    task, splits, info = load_task(config, load_data)
    model = build_model(task, info, config, splits.label_names)
    last = plan_phases(config, len(backbone_blocks(model.backbone)))[-1]
    trainable = "head" if phase == "head" else last.trainable

    def compile_fn(m, learning_rate):  # the recipe's optimizer, with the sweep's rates
        compile_phase(m, config, Phase(f"lr_find_{phase}", trainable, 1, 1.0), steps, learning_rate)

    run_dir = new_run_dir(config)
    files = RunFiles(run_dir)
    save_run_config(run_dir, config, {"task": task.name, "kind": "lr_find", "phase": phase})
    logger.info("LR finder (%s phase, %s weights): up to %d steps", phase, trainable, steps)
    result = lr_find(
        model, task.dataset(splits.train, config, True), compile_fn, steps=steps, verbose=verbose
    )
    key = "train.learning_rate" if phase == "finetune" else "recipe.head_learning_rate"
    suggestion = float(f"{result.suggestion:.2g}")
    summary = {
        **result.to_json(),
        "run_dir": str(run_dir),
        "key": key,
        "suggestion": suggestion,  # rounded to 2 significant digits
        "plot": str(files.lr_find_plot),
    }
    plot_lr_find(result, files.lr_find_plot)
    if config_path is not None:
        summary["backup"] = str(update_config_file(config_path, key, suggestion))
        summary["config"] = str(config_path)
    write_json(files.lr_find, summary)
    return summary
