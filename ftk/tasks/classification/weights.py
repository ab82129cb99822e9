"""`train.class_weight = "balanced"`: every training example's loss weighted by
n / (classes x its class's count), as scikit-learn's `compute_class_weight("balanced")` does,
so each class adds the same total weight to an epoch. The weights ride in the training
dataset as Keras sample weights (`(x, y, weight)`), which every backend, distribution and
keras-hub preprocessor takes as they are."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("ftk")


def balanced_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """One weight per class (0 for a class with no training example: it weighs nothing)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)[:classes]
    weights = np.zeros(classes, np.float32)
    present = counts > 0
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


def with_class_weights(ds, labels: np.ndarray, classes: int):
    """`ds` (batches of `(x, y)`) as `(x, y, weight of y)`."""
    import tensorflow as tf

    weights = balanced_weights(labels, classes)
    logger.info(
        "train.class_weight = balanced: class weights %s",
        ", ".join(f"{i}: {w:.3g}" for i, w in enumerate(weights)),
    )
    table = tf.constant(weights)
    return ds.map(
        lambda x, y: (x, y, tf.gather(table, tf.cast(y, tf.int32))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
