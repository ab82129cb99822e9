"""k-fold cross-validation (`recipe.cv_folds = k`) for small datasets.

The training and validation splits are pooled and cut into k seeded folds by the task
(`Task.fold_ids`: stratified by label for classification). Each fold
trains a fresh model from the pretrained backbone with the whole recipe on the other k-1 folds
(no validation data: its last epochs are kept, so the held-out fold is never used to pick
weights) and is scored on the held-out fold. `cv.json` in the run directory lists each fold and
the mean ± standard deviation of the task's headline metrics (accuracy and macro-F1 for
classification). The test split is not touched; the run
then trains its final model as usual.

Files: `<run_dir>/cv/fold<i>/` (each fold's checkpoints and history), `<run_dir>/cv.json`.
A resumed run skips folds that finished (`cv/fold<i>/metrics.json`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ftk.config import Config
from ftk.data.splits import Examples, Splits
from ftk.files import read_json, write_json
from ftk.runs.files import RunFiles

logger = logging.getLogger("ftk")


def _subset(examples: Examples, mask: np.ndarray) -> Examples:
    return Examples(
        [x for x, keep in zip(examples.inputs, mask, strict=True) if keep], examples.labels[mask]
    )


def cross_validate(config: Config, splits: Splits, task, info, run_dir: Path, verbose) -> dict:
    """Train and score `recipe.cv_folds` folds; returns (and writes) the `cv.json` summary."""
    import keras

    from ftk.runs.model import build_model
    from ftk.training.recipes import train_phases

    k = config.recipe.cv_folds
    pool = Examples(
        splits.train.inputs + splits.validation.inputs,
        np.concatenate([splits.train.labels, splits.validation.labels]),
    )
    ids = task.fold_ids(pool, k, config.run.seed)
    folds = []
    for fold in range(k):
        fold_dir = RunFiles(run_dir).folds / f"fold{fold}"
        done = fold_dir / "metrics.json"
        if done.exists():
            folds.append(read_json(done))
            logger.info("Cross-validation fold %d/%d already finished", fold + 1, k)
            continue
        fold_dir.mkdir(parents=True, exist_ok=True)
        logger.info("Cross-validation fold %d/%d", fold + 1, k)
        keras.utils.set_random_seed(config.run.seed + fold)
        train, held_out = _subset(pool, ids != fold), _subset(pool, ids == fold)
        model = build_model(task, info, config, splits.label_names)
        train_phases(
            model, task.dataset(train, config, True), None, fold_dir, config, len(train), verbose
        )
        outputs = task.predict(model, task.dataset(held_out, config, False))
        report = task.evaluate(held_out, outputs, splits.label_names)
        result = {
            "fold": fold,
            "train_examples": len(train),
            "held_out_examples": len(held_out),
            **{name: report[name] for name in task.headline_metrics},
        }
        write_json(done, result)
        folds.append(result)
        del model
        keras.backend.clear_session()
    summary = {"folds": folds}
    for metric in task.headline_metrics:
        values = np.array([f[metric] for f in folds])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    write_json(RunFiles(run_dir).cross_validation, summary)
    logger.info(
        "Cross-validation (%d folds): %s",
        k,
        ", ".join(
            f"{m} {summary[m]['mean']:.4f} ± {summary[m]['std']:.4f}" for m in task.headline_metrics
        ),
    )
    return summary
