"""Which launcher started this process, read from the environment it set: one place for every
engine (standard library only, so it runs before any framework starts).

- `tf_config`: a plain TensorFlow cluster or a Kubeflow `TFJob` (`TF_CONFIG`).
- `keras`: Keras' own names (`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
  `KERAS_DISTRIBUTION_PROCESS_ID`).
- `jax`: Kubeflow Trainer's `jax-distributed` runtime, a `TrainJob` (`JAX_COORDINATOR_ADDRESS`,
  `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`).
- `slurm`: `srun` in an `sbatch` job (`SLURM_JOB_ID`, `SLURM_NTASKS`, `SLURM_PROCID`,
  `SLURM_STEP_NODELIST`, `SLURM_LOCALID`: what JAX's own cluster detection reads).
- `torchrun`: `torchrun` and Kubeflow's torch runtimes (`WORLD_SIZE`, `RANK`, `MASTER_ADDR`,
  `MASTER_PORT`).

`detect_cluster` is pure (it takes the environment as a dict) and checks what it reads: a
partial or wrong environment is a `ConfigError` naming the variable, raised before any process
waits for another. `check_backend` says which launchers a backend can join.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from ftk.errors import ConfigError

KERAS_VARS = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
JAX_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
# What `jax.distributed.initialize()` needs to detect SLURM (jax/_src/clusters/slurm_cluster.py).
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_STEP_NODELIST",
    "SLURM_LOCALID",
)
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
TORCH_DDP_KERAS = "3.16"  # keras PR #23316: DistributedDataParallel in Keras' torch backend

# Which launchers each backend joins, and what to do instead.
BACKEND_LAUNCHERS = {
    "tensorflow": ("tf_config",),
    "jax": ("keras", "jax", "slurm"),
    "torch": (),
}
NEEDS = {
    "tensorflow": "TF_CONFIG (a Kubeflow TFJob sets it; docs/scale-out.md shows it for other "
    "engines)",
    "jax": "JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID (Kubeflow TrainJob), the "
    "KERAS_DISTRIBUTION_* variables, or srun under SLURM",
    "torch": f"one process: Keras' torch backend gets DistributedDataParallel in Keras "
    f"{TORCH_DDP_KERAS} (keras PR #23316); run the project on one device, or use "
    'runtime.backend = "jax" or "tensorflow" across processes',
}


@dataclass(frozen=True)
class Cluster:
    """This process's place in a job: `processes` = 1 when nothing launched it as part of one."""

    launcher: str = "none"
    processes: int = 1
    index: int = 0
    coordinator: str = ""  # host:port of process 0 (JAX's coordinator); "" for TF_CONFIG
    found: str = "no launcher variables: one process"

    @property
    def multi_process(self) -> bool:
        return self.processes > 1

    def to_json(self) -> dict:
        return asdict(self)


def _int(environ, name: str, low: int = 0, high: int | None = None) -> int:
    value = environ.get(name, "")
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number >= high):
        expected = f"an integer ≥ {low}" + (f" and < {high}" if high is not None else "")
        raise ConfigError(
            f"Environment variable {name}={value!r} is not valid: expected {expected}."
        )
    return number


def _address(environ, name: str, value: str | None = None) -> str:
    value = environ.get(name, "") if value is None else value
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"Environment variable {name}={environ.get(name, '')!r} is not valid: expected "
            "host:port addresses (for example 10.0.0.1:1234)."
        )
    return value


def _all_or_none(environ, names: tuple[str, ...], launcher: str) -> bool:
    present = [n for n in names if environ.get(n)]
    if present and len(present) < len(names):
        missing = [n for n in names if n not in present]
        raise ConfigError(
            f"The environment is partly a {launcher} launch: {', '.join(present)} set but "
            f"{', '.join(missing)} missing. Set all of {', '.join(names)}, or none."
        )
    return bool(present)


def _tf_config(environ) -> Cluster:
    try:
        config = json.loads(environ["TF_CONFIG"])
    except json.JSONDecodeError as e:
        raise ConfigError(f"Environment variable TF_CONFIG is not valid JSON ({e}).") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(
            "Environment variable TF_CONFIG needs a 'cluster' and a 'task' object, for example "
            '{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", '
            '"index": 0}}. Received: ' + environ["TF_CONFIG"][:200]
        )
    chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
    for address in chiefs + workers:
        _address({"TF_CONFIG": environ["TF_CONFIG"]}, "TF_CONFIG", str(address))
    kind, index = task.get("type"), task.get("index", 0)
    members = {"chief": chiefs, "worker": workers}.get(kind)
    if members is None or not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(
            f"Environment variable TF_CONFIG's task {task} is not in its cluster "
            f"({len(chiefs)} chief, {len(workers)} worker): expected type 'chief' or 'worker' "
            "and an index into that list."
        )
    rank = index + (len(chiefs) if kind == "worker" else 0)
    processes = len(chiefs) + len(workers)
    return Cluster(
        "tf_config",
        processes,
        rank,
        "",
        f"TF_CONFIG (plain or Kubeflow TFJob): {processes} processes, this is {kind} {index}",
    )


def _rank_and_size(environ, size_var: str, rank_var: str) -> tuple[int, int]:
    size = _int(environ, size_var, low=1)
    return _int(environ, rank_var, 0, size), size


def detect_cluster(environ=os.environ) -> Cluster:
    """The launcher and this process's rank, from `environ` (raises on a partial one)."""
    if environ.get("TF_CONFIG"):
        return _tf_config(environ)
    if _all_or_none(environ, KERAS_VARS, "Keras"):
        index, size = _rank_and_size(environ, KERAS_VARS[1], KERAS_VARS[2])
        addresses = environ[KERAS_VARS[0]].split(",")
        coordinator = _address({KERAS_VARS[0]: environ[KERAS_VARS[0]]}, KERAS_VARS[0], addresses[0])
        if len(addresses) > 1 and len(addresses) != size:
            raise ConfigError(
                f"KERAS_DISTRIBUTION_JOB_ADDRESSES lists {len(addresses)} addresses but "
                f"KERAS_DISTRIBUTION_NUM_PROCESSES={size}: list one per process, or only the first."
            )
        found = f"KERAS_DISTRIBUTION_*: process {index} of {size}, coordinator {coordinator}"
        return Cluster("keras", size, index, coordinator, found)
    if _all_or_none(environ, JAX_VARS, "JAX (Kubeflow Trainer)"):
        index, size = _rank_and_size(environ, JAX_VARS[1], JAX_VARS[2])
        coordinator = _address(environ, JAX_VARS[0])
        found = f"JAX_* (Kubeflow TrainJob): process {index} of {size}, coordinator {coordinator}"
        return Cluster("jax", size, index, coordinator, found)
    if environ.get("SLURM_JOB_ID") and environ.get("SLURM_NTASKS"):
        return _slurm(environ)
    if _all_or_none(environ, TORCHRUN_VARS, "torchrun"):
        index, size = _rank_and_size(environ, "WORLD_SIZE", "RANK")
        coordinator = f"{environ['MASTER_ADDR']}:{_int(environ, 'MASTER_PORT', 1, 65536)}"
        found = f"torchrun: rank {index} of {size}, master {coordinator}"
        return Cluster("torchrun", size, index, coordinator, found)
    return Cluster()


def _slurm(environ) -> Cluster:
    tasks = _int(environ, "SLURM_NTASKS", low=1)
    if tasks == 1:
        return Cluster(found=f"SLURM job {environ['SLURM_JOB_ID']} with one task: one process")
    missing = [n for n in SLURM_VARS if not environ.get(n)]
    if missing:
        raise ConfigError(
            f"SLURM job {environ['SLURM_JOB_ID']} has SLURM_NTASKS={tasks} but "
            f"{', '.join(missing)} is not set: start train.py with srun inside the sbatch script "
            "(launch/slurm.sbatch does), so every task gets its own SLURM_PROCID."
        )
    index = _int(environ, "SLURM_PROCID", 0, tasks)
    _int(environ, "SLURM_LOCALID")
    found = f"SLURM job {environ['SLURM_JOB_ID']}: task {index} of {tasks}"
    return Cluster("slurm", tasks, index, "", found)


def check_backend(cluster: Cluster, backend: str) -> None:
    """Raise (in seconds, before any waiting) when `backend` cannot join this launch."""
    if not cluster.multi_process or cluster.launcher in BACKEND_LAUNCHERS[backend]:
        return
    raise ConfigError(
        f"Found {cluster.found}, but runtime.backend={backend!r} joins several processes through "
        f"{NEEDS[backend]}."
    )
