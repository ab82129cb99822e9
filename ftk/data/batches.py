"""Batches of in-memory examples for Keras, the same way for every task: shuffled (seeded,
reshuffled each epoch) only for training, then batched and prefetched."""

from __future__ import annotations

from ftk.config.schema import Config


def batched(ds, count: int, config: Config, training: bool):
    """`ds` (one element per example, `count` of them) shuffled with `data.shuffle_buffer`
    when `training`, batched by `train.batch_size`, prefetched."""
    import tensorflow as tf

    if training and config.data.shuffle_buffer:
        buffer = min(config.data.shuffle_buffer, count) or 1
        ds = ds.shuffle(buffer, seed=config.run.seed, reshuffle_each_iteration=True)
    return ds.batch(config.train.batch_size).prefetch(tf.data.AUTOTUNE)
