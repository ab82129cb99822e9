"""Random augmentation of image batches in `tf.data`: flip, rotation and zoom as one affine
transform per image, then a contrast change, all drawn from a seed that travels with the batch.

The geometry follows Keras' `RandomFlip("horizontal")`, `RandomRotation(rotation)` and
`RandomZoom(zoom)` (the same centre, reflect fill and bilinear sampling; positive zoom zooms
out) and the contrast follows `RandomContrast(contrast, value_range=(0, 255))`, but:

- the three geometric changes are one `ImageProjectiveTransformV3` call per batch, not three
  (measured on 96-px batches of 32 on 2 cores: the four Keras layers took 45-60 ms a batch);
- the random numbers come from stateless ops keyed by a per-batch seed, so the map can run in
  parallel and a seeded run still draws the same augmentation every time.

Example:

```python
seeds = tf.data.Dataset.random(seed=42, rerandomize_each_iteration=True)
ds = tf.data.Dataset.zip(batches, seeds).map(
    lambda batch, seed: (augment_batch(batch[0], seed, AugmentConfig()), batch[1]),
    num_parallel_calls=tf.data.AUTOTUNE,
)
```
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ftk.config import AugmentConfig

if TYPE_CHECKING:
    import tensorflow as tf


def augments(config: AugmentConfig | None) -> bool:
    """Whether `config` changes anything (every augmentation can be turned off)."""
    return config is not None and bool(
        config.flip or config.rotation or config.zoom or config.contrast
    )


def affine_transforms(
    flip: tf.Tensor, angle: tf.Tensor, scale: tf.Tensor, height, width
) -> tf.Tensor:
    """`[b, 8]` projective transforms (output pixel -> input pixel, as
    `ImageProjectiveTransformV3` takes them) equal to Keras' `RandomFlip("horizontal")` where
    `flip` is -1, then `RandomRotation` by `angle` radians, then `RandomZoom` by `scale`
    (> 1 zooms out), all about the image centre. `flip`, `angle`, `scale`: float32 `[b]`;
    `height`, `width`: numbers or float32 scalars."""
    import tensorflow as tf

    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    # input = M @ (output - centre) + centre, with M = diag(flip, 1) @ R(angle) @ scale: each
    # later layer's output pixel is mapped back through the earlier layers' maps.
    a0, a1 = cos * flip, -sin * flip
    b0, b1 = sin, cos
    a2 = cx - (a0 * cx + a1 * cy)
    b2 = cy - (b0 * cx + b1 * cy)
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """Augment float32 `[b, h, w, 3]` images in 0..255 with the random draws of `seed` (an
    int64 scalar, as `tf.data.Dataset.random` yields); the result stays in 0..255."""
    import tensorflow as tf

    shape = tf.shape(images)
    size = shape[0:1]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    keys = tf.random.experimental.stateless_split(tf.stack([seed, tf.constant(0, tf.int64)]), 4)

    def uniform(i: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform(size, keys[i], minval=low, maxval=high)

    if config.flip or config.rotation or config.zoom:
        ones = tf.ones(size)
        flip = tf.where(uniform(0, 0.0, 1.0) < 0.5, -ones, ones) if config.flip else ones
        turn = 2.0 * math.pi * config.rotation
        angle = uniform(1, -turn, turn) if config.rotation else tf.zeros(size)
        scale = uniform(2, 1.0 - config.zoom, 1.0 + config.zoom) if config.zoom else ones
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=affine_transforms(flip, angle, scale, height, width),
            output_shape=shape[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
    if config.contrast:
        factor = uniform(3, 1.0 - config.contrast, 1.0 + config.contrast)[:, None, None, None]
        mean = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
        images = (images - mean) * factor + mean
    return tf.clip_by_value(images, 0.0, 255.0)
