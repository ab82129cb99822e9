"""`--lr-find` / `ftk lr-find`: sweep one phase's learning rate on the training split and
suggest a value (the sweep itself is `ftk.training.lr_find`). Import after the backend is set."""

from __future__ import annotations

import logging
import math
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

    The sweep takes at most `steps` steps, sized to the data (`ftk.training.lr_find.sweep_steps`:
    at most two passes over the training split, at least 20 steps); it covers the whole rate
    range whatever its length.

    `phase="finetune"` sweeps with the recipe's last phase's trainable weights (the value is
    `train.learning_rate`); `"head"` with only the head training (`recipe.head_learning_rate`).
    The model is built for the sweep and thrown away: no checkpoint, weights file or export is
    written. With `config_path`, the suggestion is written into that file (a backup is kept).
    """

    from ftk.models.trainable import backbone_blocks
    from ftk.training.lr_find import lr_find, sweep_steps
    from ftk.training.lr_plot import plot_lr_find
    from ftk.training.recipes import Phase, compile_phase, plan_phases

    if phase not in ("finetune", "head"):
        raise ConfigError(f"--lr-find takes 'finetune' or 'head'. Received: {phase!r}")
    task, splits, info = load_task(config, load_data)
    model = build_model(task, info, config, splits.label_names)
    last = plan_phases(config, len(backbone_blocks(model.backbone)))[-1]
    trainable = "head" if phase == "head" else last.trainable
    dataset = task.dataset(splits.train, config, True)
    batches = batches_per_pass(dataset, len(splits.train), config.train.batch_size)
    planned = sweep_steps(steps, batches)

    sweep_phase = Phase(f"lr_find_{phase}", trainable, 1, 1.0)

    def compile_fn(m, learning_rate):  # the recipe's optimizer, with the sweep's rates
        compile_phase(m, config, sweep_phase, planned, learning_rate)

    run_dir = new_run_dir(config)
    files = RunFiles(run_dir)
    save_run_config(run_dir, config, {"task": task.name, "kind": "lr_find", "phase": phase})
    logger.info(
        "LR finder (%s phase, %s weights): %s",
        phase,
        trainable,
        describe_sweep(planned, steps, batches, len(splits.train), config.train.batch_size),
    )
    result = lr_find(model, dataset, compile_fn, steps=planned, verbose=verbose)
    if result.stopped_early:
        logger.info(
            "LR finder stopped at step %d of %d: the loss diverged at rate %.2g",
            result.steps_run,
            result.steps,
            result.learning_rates[-1],
        )
    key = "train.learning_rate" if phase == "finetune" else "recipe.head_learning_rate"
    suggestion = float(f"{result.suggestion:.2g}")
    summary = {
        **result.to_json(),
        "run_dir": str(run_dir),
        "key": key,
        "suggestion": suggestion,  # rounded to 2 significant digits
        "steps_requested": int(steps),
        "batches_per_pass": batches,
        "plot": str(files.lr_find_plot),
    }
    plot_lr_find(result, files.lr_find_plot)
    if config_path is not None:
        summary["backup"] = str(update_config_file(config_path, key, suggestion))
        summary["config"] = str(config_path)
    write_json(files.lr_find, summary)
    return summary


def batches_per_pass(dataset, examples: int, batch_size: int) -> int:
    """Batches in one pass over the training split: the dataset's own count when tf.data knows
    it, else `ceil(examples / batch_size)`."""
    known = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else -2
    return known if known > 0 else max(1, math.ceil(examples / batch_size))


def describe_sweep(steps: int, requested: int, batches: int, examples: int, batch_size: int):
    """What the log says of the sweep's length, e.g. `20 steps, rates 1e-07 to 1 (4 passes
    over 40 training examples at batch 8: at least 20 steps; --lr-find-steps 100 asks for
    20 passes)`."""
    from ftk.training.lr_find import END_LR, MIN_SWEEP_STEPS, START_LR, SWEEP_PASSES

    def passes(n: int) -> str:
        value = n / batches
        return f"{value:.2g} pass" + ("" if value == 1 else "es")

    why = f"{passes(steps)} over {examples} training examples at batch {batch_size}"
    if steps < requested:
        rule = (
            f"at least {MIN_SWEEP_STEPS} steps"
            if steps > SWEEP_PASSES * batches
            else f"at most {SWEEP_PASSES} passes"
        )
        why += f": {rule}; --lr-find-steps {requested} asks for {passes(requested)}"
    return f"{steps} steps, rates {START_LR:g} to {END_LR:g} ({why})"
