"""Regression metrics from predictions (NumPy only): MAE, RMSE, R², Pearson's r and
Spearman's rank correlation (ties get their average rank, as `scipy.stats.spearmanr`), per
target and averaged over the targets."""

from __future__ import annotations

import numpy as np


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of their ranks.

    >>> ranks(np.array([10.0, 20.0, 10.0])).tolist()
    [1.5, 3.0, 1.5]
    """
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    out = np.empty(len(values), np.float64)
    for start, end in zip(starts, ends, strict=True):
        out[order[start:end]] = (start + end + 1) / 2
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; 0 when either side is constant (no linear relation to speak of)."""
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / scale) if scale else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(ranks(a), ranks(b))


def regression_report(targets: np.ndarray, predictions: np.ndarray, names: list[str]) -> dict:
    """`mae`, `rmse`, `r2`, `pearson`, `spearman` (means over the targets), and `per_target`.

    >>> regression_report(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]]),
    ...                   ["y"])["mae"]
    0.3333333333333333
    """
    targets = np.asarray(targets, np.float64).reshape(len(targets), len(names))
    predictions = np.asarray(predictions, np.float64).reshape(targets.shape)
    per_target = {}
    for i, name in enumerate(names):
        t, p = targets[:, i], predictions[:, i]
        error = p - t
        spread = float(((t - t.mean()) ** 2).sum()) if len(t) else 0.0
        per_target[name] = {
            "mae": float(np.abs(error).mean()) if len(t) else 0.0,
            "rmse": float(np.sqrt((error**2).mean())) if len(t) else 0.0,
            "r2": 1.0 - float((error**2).sum()) / spread if spread else 0.0,
            "pearson": pearson(t, p) if len(t) > 1 else 0.0,
            "spearman": spearman(t, p) if len(t) > 1 else 0.0,
            "target_mean": float(t.mean()) if len(t) else 0.0,
            "target_std": float(t.std()) if len(t) else 0.0,
        }
    means = {
        key: float(np.mean([m[key] for m in per_target.values()]))
        for key in ("mae", "rmse", "r2", "pearson", "spearman")
    }
    return {**means, "num_examples": int(len(targets)), "per_target": per_target}


def largest_errors(
    texts: list[str], targets: np.ndarray, predictions: np.ndarray, names: list[str], count: int
) -> list[dict]:
    """The `count` examples predicted furthest from their targets (summed over the targets)."""
    error = np.abs(np.asarray(predictions) - np.asarray(targets)).reshape(len(texts), -1)
    worst = np.argsort(-error.sum(axis=1), kind="stable")[:count]
    return [
        {
            "text": texts[i],
            "target": {n: float(targets[i][j]) for j, n in enumerate(names)},
            "predicted": {n: float(predictions[i][j]) for j, n in enumerate(names)},
            "error": float(error[i].sum()),
        }
        for i in worst
    ]
