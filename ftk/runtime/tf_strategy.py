"""TensorFlow's strategies for `[runtime]`: mirrored over this machine's devices, multi-worker
from `TF_CONFIG`, and TPUs (`ftk.runtime.distribute.setup_runtime` picks which)."""

from __future__ import annotations

from ftk.errors import ConfigError
from ftk.runtime.cluster import Cluster


def _split_cpu(count: int) -> None:
    """TensorFlow: `count` logical CPU devices (before TensorFlow initialises its devices)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:  # already initialised: fine if it already has them
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise ConfigError(
                f"runtime.cpu_devices={count} must be set before TensorFlow starts (run in a "
                "fresh process)."
            ) from None


def tpu_cluster_resolver(name: str):
    """TensorFlow's TPU cluster resolver (tests replace this: it may call a metadata server)."""
    import tensorflow as tf

    return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name or "local")


def tf_strategy(
    kind: str, runtime_config, environ, cluster: Cluster
) -> tuple[object, int, bool, int]:
    """(strategy, replicas, is chief, worker index)."""
    import tensorflow as tf

    from ftk.runtime.keras_fixes import patch_distributed_fit

    if kind == "mirrored":
        if runtime_config.cpu_devices:
            _split_cpu(runtime_config.cpu_devices)
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
        chief, index = True, 0
    elif kind == "multi_worker":
        if not environ.get("TF_CONFIG"):
            raise ConfigError(
                "runtime.distribution='multi_worker' reads the cluster from the TF_CONFIG "
                "environment variable, which is not set (see docs/backends.md: 'Several machines')."
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        index = cluster.index  # read from TF_CONFIG once, by setup_runtime
        chief = index == 0
    else:  # tpu
        resolver = tpu_cluster_resolver(runtime_config.tpu)
        if runtime_config.tpu not in ("", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
        chief, index = True, 0
    patch_distributed_fit()
    return strategy, strategy.num_replicas_in_sync, chief, index


def shard_by_data():
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options
