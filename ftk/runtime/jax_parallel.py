"""JAX across processes and devices with `keras.distribution`: joining the processes a launcher
started, data parallelism where each process feeds its own slice of every global batch, and
model parallelism (`model_parallel.py`).

Keras' automatic per-process sharding cannot see the batch size through keras-hub's
preprocessing (keras-hub #1630), so ftk shards itself: `DataParallel(auto_shard_dataset=False)`
and, in every process, the same globally shuffled batches cut into `processes` equal slices, this
process keeping slice `index` (`process_slice`). Keras' JAX trainer then assembles the global
batch with `jax.make_array_from_process_local_data`: the global batches are exactly those of one
device, so the weights match it.
"""

from __future__ import annotations

import logging

from ftk.runtime.cluster import Cluster

logger = logging.getLogger("ftk")

JOIN_TIMEOUT_S = 300  # jax.distributed.initialize's wait for every process, then an error


def join(cluster: Cluster) -> None:
    """Connect this process to the others (before JAX touches a device). SLURM's variables are
    read by JAX's own cluster detection; the others are passed explicitly."""
    import jax

    if not cluster.multi_process:
        return
    logger.info(
        "Joining %d JAX processes as process %d (%s; waits up to %d s for all of them)",
        cluster.processes,
        cluster.index,
        cluster.coordinator or "coordinator from the launcher",
        JOIN_TIMEOUT_S,
    )
    if cluster.launcher == "slurm":
        jax.distributed.initialize(initialization_timeout=JOIN_TIMEOUT_S)
        return
    jax.distributed.initialize(
        coordinator_address=cluster.coordinator,
        num_processes=cluster.processes,
        process_id=cluster.index,
        initialization_timeout=JOIN_TIMEOUT_S,
    )


def data_parallel() -> tuple[object, int, bool, int]:
    """(DataParallel over every device of every process, replicas, is chief, process index)."""
    import jax
    import keras

    index = jax.process_index()
    devices = jax.devices()
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    return distribution, len(devices), index == 0, index


def process_slice(ds, index: int, processes: int):
    """Every batch of `ds` cut into `processes` equal slices; this process keeps slice `index`.
    Every batch's size must be a multiple of `processes` (the callers make it one)."""
    import tensorflow as tf

    if processes == 1:
        return ds

    def cut(*batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0] // processes
        part = tf.nest.map_structure(lambda t: t[index * size : (index + 1) * size], batch)
        return part if len(part) > 1 else part[0]

    return ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
