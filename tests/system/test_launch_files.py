"""The launch files every baked project gets (`launch/`), proven offline: each is parsed, and
the processes it describes are started on 127.0.0.1 with exactly the environment its engine
gives each pod or task (TF_CONFIG from Kubeflow's TFJob operator, JAX_* from Kubeflow
Trainer's jax-distributed runtime, SLURM_* from srun); the trained weights match one device.
The project is the text template, trained on the tiny BERT (no dropout) for speed."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from string import Template

import numpy as np
import pytest
import yaml
from helpers import bake, h5_arrays, only_run_dir

TIMEOUT = 420
MATCH = 1e-5
LAUNCH_VARS = ("TF_CONFIG", "KERAS_", "JAX_", "SLURM_", "WORLD_SIZE", "RANK", "MASTER_", "XLA_")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return bake(tmp_path_factory.mktemp("launch"), project_name="Launch Demo")


def tiny(still_preset, tiny_csv, export: bool = False) -> list[str]:
    """Overrides that make the baked project train the tiny model in seconds (and not export,
    unless `export`)."""
    settings = [
        f"model.preset={still_preset}",
        "model.sequence_length=16",
        "model.trainable=all",
        "model.dropout=0.0",
        "data.format=csv",
        f"data.path={tiny_csv}",
        "train.epochs=2",
        "train.batch_size=8",
        "train.learning_rate=3e-3",
        "train.early_stopping_patience=0",
        "recipe.name=single",
        "runtime.precision=float32",
        *([] if export else ['export.export_dir=""']),
        "export.verify_examples=8",
    ]
    return [arg for s in settings for arg in ("--set", s)] + ["--quiet"]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_VARS)}
    env.pop("KERAS_BACKEND", None)
    return {**env, **extra}


def start(project: Path, command: list[str], shared: Path, extra: list[str], **env):
    """One pod's or task's container command, run in the project: `python` is this Python,
    the shared volume `/shared` is a local folder."""
    assert command[0] == "python" and command[1] == "train.py", command
    args = [a.replace("/shared", str(shared)) for a in command[1:]]
    return subprocess.Popen(
        [sys.executable, *args, *extra],
        cwd=project,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_all(processes) -> list[str]:
    outputs = []
    try:
        for p in processes:
            out, _ = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, out[-4000:]
            outputs.append(out)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    return outputs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_diff(a: Path, b: Path) -> float:
    x, y = h5_arrays(a), h5_arrays(b)
    assert x.keys() == y.keys() and x
    return max(float(np.abs(x[k] - y[k]).max()) for k in x)


@pytest.fixture(scope="module")
def one_device(project, still_preset, tiny_csv, tmp_path_factory):
    """The reference runs: each backend on one device, same overrides."""
    runs = {}
    for backend in ("tensorflow", "jax"):
        shared = tmp_path_factory.mktemp(f"one_{backend}")
        command = ["python", "train.py", "--set", f"run.run_dir={shared / 'runs'}"]
        extra = [*tiny(still_preset, tiny_csv), "--set", f"runtime.backend={backend}"]
        finish_all([start(project, command, shared, extra)])
        runs[backend] = only_run_dir(shared) / "model.weights.h5"
    return runs


def test_every_project_gets_the_launch_files(project):
    launch = project / "launch"
    assert sorted(p.name for p in launch.iterdir()) == [
        "Dockerfile",
        "shared-volume.yaml",
        "slurm.sbatch",
        "tfjob.yaml",
        "trainjob.yaml",
    ]
    volume = yaml.safe_load((launch / "shared-volume.yaml").read_text())
    assert volume["kind"] == "PersistentVolumeClaim"
    assert volume["metadata"]["name"] == "launch-demo-shared"
    assert "ReadWriteMany" in volume["spec"]["accessModes"]


def test_kubeflow_tfjob_runs_as_its_pods_would(
    project, one_device, still_preset, tiny_csv, tmp_path
):
    job = yaml.safe_load((project / "launch" / "tfjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    name, workers = job["metadata"]["name"], job["spec"]["tfReplicaSpecs"]["Worker"]
    pod = workers["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "tensorflow" and container["image"].endswith(f"/{name}:latest")
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == f"{name}-shared"
    command = container["command"]
    assert f"run.run_id={name}" in command and "runtime.backend=tensorflow" in command
    replicas = workers["replicas"]
    assert replicas == 2
    # What the operator puts in each pod (its services replaced by local ports).
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(replicas)]}
    processes = [
        start(
            project,
            command,
            tmp_path,
            tiny(still_preset, tiny_csv, export=True),
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": i}, "environment": "cloud"}
            ),
        )
        for i in range(replicas)
    ]
    chief, worker = finish_all(processes)
    assert "worker 1: training done" in worker
    assert "crashed" not in chief + worker
    run_dir = tmp_path / "runs" / name
    assert (tmp_path / "runs" / ".workers" / name / "1" / "history.csv").is_file()
    assert not (tmp_path / "runs" / ".workers" / name / "1" / "model.weights.h5").exists()
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["version_dir"].startswith(str(tmp_path / "saved_models"))
    assert export["savedmodel_max_abs_diff"] <= 1e-5 and export["onnx_max_abs_diff"] <= 1e-5
    assert json.loads((run_dir / "run.json").read_text())["runtime"]["launcher"]["launcher"] == (
        "tf_config"
    )
    diff = max_diff(one_device["tensorflow"], run_dir / "model.weights.h5")
    print(f"TFJob ({replicas} workers) vs one device: {diff:.2e}")
    assert diff <= MATCH


def test_kubeflow_trainjob_runs_as_its_pods_would(
    project, one_device, still_preset, tiny_csv, tmp_path
):
    job = yaml.safe_load((project / "launch" / "trainjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert job["spec"]["runtimeRef"]["name"] == "jax-distributed"
    name, trainer = job["metadata"]["name"], job["spec"]["trainer"]
    command, nodes = trainer["command"], trainer["numNodes"]
    assert f"run.run_id={name}" in command and "runtime.backend=jax" in command and nodes == 2
    # What Kubeflow Trainer's JAX runtime puts in each pod.
    coordinator = f"127.0.0.1:{free_port()}"
    processes = [
        start(
            project,
            command,
            tmp_path,
            tiny(still_preset, tiny_csv),
            JAX_COORDINATOR_ADDRESS=coordinator,
            JAX_NUM_PROCESSES=str(nodes),
            JAX_PROCESS_ID=str(i),
        )
        for i in range(nodes)
    ]
    finish_all(processes)
    run_dir = tmp_path / "runs" / name
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["launcher"]["launcher"] == "jax" and runtime["replicas"] == nodes
    diff = max_diff(one_device["jax"], run_dir / "model.weights.h5")
    print(f"TrainJob ({nodes} JAX processes) vs one device: {diff:.2e}")
    assert diff <= MATCH


def slurm_job_id() -> int:
    """A job id whose coordinator port (JAX: id % 4096 + 61440) is free here."""
    for job_id in range(4242, 4242 + 4096, 97):
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", job_id % 4096 + 61440))
            return job_id
        except OSError:
            continue
    pytest.fail("no free port in JAX's SLURM range")


def test_slurm_script_runs_as_srun_would(project, one_device, still_preset, tiny_csv, tmp_path):
    script = (project / "launch" / "slurm.sbatch").read_text()
    options = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", script, re.M))
    tasks = int(options["nodes"]) * int(options["ntasks-per-node"])
    assert tasks == 2 and "requeue" in re.findall(r"^#SBATCH --([\w-]+)$", script, re.M)
    (line,) = [s for s in script.splitlines() if s.startswith("srun ")]
    job_id = slurm_job_id()
    env = {"SLURM_JOB_ID": str(job_id), "SLURM_JOB_NAME": options["job-name"]}
    # What srun puts in each task (one per node; "localhost" stands for the node list).
    command = [Template(a).substitute(env) for a in shlex.split(line)[1:]]
    assert f"run.run_id={options['job-name']}-{job_id}" in command
    processes = [
        start(
            project,
            command,
            tmp_path,
            [*tiny(still_preset, tiny_csv), "--set", f"run.run_dir={tmp_path / 'runs'}"],
            **env,
            SLURM_NTASKS=str(tasks),
            SLURM_PROCID=str(i),
            SLURM_LOCALID="0",
            SLURM_NODEID=str(i),
            SLURM_STEP_NODELIST="localhost",
            SLURM_STEP_NUM_NODES=str(tasks),
        )
        for i in range(tasks)
    ]
    finish_all(processes)
    run_dir = tmp_path / "runs" / f"{options['job-name']}-{job_id}"
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["launcher"]["launcher"] == "slurm" and runtime["replicas"] == tasks
    diff = max_diff(one_device["jax"], run_dir / "model.weights.h5")
    print(f"SLURM ({tasks} tasks) vs one device: {diff:.2e}")
    assert diff <= MATCH
