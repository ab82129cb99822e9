"""runtime.distribution and runtime.precision: the strategies on CPU stand-ins (2 logical CPU
devices, 2 JAX host devices) train the same weights as one device; a killed worker of two,
restarted, continues its run; mixed precision trains and exports float32; keras#20585's
workaround is still needed.
(Choosing without devices, and the TPU path with fakes: tests/unit/runtime/test_distribute.py.)"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import h5_arrays, only_run_dir, tiny_config_toml

TIMEOUT = 300
MATCH = 1e-5
WEIGHTS = "model.weights.h5"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CONFIG")}
    return {**env, **extra}


def _write_config(directory: Path, preset, data, runtime: str = "", export: bool = False) -> Path:
    """The tiny project config with `[runtime]` lines (float32 unless they set a precision), 2
    epochs, no dropout anywhere (random dropout masks differ between devices), and no export
    unless `export`."""
    directory.mkdir(parents=True)
    if "precision" not in runtime:  # float32 everywhere: `auto` may pick bfloat16 on this CPU
        runtime += '\nprecision = "float32"'
    text = tiny_config_toml(preset, data, directory)
    text = text.replace('backend = "tensorflow"\n', f'backend = "tensorflow"\n{runtime}\n')
    text = text.replace('trainable = "all"', 'trainable = "all"\ndropout = 0.0')
    text = text.replace("epochs = 4", "epochs = 2")
    if not export:
        text = text.replace(f'export_dir = "{directory / "saved_models"}"', 'export_dir = ""')
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _start(config: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ftk.cli.main", "train", "--config", str(config), "--quiet"],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen) -> str:
    try:
        out, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        pytest.fail(f"timed out after {TIMEOUT} s:\n{out[-3000:]}")
    assert process.returncode == 0, out[-4000:]
    return out


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.fixture(scope="module")
def single_device(still_preset, tiny_csv, tmp_path_factory):
    """The TensorFlow reference: one device, float32."""
    config = _write_config(
        tmp_path_factory.mktemp("single") / "p", still_preset, tiny_csv, 'distribution = "none"'
    )
    _finish(_start(config))
    return only_run_dir(config.parent)


def test_mirrored_on_two_cpu_devices_matches_one_device(
    single_device, still_preset, tiny_csv, tmp_path
):
    config = _write_config(
        tmp_path / "p", still_preset, tiny_csv, 'distribution = "mirrored"\ncpu_devices = 2'
    )
    out = _finish(_start(config))
    run_dir = only_run_dir(config.parent)
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["distribution"] == "mirrored" and runtime["replicas"] == 2, out[-2000:]
    assert runtime["global_batch_size"] == 8
    assert _max_diff(h5_arrays(single_device / WEIGHTS), h5_arrays(run_dir / WEIGHTS)) <= MATCH


# Two TensorFlow workers (TF_CONFIG) and two JAX processes (Kubeflow's and SLURM's variables)
# against one device: tests/system/test_launch_files.py, which starts them from the generated
# launch files.


def test_a_killed_worker_restarted_continues_the_run(still_preset, tmp_path):
    """Two TF workers of a run named by `run.run_id` (as the launch files name it): one is
    killed mid-epoch; the other stops within seconds saying how to continue; both started again
    (as a TFJob restarts its pods) continue from the last finished epoch, none repeated or
    lost."""
    import csv
    import signal
    import time

    from helpers import make_rows, write_csv

    from ftk.tuning.distributed import free_port

    data = write_csv(tmp_path / "train.csv", make_rows(200))  # ~50 steps an epoch: time to kill
    config = _write_config(tmp_path / "p", still_preset, data, 'distribution = "multi_worker"')
    text = config.read_text().replace("epochs = 2", "epochs = 4")
    config.write_text(text.replace("[run]\n", '[run]\nrun_id = "job-1"\n'), encoding="utf-8")
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
    envs = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in range(2)
    ]
    run_dir = tmp_path / "p" / "runs" / "job-1"
    # Both workers' epoch-1 backups written: the kill lands in epoch 2, not in a backup save
    # (a worker killed while saving comes back to its previous backup: docs/limits.md).
    backups = [
        folder / "backup" / "0-finetune" / "training_metadata.json"
        for folder in (run_dir, tmp_path / "p" / "runs" / ".workers" / "job-1" / "1")
    ]
    first = [_start(config, **env) for env in envs]
    try:
        started = time.monotonic()
        while not all(b.exists() for b in backups) and time.monotonic() - started < TIMEOUT:
            assert first[0].poll() is None, first[0].communicate()[0][-3000:]
            time.sleep(0.1)
        first[1].send_signal(signal.SIGKILL)  # mid-epoch 2
        killed = time.monotonic()
        out, _ = first[0].communicate(timeout=120)
        waited = time.monotonic() - killed
    finally:
        for p in first:
            if p.poll() is None:
                p.kill()
    assert first[0].returncode == 2, out[-3000:]
    assert "Another process of this job stopped" in out and "run.run_id='job-1'" in out
    print(f"the chief stopped {waited:.1f} s after the worker was killed")

    time.sleep(2)  # an engine takes seconds to restart pods; the ports are the same
    again = [_start(config, **env) for env in envs]
    try:
        outs = [p.communicate(timeout=TIMEOUT)[0] for p in again]
        assert [p.returncode for p in again] == [0, 0], "\n---\n".join(o[-3000:] for o in outs)
    finally:
        for p in again:
            if p.poll() is None:
                p.kill()
    with (run_dir / "history.csv").open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3], epochs  # none repeated, none lost
    assert (run_dir / "model.weights.h5").is_file() and (run_dir / "summary.json").is_file()
    assert sorted(p.name for p in (tmp_path / "p" / "runs").iterdir()) == [".workers", "job-1"]


def _jax_config(directory: Path, preset, data, runtime: str) -> Path:
    config = _write_config(directory, preset, data, runtime)
    config.write_text(config.read_text().replace('"tensorflow"', '"jax"'), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def jax_single_device(still_preset, tiny_csv, tmp_path_factory):
    """The JAX reference: one device, float32."""
    directory = tmp_path_factory.mktemp("jax_single") / "p"
    config = _jax_config(directory, still_preset, tiny_csv, 'distribution = "none"')
    _finish(_start(config))
    return only_run_dir(config.parent)


def test_jax_data_parallel_on_two_host_devices_matches_one_device(
    jax_single_device, still_preset, tiny_csv, tmp_path
):
    two = _jax_config(
        tmp_path / "two", still_preset, tiny_csv, 'distribution = "data_parallel"\ncpu_devices = 2'
    )
    _finish(_start(two))
    runtime = json.loads((only_run_dir(two.parent) / "run.json").read_text())["runtime"]
    assert runtime["backend"] == "jax" and runtime["replicas"] == 2
    diff = _max_diff(
        h5_arrays(jax_single_device / WEIGHTS), h5_arrays(only_run_dir(two.parent) / WEIGHTS)
    )
    assert diff <= MATCH


def test_mixed_precision_trains_in_16_bits_and_exports_float32(
    single_device, still_preset, tiny_csv, tmp_path
):
    config = _write_config(
        tmp_path / "p", still_preset, tiny_csv, 'precision = "mixed_bfloat16"', export=True
    )
    _finish(_start(config))
    run_dir = only_run_dir(config.parent)
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["precision"] == "mixed_bfloat16"
    # bfloat16 arithmetic moved the weights away from the float32 run's ...
    assert _max_diff(h5_arrays(single_device / WEIGHTS), h5_arrays(run_dir / WEIGHTS)) > 1e-4
    # ... and the export is float32 (TF Serving's JSON and onnxruntime refuse bfloat16).
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-5
    assert summary["export"]["onnx_max_abs_diff"] <= 1e-5
    import tensorflow as tf

    signature = tf.saved_model.load(summary["export"]["version_dir"]).signatures["serving_default"]
    assert signature.structured_outputs["probabilities"].dtype == tf.float32


def test_keras_20585_workaround_is_still_needed(tmp_path):
    """Plain Keras fails MirroredStrategy fit with a bool input (keras-team/keras#20585);
    ftk's patch makes it work. When this test fails on the first assertion, upstream fixed it:
    drop `ftk/runtime/keras_fixes.py` (and this test)."""
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        devices = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, devices)
        import keras, numpy as np
        if sys.argv[1] == "patched":
            from ftk.runtime.keras_fixes import patch_distributed_fit
            assert patch_distributed_fit()
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        x = np.ones((8, 4), "float32"); mask = np.arange(8) % 2 == 0; y = np.zeros(8, "int32")
        ds = tf.data.Dataset.from_tensor_slices(({"x": x, "mask": mask}, y))
        ds = ds.batch(4)
        with strategy.scope():
            inputs = {"x": keras.Input((4,), name="x")}
            inputs["mask"] = keras.Input((), name="mask", dtype="bool")
            out = keras.layers.Dense(2)(inputs["x"]) * keras.ops.expand_dims(
                keras.ops.cast(inputs["mask"], "float32"), -1)
            model = keras.Model(inputs, out)
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(ds, epochs=1, verbose=0)
        print("FIT OK")
        """
    )
    path = tmp_path / "fit.py"
    path.write_text(script, encoding="utf-8")

    def fit(mode):
        return subprocess.run(
            [sys.executable, str(path), mode],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    import keras

    from ftk.runtime.keras_fixes import needs_patch

    upstream = fit("upstream")
    assert upstream.returncode != 0 and "FIT OK" not in upstream.stdout, (
        f"Keras {keras.__version__} fits a bool input under MirroredStrategy: "
        "keras-team/keras#20585 looks fixed upstream; remove ftk/runtime/keras_fixes.py."
    )
    assert "Attempt to convert a value" in upstream.stderr or "bool" in upstream.stderr
    assert needs_patch()
    patched = fit("patched")
    assert patched.returncode == 0 and "FIT OK" in patched.stdout, patched.stderr[-3000:]


# --- choosing, without devices ---------------------------------------------------------
