"""Devices, distribution and precision of a run: `[runtime]` turned into a `Runtime`.

`runtime.distribution`:

- `"none"`: one device.
- `"mirrored"` (TensorFlow): `tf.distribute.MirroredStrategy` over this machine's GPUs (or, with
  `runtime.cpu_devices = N`, N logical CPU devices).
- `"multi_worker"` (TensorFlow): `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes
  from `TF_CONFIG`. Every worker runs the same command; the chief (worker 0) writes the run, the
  others train into `<run.run_dir>/.workers/<index>/` and exit after training.
- `"tpu"`: TensorFlow's `TPUStrategy` (`runtime.tpu` names the TPU; `""` = this TPU VM), or on
  JAX data parallelism over the TPU cores.
- `"data_parallel"` (JAX): `keras.distribution.DataParallel` over every device; several hosts
  join through `keras.distribution.initialize()` (`KERAS_DISTRIBUTION_JOB_ADDRESSES`,
  `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`).
- `"auto"`: a TPU if this is a TPU machine, else data parallelism over several GPUs (mirrored on
  TensorFlow, data_parallel on JAX; `TF_CONFIG` with several workers: multi_worker), else one
  device. The torch backend always trains on one device.

`runtime.precision = "auto"` is mixed_bfloat16 on TPUs and GPUs that compute in bfloat16
(compute capability 8.0+), mixed_float16 on older GPUs (7.0+); on CPUs, mixed_bfloat16 where
bfloat16 training of the task's kind of model is measured faster on CPUs with the same bfloat16
instructions (`ftk.runtime.cpu`), float32 otherwise. Exports are
always float32: after training, the weights are copied into a plain float32 model on one device
(`Runtime.deployable`), which is what is evaluated, exported and verified.

`train.batch_size` is the global batch unless `runtime.per_replica_batch` (then the global batch
is `batch_size x replicas`); `runtime.scale_learning_rate` (`linear` or `sqrt`) multiplies the
learning rates by how much the global batch grew.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
from dataclasses import dataclass, field

from ftk.config import Config
from ftk.errors import ClusterError, ConfigError
from ftk.runtime.cluster import Cluster, check_backend, detect_cluster
from ftk.runtime.cpu import CpuInfo, cpu_info, cpu_precision
from ftk.tasks.registry import get_task

logger = logging.getLogger("ftk")

# Environment variables and device files that exist on TPU machines (checked without touching
# the network: a cluster resolver may call the GCE metadata server).
TPU_ENV = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")
TPU_DEVICE_GLOBS = ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")
FINISH_TIMEOUT_MS = 24 * 3600 * 1000  # a dead chief ends the wait sooner (missed heartbeats)


@dataclass(frozen=True)
class Devices:
    """What this process can see (`detect`)."""

    tpu: bool = False
    gpus: int = 0
    gpu_capability: tuple[int, int] | None = None  # of the first GPU
    workers: int = 1  # TF_CONFIG's workers, or JAX/Keras processes


def tpu_present(environ=os.environ, globs=TPU_DEVICE_GLOBS) -> bool:
    return any(environ.get(k) for k in TPU_ENV) or any(glob.glob(g) for g in globs)


def choose(requested: str, backend: str, devices: Devices) -> tuple[str, str]:
    """The distribution to use and why (pure: tested with made-up `Devices`)."""
    if requested != "auto":
        return requested, f"runtime.distribution = {requested!r}"
    if backend == "torch":
        reason = "the torch backend trains on one device in ftk"
        if devices.gpus > 1:
            reason += f" ({devices.gpus} GPUs found; DistributedDataParallel is not wired in)"
        return "none", reason
    if devices.tpu:
        return "tpu", "a TPU was found"
    if backend == "tensorflow" and devices.workers > 1:
        return "multi_worker", f"TF_CONFIG lists {devices.workers} workers"
    if backend == "jax" and devices.workers > 1:
        return "data_parallel", f"{devices.workers} JAX processes"
    if devices.gpus > 1:
        kind = "mirrored" if backend == "tensorflow" else "data_parallel"
        return kind, f"{devices.gpus} GPUs found"
    return "none", f"{devices.gpus or 'no'} GPU{'s' if devices.gpus != 1 else ''} found"


def choose_precision(
    requested: str,
    kind: str,
    devices: Devices,
    backend: str = "tensorflow",
    compute: str = "",
    cpu: CpuInfo | None = None,
) -> tuple[str, str]:
    """The Keras dtype policy and why (pure: `cpu` and `devices` may be made up). On a machine
    without accelerators the CPU decides (`ftk.runtime.cpu.cpu_precision`)."""
    if requested != "auto":
        return requested, f"runtime.precision = {requested!r}"
    if kind == "tpu":
        return "mixed_bfloat16", "TPUs compute in bfloat16"
    if devices.gpus and devices.gpu_capability:
        major, minor = devices.gpu_capability
        if major >= 8:
            return "mixed_bfloat16", f"the GPU (compute capability {major}.{minor}) has bfloat16"
        if major >= 7:
            return "mixed_float16", f"the GPU (compute capability {major}.{minor}) has float16"
    if devices.gpus:
        if devices.gpu_capability is None:
            return "float32", "the GPU's compute capability is unknown"
        return "float32", "the GPU computes no faster in 16 bits (compute capability < 7.0)"
    return cpu_precision(backend, compute, cpu or cpu_info())


def scaled(config: Config, replicas: int) -> tuple[Config, int, float]:
    """`config` with the global batch size and learning rates for `replicas` replicas."""
    runtime, train = config.runtime, config.train
    batch = train.batch_size * replicas if runtime.per_replica_batch else train.batch_size
    growth = batch / train.batch_size
    factor = {"none": 1.0, "linear": growth, "sqrt": growth**0.5}[runtime.scale_learning_rate]
    if batch % replicas:
        raise ConfigError(
            f"The global batch ({batch}) must split evenly over {replicas} replicas. "
            f"Received: train.batch_size={train.batch_size}. Use a multiple of {replicas}, or "
            "runtime.per_replica_batch = true."
        )
    if runtime.scale_learning_rate != "none" and growth == 1:
        logger.warning(
            "runtime.scale_learning_rate=%r has no effect: the global batch did not grow "
            "(set runtime.per_replica_batch = true to grow it with the replicas).",
            runtime.scale_learning_rate,
        )
    if batch == train.batch_size and factor == 1.0:
        return config, batch, factor
    train = dataclasses.replace(train, batch_size=batch, learning_rate=train.learning_rate * factor)
    recipe = dataclasses.replace(
        config.recipe, head_learning_rate=config.recipe.head_learning_rate * factor
    )
    return dataclasses.replace(config, train=train, recipe=recipe), batch, factor


@dataclass
class Runtime:
    """The resolved `[runtime]` of this process."""

    backend: str
    distribution: str
    reason: str
    precision: str
    precision_reason: str
    replicas: int = 1
    is_chief: bool = True
    worker_index: int = 0
    strategy: object | None = field(default=None, repr=False)  # tf.distribute.Strategy
    jax_distribution: object | None = field(default=None, repr=False)
    global_batch_size: int = 0
    learning_rate_factor: float = 1.0
    cluster: Cluster = field(default_factory=Cluster)
    run_id: str = ""

    mesh: object | None = field(default=None, repr=False)  # model_parallel's device mesh

    @property
    def distributed(self) -> bool:
        return self.strategy is not None or self.jax_distribution is not None

    @property
    def jax_parallel(self) -> bool:
        """JAX over several devices: every batch is split evenly over the batch axis."""
        return self.backend == "jax" and self.distribution != "none"

    def to_json(self) -> dict:
        return {
            "backend": self.backend,
            "distribution": self.distribution,
            "distribution_reason": self.reason,
            "replicas": self.replicas,
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            "cpu": cpu_info().to_json(),
            "launcher": self.cluster.to_json(),
            "global_batch_size": self.global_batch_size,
            "learning_rate_factor": self.learning_rate_factor,
        }

    @contextlib.contextmanager
    def scope(self, location: str = ""):
        """Where models are built and trained: the strategy or JAX distribution, and the
        dtype policy. Model parallelism places the backbone of the preset at `location` with
        its layout map."""
        import keras

        if self.mesh is not None and self.jax_distribution is None:
            from ftk.runtime.model_parallel import distribution

            self.jax_distribution = distribution(location, self.mesh)

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            if self.strategy is not None:
                with self.strategy.scope():
                    yield
            elif self.jax_distribution is not None:
                with self.jax_distribution.scope():
                    yield
            else:
                yield
        except Exception as error:
            if self.mesh is not None:
                from ftk.runtime.model_parallel import explain_indivisible

                explained = explain_indivisible(error, self.mesh)
                if explained is not None:
                    raise explained from error
            raise
        finally:
            keras.config.set_dtype_policy(previous)

    def finish(self) -> None:
        """Multi-worker: every worker waits here until the chief has evaluated and exported, so
        no worker leaves while the chief runs (TensorFlow reports a departed worker as crashed).
        """
        if self.distribution != "multi_worker":
            return
        from tensorflow.python.eager import context

        logger.info("Waiting for every worker (and the chief's export) to finish")
        context.context().wait_at_barrier("ftk_run_finished", FINISH_TIMEOUT_MS)

    def lost_peer(self, error: BaseException) -> ClusterError | None:
        """What to tell the user when training failed because another process of the job
        stopped (TensorFlow's collectives and JAX's coordinator report it as missed
        heartbeats); `None` for any other error."""
        text = str(error)
        first = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
        if not self.cluster.multi_process or not any(
            word in text.lower() for word in ("heartbeat", "unhealthy", "unavailable", "aborted")
        ):
            return None
        run_id = self.run_id
        again = (
            f"Start every process again with run.run_id={run_id!r}: the run continues from its "
            "last finished epoch"
            if run_id
            else "Set run.run_id (the generated launch files do) so that a restarted job "
            "continues this run from its last finished epoch"
        )
        return ClusterError(f"Another process of this job stopped ({first}). {again}.")

    def deployable(self, model, build):
        """`model` itself, or (distributed or mixed precision) a float32 copy on one device,
        built by `build()` outside the scope: what is evaluated, exported and verified."""
        if not self.distributed and self.precision == "float32":
            return model
        copy = build()
        copy.set_weights(model.get_weights())
        logger.info("Evaluating and exporting a float32 copy of the trained weights on one device")
        return copy

    def train_data(self, ds, count: int):
        """The training dataset (`count` examples) as this distribution needs it."""
        import tensorflow as tf

        from ftk.runtime.tf_strategy import shard_by_data

        if self.distribution == "multi_worker":
            return ds.with_options(shard_by_data())
        if self.distribution == "tpu" and self.strategy is not None:
            # TPUs want static shapes: the last partial batch is dropped.
            return ds.rebatch(self.global_batch_size, drop_remainder=True)
        drop = count % self.global_batch_size % self.replicas
        if not self.jax_parallel or not drop:
            return self._own_slice(ds)
        # JAX splits every batch evenly over the devices: the last batch loses `drop` (<
        # replicas) examples, different ones each epoch as the data is reshuffled.
        logger.info(
            "%d example(s) of each epoch's last batch are left out (%d devices)",
            drop,
            self.replicas,
        )
        return self._own_slice(
            ds.unbatch().take(count - drop).batch(self.global_batch_size).prefetch(tf.data.AUTOTUNE)
        )

    def eval_data(self, ds, count: int):
        """A validation dataset of `count` examples as this distribution needs it: under JAX
        data parallelism the last batch is padded to a multiple of the devices with examples of
        weight 0 (they add nothing to the accuracy or to the loss's sum, though that batch's mean
        loss is divided by its padded size)."""
        from ftk.runtime.tf_strategy import shard_by_data

        if self.distribution == "multi_worker":
            return ds.with_options(shard_by_data())
        if not self.jax_parallel or count % self.replicas == 0:
            return self._own_slice(ds)
        return self._own_slice(_pad_last_batch(ds, self.global_batch_size, -count % self.replicas))

    def _own_slice(self, ds):
        """JAX across processes: this process's slice of every global batch."""
        if not self.jax_parallel or not self.cluster.multi_process:
            return ds
        from ftk.runtime.jax_parallel import process_slice

        return process_slice(ds, self.cluster.index, self.cluster.processes)


def worker_dir(config: Config, index: int, fresh: bool):
    """Where a non-chief worker trains: `<run.run_dir>/.workers/<index>/` (with `run.run_id`:
    `.workers/<run_id>/<index>/`), emptied for a new run (it holds only that worker's copies of
    the chief's checkpoints) and kept for --resume or a restart."""
    import shutil

    from ftk.runs.dirs import WORKERS_DIR, named_dir

    root = config.resolve_path(config.run.run_dir) / WORKERS_DIR
    path = named_dir(config, index) if config.run.run_id else root / str(index)
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pad_last_batch(ds, batch_size: int, pad: int):
    """`ds` (batches of `(x, y)` or `(x, y, weights)`) with `pad` copies of its first example
    of weight 0 after the last one."""
    import tensorflow as tf

    def weighted(scale):
        def add(x, y, w=None):
            return x, y, (tf.ones((), tf.float32) if w is None else tf.cast(w, tf.float32)) * scale

        return add

    examples = ds.unbatch()
    padding = examples.take(1).map(weighted(0.0)).repeat(pad)
    return examples.map(weighted(1.0)).concatenate(padding).batch(batch_size)


def detect(backend: str, environ=os.environ, cluster: Cluster | None = None) -> Devices:
    """The devices of this process (no network calls)."""
    tpu = tpu_present(environ)
    workers = (cluster or detect_cluster(environ)).processes
    gpus, capability = 0, None
    if backend == "tensorflow":
        import tensorflow as tf

        physical = tf.config.list_physical_devices("GPU")
        gpus = len(physical)
        if physical:
            details = tf.config.experimental.get_device_details(physical[0])
            capability = details.get("compute_capability")
    elif backend == "jax":
        import jax

        local = [d for d in jax.local_devices() if d.platform == "gpu"]
        gpus = len(local)
        if local and getattr(local[0], "compute_capability", None):
            capability = tuple(int(p) for p in str(local[0].compute_capability).split(".")[:2])
    elif backend == "torch":
        import torch

        gpus = torch.cuda.device_count()
        if gpus:
            capability = torch.cuda.get_device_capability(0)
    return Devices(tpu=tpu, gpus=gpus, gpu_capability=capability, workers=workers)


def setup_runtime(config: Config, environ=os.environ) -> tuple[Runtime, Config]:
    """Resolve `[runtime]` for this process (call before any TensorFlow/JAX computation), log
    what was chosen and why, and return it with the config scaled for the replicas."""
    runtime_config = config.runtime
    backend = runtime_config.backend
    cluster = detect_cluster(environ)
    check_backend(cluster, backend)
    logger.info("Launcher: %s", cluster.found)
    if backend == "jax" and runtime_config.distribution != "none":
        from ftk.runtime.jax_parallel import join

        join(cluster)  # several processes (hosts) join one device mesh: before JAX starts
    devices = detect(backend, environ, cluster)
    kind, reason = choose(runtime_config.distribution, backend, devices)
    if cluster.multi_process and kind == "none":
        raise ConfigError(
            f"Found {cluster.found}, but runtime.distribution={runtime_config.distribution!r} "
            "trains on one device: every process would train its own model. Use "
            '"auto" (or "multi_worker" on TensorFlow, "data_parallel" on JAX).'
        )
    compute = get_task(config.run.task).cpu_compute
    precision, precision_reason = choose_precision(
        runtime_config.precision, kind, devices, backend, compute
    )
    runtime = Runtime(
        backend,
        kind,
        reason,
        precision,
        precision_reason,
        cluster=cluster,
        run_id=config.run.run_id,
    )
    if backend == "tensorflow" and kind != "none":
        from ftk.runtime.tf_strategy import tf_strategy

        runtime.strategy, runtime.replicas, runtime.is_chief, runtime.worker_index = tf_strategy(
            kind, runtime_config, environ, cluster
        )
    elif kind == "model_parallel":
        from ftk.runtime.model_parallel import device_mesh

        runtime.mesh = device_mesh(runtime_config.model_devices)
        runtime.replicas = runtime.mesh.shape[0]  # the batch axis splits every batch
        runtime.is_chief, runtime.worker_index = cluster.index == 0, cluster.index
    elif backend == "jax" and kind != "none":
        from ftk.runtime.jax_parallel import data_parallel

        runtime.jax_distribution, runtime.replicas, runtime.is_chief, runtime.worker_index = (
            data_parallel()
        )
    config, runtime.global_batch_size, runtime.learning_rate_factor = scaled(
        config, runtime.replicas
    )
    logger.info(
        "Runtime: %s backend, distribution %s (%s), %d replica(s), global batch %d%s; "
        "precision %s (%s)",
        backend,
        kind,
        reason,
        runtime.replicas,
        runtime.global_batch_size,
        f", learning rates x{runtime.learning_rate_factor:g}"
        if runtime.learning_rate_factor != 1
        else "",
        precision,
        precision_reason,
    )
    logger.info("CPU: %s", cpu_info().describe())
    return runtime, config
