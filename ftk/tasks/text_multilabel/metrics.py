"""Multi-label metrics from probabilities (NumPy only): per-label thresholds tuned for F1 on
the validation split; micro- and macro-averaged precision, recall and F1, per-label scores,
exact-match accuracy, Hamming loss, and average precision (threshold-free, as
`sklearn.metrics.average_precision_score` computes it; a unit test compares them)."""

from __future__ import annotations

import numpy as np


def tune_thresholds(targets: np.ndarray, probabilities: np.ndarray, fallback: float) -> list[float]:
    """Per label, the probability threshold with the best F1 on `(targets, probabilities)`
    (the validation split): midway between the lowest probability predicted positive and the
    next one. A label with no positive example gets `fallback`.

    >>> tune_thresholds(np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.6], [0.4], [0.1]]), 0.5)
    [0.25]
    """
    targets = np.asarray(targets, np.float64)
    probabilities = np.asarray(probabilities, np.float64)
    thresholds = []
    for j in range(targets.shape[1]):
        t, p = targets[:, j], probabilities[:, j]
        positives = t.sum()
        if positives == 0:
            thresholds.append(float(fallback))
            continue
        order = np.argsort(-p, kind="stable")
        p_sorted, tp = p[order], np.cumsum(t[order])
        predicted = np.arange(1, len(p) + 1)
        f1 = 2 * tp / (predicted + positives)
        f1[:-1][p_sorted[:-1] == p_sorted[1:]] = -1  # a cut must fall between two values
        k = int(np.argmax(f1))
        below = p_sorted[k + 1] if k + 1 < len(p) else 0.0
        thresholds.append(float((p_sorted[k] + below) / 2))
    return thresholds


def average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """Σ (R_n − R_{n−1}) P_n over the distinct score thresholds (sklearn's definition); 0 for
    a label without positives."""
    positives = targets.sum()
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], targets[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last index of each distinct score
    tp = np.cumsum(t)[last]
    predicted = (np.arange(1, len(s) + 1))[last]
    precision, recall = tp / predicted, tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _f1(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def multilabel_report(
    targets: np.ndarray, probabilities: np.ndarray, names: list[str], thresholds: list[float]
) -> dict:
    """`micro_f1`, `macro_f1`, micro precision/recall, `exact_match`, `hamming_loss`, `map`
    (mean average precision over the labels with a positive example) and `per_label`.

    >>> r = multilabel_report(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.7, 0.8]]),
    ...                       ["a", "b"], [0.5, 0.5])
    >>> r["micro_f1"], r["macro_f1"], r["exact_match"]
    (0.8, 0.8333333333333333, 0.5)
    """
    targets = np.asarray(targets, np.float64).reshape(len(targets), len(names))
    probabilities = np.asarray(probabilities, np.float64).reshape(targets.shape)
    predicted = (probabilities >= np.asarray(thresholds, np.float64)).astype(np.float64)
    tp = (predicted * targets).sum(axis=0)
    fp = (predicted * (1 - targets)).sum(axis=0)
    fn = ((1 - predicted) * targets).sum(axis=0)
    per_label = {}
    for j, name in enumerate(names):
        precision, recall, f1 = _f1(tp[j], fp[j], fn[j])
        per_label[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "average_precision": average_precision(targets[:, j], probabilities[:, j]),
            "support": int(targets[:, j].sum()),
            "predicted": int(predicted[:, j].sum()),
            "threshold": float(thresholds[j]),
        }
    micro_precision, micro_recall, micro_f1 = _f1(tp.sum(), fp.sum(), fn.sum())
    present = [m for m in per_label.values() if m["support"]]
    n = len(targets)
    return {
        "micro_f1": micro_f1,
        "macro_f1": float(np.mean([m["f1"] for m in per_label.values()])) if names else 0.0,
        "micro_precision": micro_precision,
        "micro_recall": micro_recall,
        "map": float(np.mean([m["average_precision"] for m in present])) if present else 0.0,
        "exact_match": float((predicted == targets).all(axis=1).mean()) if n else 0.0,
        "hamming_loss": float((predicted != targets).mean()) if n else 0.0,
        "labels_per_example": float(targets.sum(axis=1).mean()) if n else 0.0,
        "predicted_per_example": float(predicted.sum(axis=1).mean()) if n else 0.0,
        "num_examples": int(n),
        "per_label": per_label,
    }


def worst_examples(
    texts: list,
    targets: np.ndarray,
    probabilities: np.ndarray,
    names: list[str],
    thresholds: list[float],
    count: int,
) -> list[dict]:
    """The `count` examples with the most wrong labels (a missed or an extra label each),
    the most confident first among equals: what the report lists."""
    targets = np.asarray(targets, np.float64).reshape(len(texts), len(names))
    probabilities = np.asarray(probabilities, np.float64).reshape(targets.shape)
    predicted = probabilities >= np.asarray(thresholds)
    wrong = predicted != targets.astype(bool)
    confidence = np.where(wrong, np.abs(probabilities - np.asarray(thresholds)), 0).sum(axis=1)
    order = np.lexsort((-confidence, -wrong.sum(axis=1)))[:count]
    return [
        {
            "text": texts[i],
            "true": [n for j, n in enumerate(names) if targets[i, j]],
            "predicted": {
                n: round(float(probabilities[i, j]), 4)
                for j, n in enumerate(names)
                if predicted[i, j]
            },
            "wrong": int(wrong[i].sum()),
        }
        for i in order
        if wrong[i].any()
    ]
