"""The classifier head's initial weights, the same on every backend.

Keras draws random initial weights with the backend's own generator, so the same seed gives a
different head on TensorFlow, JAX and torch. `seed_head` redraws the head's kernel with NumPy,
from the layer's own initializer (its family and scale) and `run.seed`: a run then starts from
the same weights whatever `runtime.backend`, and backends can be compared run for run.
"""

from __future__ import annotations

import math

import numpy as np


def _truncated_normal(rng, mean: float, stddev: float, shape) -> np.ndarray:
    """Normal values redrawn until within two standard deviations (Keras' definition)."""
    values = rng.normal(mean, stddev, shape)
    outside = np.abs(values - mean) > 2 * stddev
    while outside.any():
        values[outside] = rng.normal(mean, stddev, outside.sum())
        outside = np.abs(values - mean) > 2 * stddev
    return values


def initial_values(initializer, shape: tuple[int, ...], seed: int) -> np.ndarray | None:
    """What `initializer` would draw for `shape`, drawn with NumPy from `seed`; None for an
    initializer family this does not know (the layer keeps Keras' values)."""
    import keras

    rng = np.random.default_rng(seed)
    init = keras.initializers
    if isinstance(initializer, init.TruncatedNormal):
        return _truncated_normal(rng, initializer.mean, initializer.stddev, shape)
    if isinstance(initializer, init.RandomNormal):
        return rng.normal(initializer.mean, initializer.stddev, shape)
    if isinstance(initializer, init.RandomUniform):
        return rng.uniform(initializer.minval, initializer.maxval, shape)
    if isinstance(initializer, init.VarianceScaling):  # Glorot, He, LeCun
        fan_in, fan_out = shape[0], shape[-1]
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = initializer.scale / max(1.0, fan[initializer.mode])
        if initializer.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if initializer.distribution == "truncated_normal":
            return _truncated_normal(rng, 0.0, math.sqrt(variance) / 0.87962566103423978, shape)
        return rng.normal(0.0, math.sqrt(variance), shape)
    return None


def seed_head(model, seed: int) -> bool:
    """Redraw the kernel of the classifier's output layer (`model.output_dense`) from `seed`
    with NumPy. Returns False (nothing changed) for a model without one or an unknown
    initializer."""
    layer = getattr(model, "output_dense", None)
    if layer is None or not getattr(layer, "built", False):
        return False
    shape = tuple(layer.kernel.shape)
    values = initial_values(layer.kernel_initializer, shape, seed)
    if values is None:
        return False
    layer.kernel.assign(values.astype(layer.kernel.dtype))
    return True
