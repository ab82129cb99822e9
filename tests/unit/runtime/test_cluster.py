"""`ftk.runtime.cluster`: every launcher's environment read into one `Cluster`, and a partial
or wrong one refused with the variable's name (no process waits for another first)."""

import json

import pytest

from ftk.errors import ConfigError
from ftk.runtime.cluster import Cluster, check_backend, detect_cluster


def tf_config(kind="worker", index=0, workers=2, chief=0) -> dict:
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


JAX = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
KERAS = {
    "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:1234",
    "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    "KERAS_DISTRIBUTION_PROCESS_ID": "1",
}
SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "0",
    "SLURM_STEP_NODELIST": "node[01-02]",
}
TORCHRUN = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize(
    "environ, launcher, processes, index, coordinator",
    [
        ({}, "none", 1, 0, ""),
        (tf_config(index=1), "tf_config", 2, 1, ""),
        (tf_config("chief", 0, workers=2, chief=1), "tf_config", 3, 0, ""),
        (tf_config("worker", 1, workers=2, chief=1), "tf_config", 3, 2, ""),
        (KERAS, "keras", 2, 1, "10.0.0.1:1234"),
        (JAX, "jax", 4, 3, "10.0.0.1:1234"),
        (SLURM, "slurm", 2, 1, ""),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, "none", 1, 0, ""),
        (TORCHRUN, "torchrun", 2, 0, "127.0.0.1:29500"),
    ],
)
def test_each_launcher_is_read_from_its_variables(environ, launcher, processes, index, coordinator):
    cluster = detect_cluster(environ)
    assert (cluster.launcher, cluster.processes, cluster.index, cluster.coordinator) == (
        launcher,
        processes,
        index,
        coordinator,
    )
    assert cluster.found  # what the log says it found


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"TF_CONFIG": "{nope"}, "TF_CONFIG is not valid JSON"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}}'}, "needs a 'cluster' and a 'task'"),
        (tf_config(index=2), "task .* is not in its cluster"),
        (tf_config("ps", 0), "expected type 'chief' or 'worker'"),
        (
            {"TF_CONFIG": json.dumps({"cluster": {"worker": ["nohost"]}, "task": {"index": 0}})},
            "TF_CONFIG.*host:port",
        ),
        ({**JAX, "JAX_PROCESS_ID": "4"}, r"JAX_PROCESS_ID='4' is not valid: expected .*< 4"),
        ({**JAX, "JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two'"),
        ({**JAX, "JAX_COORDINATOR_ADDRESS": "10.0.0.1"}, "JAX_COORDINATOR_ADDRESS.*host:port"),
        (
            {"JAX_NUM_PROCESSES": "2"},
            "partly a JAX .*JAX_NUM_PROCESSES set but JAX_COORDINATOR_ADDRESS, JAX_PROCESS_ID",
        ),
        ({**KERAS, "KERAS_DISTRIBUTION_NUM_PROCESSES": "3"}, "lists 2 addresses but .*=3"),
        ({"KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "partly a Keras"),
        (
            {**SLURM, "SLURM_STEP_NODELIST": ""},
            "SLURM_STEP_NODELIST is not set: .* srun",
        ),
        ({**TORCHRUN, "MASTER_PORT": "0"}, "MASTER_PORT='0'"),
        ({"WORLD_SIZE": "2", "RANK": "1"}, "partly a torchrun"),
    ],
)
def test_a_wrong_or_partial_environment_names_the_variable(environ, message):
    with pytest.raises(ConfigError, match=message):
        detect_cluster(environ)


def test_each_backend_joins_only_the_launchers_it_can():
    check_backend(detect_cluster(tf_config()), "tensorflow")
    for environ in (KERAS, JAX, SLURM):
        check_backend(detect_cluster(environ), "jax")
    for backend in ("tensorflow", "jax", "torch"):
        check_backend(Cluster(), backend)  # one process: any backend
    check_backend(detect_cluster({**TORCHRUN, "WORLD_SIZE": "1"}), "torch")
    with pytest.raises(ConfigError, match=r"torch.*Keras 3\.16 \(keras PR #23316\)"):
        check_backend(detect_cluster(TORCHRUN), "torch")
    with pytest.raises(ConfigError, match="runtime.backend='tensorflow' .*TF_CONFIG"):
        check_backend(detect_cluster(JAX), "tensorflow")
    with pytest.raises(ConfigError, match="runtime.backend='jax' .*JAX_COORDINATOR_ADDRESS"):
        check_backend(detect_cluster(tf_config()), "jax")


def test_one_process_chosen_with_several_launched_is_refused():
    from ftk.config import load_config
    from ftk.runtime.distribute import setup_runtime

    config = load_config(None, ["runtime.distribution=none"])
    with pytest.raises(ConfigError, match="every process would train its own model"):
        setup_runtime(config, environ=tf_config())
