"""k-fold cross-validation (`recipe.cv_folds = k`) for small datasets.

The training and validation splits are pooled and cut into k stratified, seeded folds. Each fold
trains a fresh model from the pretrained backbone with the whole recipe on the other k-1 folds
(no validation data: its last epochs are kept, so the held-out fold is never used to pick
weights) and is scored on the held-out fold. `cv.json` in the run directory lists each fold and
the mean ± standard deviation of accuracy and macro-F1. The test split is not touched; the run
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
from ftk.errors import DataError
from ftk.runs import read_json, write_json

logger = logging.getLogger("ftk")


def fold_ids(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold id in `[0, k)` for each example, stratified by label and seeded.

    Example:

    >>> fold_ids(np.array([0, 0, 1, 1]), 2, seed=0).tolist()  # one of each label per fold
    [0, 1, 0, 1]
    """
    rng = np.random.default_rng(seed)
    ids = np.zeros(len(labels), np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        # Continue the round-robin across labels so fold sizes differ by at most one.
        ids[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return ids


def _subset(examples: Examples, mask: np.ndarray) -> Examples:
    return Examples(
        [x for x, keep in zip(examples.inputs, mask, strict=True) if keep], examples.labels[mask]
    )


def cross_validate(config: Config, splits: Splits, task, info, run_dir: Path, verbose) -> dict:
    """Train and score `recipe.cv_folds` folds; returns (and writes) the `cv.json` summary."""
    import keras

    from ftk.metrics import classification_report
    from ftk.recipes import train_phases
    from ftk.tasks.runner import build_model, predict_probabilities

    k = config.recipe.cv_folds
    pool = Examples(
        splits.train.inputs + splits.validation.inputs,
        np.concatenate([splits.train.labels, splits.validation.labels]),
    )
    smallest = np.bincount(pool.labels, minlength=len(splits.label_names)).min()
    if smallest < k:
        raise DataError(
            f"`recipe.cv_folds={k}` needs at least {k} training examples of every label; the "
            f"smallest label has {smallest}. Lower recipe.cv_folds."
        )
    ids = fold_ids(pool.labels, k, config.run.seed)
    folds = []
    for fold in range(k):
        fold_dir = run_dir / "cv" / f"fold{fold}"
        done = fold_dir / "metrics.json"
        if done.exists():
            folds.append(read_json(done))
            logger.info("Cross-validation fold %d/%d already finished", fold + 1, k)
            continue
        fold_dir.mkdir(parents=True, exist_ok=True)
        logger.info("Cross-validation fold %d/%d", fold + 1, k)
        keras.utils.set_random_seed(config.run.seed + fold)
        train, held_out = _subset(pool, ids != fold), _subset(pool, ids == fold)
        model = build_model(task, info, config, len(splits.label_names))
        train_phases(
            model, task.dataset(train, config, True), None, fold_dir, config, len(train), verbose
        )
        probabilities = predict_probabilities(model, task.dataset(held_out, config, False))
        report = classification_report(
            held_out.labels, probabilities.argmax(-1), splits.label_names
        )
        result = {
            "fold": fold,
            "train_examples": len(train),
            "held_out_examples": len(held_out),
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
        }
        write_json(done, result)
        folds.append(result)
        del model
        keras.backend.clear_session()
    summary = {"folds": folds}
    for metric in ("accuracy", "macro_f1"):
        values = np.array([f[metric] for f in folds])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    write_json(run_dir / "cv.json", summary)
    logger.info(
        "Cross-validation (%d folds): accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f",
        k,
        summary["accuracy"]["mean"],
        summary["accuracy"]["std"],
        summary["macro_f1"]["mean"],
        summary["macro_f1"]["std"],
    )
    return summary
