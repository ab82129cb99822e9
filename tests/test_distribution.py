"""runtime.distribution and runtime.precision: the strategies on CPU stand-ins (2 logical CPU
devices, 2 local workers on 127.0.0.1, 2 JAX host devices) train the same weights as one
device; mixed precision trains and exports float32; the TPU path runs with fakes (no cluster
resolver, no metadata server); keras#20585's workaround is still needed."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config_toml

from ftk.config import Config, RuntimeConfig, load_config
from ftk.errors import ConfigError
from ftk.runtime.distribute import (
    Devices,
    choose,
    choose_precision,
    cluster_workers,
    scaled,
    tpu_present,
)

TIMEOUT = 300
MATCH = 1e-5


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CONFIG")}
    return {**env, **extra}


def _write_config(directory: Path, preset, data, runtime: str = "", export: bool = False) -> Path:
    """The tiny project config with `[runtime]` lines, 2 epochs, no dropout anywhere (random
    dropout masks differ between devices), and no export unless `export`."""
    directory.mkdir(parents=True)
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


def _run_dir(config: Path) -> Path:
    (run_dir,) = [p for p in (config.parent / "runs").iterdir() if not p.name.startswith(".")]
    return run_dir


def _weights(run_dir: Path) -> dict:
    import h5py

    out = {}
    with h5py.File(run_dir / "model.weights.h5") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer"):
                out[name] = np.asarray(obj)

        f.visititems(visit)
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
    return _run_dir(config)


def test_mirrored_on_two_cpu_devices_matches_one_device(
    single_device, still_preset, tiny_csv, tmp_path
):
    config = _write_config(
        tmp_path / "p", still_preset, tiny_csv, 'distribution = "mirrored"\ncpu_devices = 2'
    )
    out = _finish(_start(config))
    run_dir = _run_dir(config)
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["distribution"] == "mirrored" and runtime["replicas"] == 2, out[-2000:]
    assert runtime["global_batch_size"] == 8
    assert _max_diff(_weights(single_device), _weights(run_dir)) <= MATCH


def test_multi_worker_two_local_workers_match_one_device(
    single_device, still_preset, tiny_csv, tmp_path
):
    """Two processes on 127.0.0.1 (TF_CONFIG); the chief exports and verifies, the worker trains
    into .workers/1 and waits for the chief; the weights match one device."""
    from ftk.tuning.distributed import free_port

    config = _write_config(
        tmp_path / "p", still_preset, tiny_csv, 'distribution = "multi_worker"', export=True
    )
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = [
        _start(
            config,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]
    try:
        chief, worker = (_finish(p) for p in processes)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert "worker 1: training done" in worker
    assert "crashed" not in chief + worker  # the worker waited for the chief
    run_dir = _run_dir(config)
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["distribution"] == "multi_worker" and runtime["replicas"] == 2
    assert (config.parent / "runs" / ".workers" / "1" / "history.csv").is_file()
    assert not (config.parent / "runs" / ".workers" / "1" / "model.weights.h5").exists()
    diff = _max_diff(_weights(single_device), _weights(run_dir))
    print(f"multi-worker vs one device: max |diff| {diff:.2e}")
    assert diff <= MATCH
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["savedmodel_max_abs_diff"] <= 1e-5 and export["onnx_max_abs_diff"] <= 1e-5


def test_jax_data_parallel_on_two_host_devices_matches_one_device(still_preset, tiny_csv, tmp_path):
    def jax_run(name, runtime):
        config = _write_config(tmp_path / name, still_preset, tiny_csv, runtime)
        config.write_text(config.read_text().replace('"tensorflow"', '"jax"'), encoding="utf-8")
        return config, _start(config)

    (one, first), (two, second) = (
        jax_run("one", 'distribution = "none"'),
        jax_run("two", 'distribution = "data_parallel"\ncpu_devices = 2'),
    )
    _finish(first), _finish(second)
    runtime = json.loads((_run_dir(two) / "run.json").read_text())["runtime"]
    assert runtime["backend"] == "jax" and runtime["replicas"] == 2
    assert _max_diff(_weights(_run_dir(one)), _weights(_run_dir(two))) <= MATCH


def test_mixed_precision_trains_in_16_bits_and_exports_float32(
    single_device, still_preset, tiny_csv, tmp_path
):
    config = _write_config(
        tmp_path / "p", still_preset, tiny_csv, 'precision = "mixed_bfloat16"', export=True
    )
    _finish(_start(config))
    run_dir = _run_dir(config)
    runtime = json.loads((run_dir / "run.json").read_text())["runtime"]
    assert runtime["precision"] == "mixed_bfloat16"
    # bfloat16 arithmetic moved the weights away from the float32 run's ...
    assert _max_diff(_weights(single_device), _weights(run_dir)) > 1e-4
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


@pytest.mark.parametrize(
    "requested, backend, devices, expected",
    [
        ("auto", "tensorflow", Devices(), "none"),
        ("auto", "tensorflow", Devices(gpus=1), "none"),
        ("auto", "tensorflow", Devices(gpus=2), "mirrored"),
        ("auto", "tensorflow", Devices(gpus=2, workers=3), "multi_worker"),
        ("auto", "tensorflow", Devices(tpu=True, gpus=0), "tpu"),
        ("auto", "jax", Devices(gpus=4), "data_parallel"),
        ("auto", "jax", Devices(workers=2), "data_parallel"),
        ("auto", "jax", Devices(tpu=True), "tpu"),
        ("auto", "torch", Devices(gpus=8), "none"),
        ("mirrored", "tensorflow", Devices(), "mirrored"),
        ("none", "tensorflow", Devices(gpus=8), "none"),
    ],
)
def test_auto_picks_the_distribution_and_says_why(requested, backend, devices, expected):
    kind, reason = choose(requested, backend, devices)
    assert kind == expected and reason


@pytest.mark.parametrize(
    "requested, kind, devices, expected",
    [
        ("auto", "none", Devices(), "float32"),
        ("auto", "tpu", Devices(tpu=True), "mixed_bfloat16"),
        ("auto", "mirrored", Devices(gpus=2, gpu_capability=(9, 0)), "mixed_bfloat16"),
        ("auto", "none", Devices(gpus=1, gpu_capability=(7, 5)), "mixed_float16"),
        ("auto", "none", Devices(gpus=1, gpu_capability=(6, 1)), "float32"),
        ("float32", "tpu", Devices(tpu=True), "float32"),
    ],
)
def test_auto_precision(requested, kind, devices, expected):
    assert choose_precision(requested, kind, devices)[0] == expected


def _config(**runtime) -> Config:
    import dataclasses

    config = Config()
    return dataclasses.replace(config, runtime=RuntimeConfig(**runtime))


def test_global_batch_and_learning_rate_scaling():
    config = _config()
    same, batch, factor = scaled(config, 4)
    assert same is config and batch == config.train.batch_size and factor == 1.0
    grown, batch, factor = scaled(_config(per_replica_batch=True, scale_learning_rate="linear"), 4)
    assert batch == 4 * config.train.batch_size == grown.train.batch_size and factor == 4
    assert grown.train.learning_rate == pytest.approx(4 * config.train.learning_rate)
    assert grown.recipe.head_learning_rate == pytest.approx(4 * config.recipe.head_learning_rate)
    _, _, factor = scaled(_config(per_replica_batch=True, scale_learning_rate="sqrt"), 4)
    assert factor == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="split evenly over 3 replicas"):
        scaled(config, 3)  # 16 examples over 3 replicas


@pytest.mark.parametrize(
    "backend, distribution",
    [
        ("torch", "mirrored"),
        ("torch", "data_parallel"),
        ("jax", "mirrored"),
        ("tensorflow", "data_parallel"),
    ],
)
def test_a_distribution_the_backend_cannot_run_is_refused(backend, distribution, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[runtime]\nbackend = "{backend}"\ndistribution = "{distribution}"\n')
    with pytest.raises(ConfigError, match=f"runtime.distribution.*{backend}"):
        load_config(path)


def test_tpu_and_cluster_detection_read_only_the_environment(tmp_path):
    assert not tpu_present({}, globs=())
    assert tpu_present({"TPU_NAME": "my-tpu"}, globs=())
    (tmp_path / "accel0").touch()
    assert tpu_present({}, globs=(str(tmp_path / "accel[0-9]*"),))
    tf_config = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {}}
    assert cluster_workers({"TF_CONFIG": json.dumps(tf_config)}) == 3
    assert cluster_workers({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}) == 2
    assert cluster_workers({}) == 1
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        cluster_workers({"TF_CONFIG": "{nope"})


def test_tpu_path_runs_without_any_cluster_resolver(monkeypatch):
    """`auto` on a TPU machine: resolver -> initialise the TPU system -> TPUStrategy, bfloat16,
    the replicas from the strategy. Every TPU call is a fake: nothing contacts a metadata
    server (the autouse fixture fails the test on any network access)."""
    import keras
    import tensorflow as tf

    import ftk.runtime.distribute as distribute
    from ftk.runtime import keras_fixes

    calls = []

    class FakeStrategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver):
            calls.append(("strategy", resolver))

        def scope(self):
            import contextlib

            return contextlib.nullcontext()

    monkeypatch.setattr(
        distribute, "tpu_cluster_resolver", lambda name: calls.append(("resolver", name)) or "R"
    )
    monkeypatch.setattr(
        tf.config, "experimental_connect_to_cluster", lambda r: calls.append(("connect", r))
    )
    monkeypatch.setattr(keras_fixes, "patch_distributed_fit", lambda: calls.append(("patch",)))
    monkeypatch.setattr(
        tf.tpu.experimental, "initialize_tpu_system", lambda r: calls.append(("init", r))
    )
    monkeypatch.setattr(tf.distribute, "TPUStrategy", FakeStrategy)
    monkeypatch.setattr(distribute, "tpu_present", lambda environ=None: True)

    config = load_config(None, ["runtime.tpu=my-tpu", "train.batch_size=64"])
    runtime, scaled_config = distribute.setup_runtime(config, environ={})
    assert [c[0] for c in calls] == ["resolver", "connect", "init", "strategy", "patch"]
    assert calls[0] == ("resolver", "my-tpu") and calls[3] == ("strategy", "R")
    assert runtime.distribution == "tpu" and runtime.replicas == 8
    assert runtime.precision == "mixed_bfloat16"
    assert scaled_config.train.batch_size == 64
    with runtime.scope():
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_multi_worker_without_tf_config_says_what_to_set():
    from ftk.runtime.distribute import setup_runtime

    config = load_config(None, ["runtime.distribution=multi_worker"])
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        setup_runtime(config, environ={})
