"""`ftk.runtime.distribute` without devices: what `auto` chooses for distribution and precision
and the reason it gives, batch and learning-rate scaling, backend refusals, TPU and cluster
detection from the environment, and the TPU path with fakes. (The strategies training on CPU
stand-ins: tests/system/test_distribution.py.)"""

import pytest

from ftk.config import Config, RuntimeConfig, load_config
from ftk.errors import ConfigError
from ftk.runtime.cpu import CpuInfo
from ftk.runtime.distribute import (
    Devices,
    choose,
    choose_precision,
    scaled,
    tpu_present,
)

TORCH_ONE_DEVICE = (
    "the torch backend trains on one device in ftk (8 GPUs found; DistributedDataParallel is not "
    "wired in)"
)


@pytest.mark.parametrize(
    "requested, backend, devices, expected, why",
    [
        ("auto", "tensorflow", Devices(), "none", "no GPUs found"),
        ("auto", "tensorflow", Devices(gpus=1), "none", "1 GPU found"),
        ("auto", "tensorflow", Devices(gpus=2), "mirrored", "2 GPUs found"),
        (
            "auto",
            "tensorflow",
            Devices(gpus=2, workers=3),
            "multi_worker",
            "TF_CONFIG lists 3 workers",
        ),
        ("auto", "tensorflow", Devices(tpu=True, gpus=0), "tpu", "a TPU was found"),
        ("auto", "jax", Devices(gpus=4), "data_parallel", "4 GPUs found"),
        ("auto", "jax", Devices(workers=2), "data_parallel", "2 JAX processes"),
        ("auto", "jax", Devices(tpu=True), "tpu", "a TPU was found"),
        ("auto", "torch", Devices(gpus=8), "none", TORCH_ONE_DEVICE),
        ("mirrored", "tensorflow", Devices(), "mirrored", "runtime.distribution = 'mirrored'"),
        ("none", "tensorflow", Devices(gpus=8), "none", "runtime.distribution = 'none'"),
    ],
)
def test_auto_picks_the_distribution_and_says_why(requested, backend, devices, expected, why):
    assert choose(requested, backend, devices) == (expected, why)


@pytest.mark.parametrize(
    "requested, kind, devices, expected, why",
    [
        ("auto", "tpu", Devices(tpu=True), "mixed_bfloat16", "TPUs compute in bfloat16"),
        (
            "auto",
            "mirrored",
            Devices(gpus=2, gpu_capability=(9, 0)),
            "mixed_bfloat16",
            "the GPU (compute capability 9.0) has bfloat16",
        ),
        (
            "auto",
            "none",
            Devices(gpus=1, gpu_capability=(7, 5)),
            "mixed_float16",
            "the GPU (compute capability 7.5) has float16",
        ),
        (
            "auto",
            "none",
            Devices(gpus=1, gpu_capability=(6, 1)),
            "float32",
            "the GPU computes no faster in 16 bits (compute capability < 7.0)",
        ),
        ("float32", "tpu", Devices(tpu=True), "float32", "runtime.precision = 'float32'"),
        ("auto", "none", Devices(gpus=1), "float32", "the GPU's compute capability is unknown"),
    ],
)
def test_auto_precision_and_why(requested, kind, devices, expected, why):
    assert choose_precision(requested, kind, devices, cpu=AMX_CPU) == (expected, why)


AMX_CPU = CpuInfo("Intel Xeon", 2, ("avx512f", "avx512_bf16", "amx_tile", "amx_bf16"))


def test_auto_precision_without_accelerators_asks_the_cpu():
    precision, why = choose_precision(
        "auto", "none", Devices(), "tensorflow", "text_encoder", AMX_CPU
    )
    assert precision == "mixed_bfloat16"
    assert "AMX-BF16" in why and "1.49x" in why
    plain = CpuInfo("Old Xeon", 2, ("avx2",))
    assert choose_precision("auto", "none", Devices(), "tensorflow", "text_encoder", plain)[0] == (
        "float32"
    )


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
    # (the launchers' variables: tests/unit/runtime/test_cluster.py)


def test_tpu_path_runs_without_any_cluster_resolver(monkeypatch):
    """`auto` on a TPU machine: resolver -> initialise the TPU system -> TPUStrategy, bfloat16,
    the replicas from the strategy. Every TPU call is a fake: nothing contacts a metadata
    server (the autouse fixture fails the test on any network access)."""
    import keras
    import tensorflow as tf

    import ftk.runtime.distribute as distribute
    from ftk.runtime import keras_fixes, tf_strategy

    calls = []

    class FakeStrategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver):
            calls.append(("strategy", resolver))

        def scope(self):
            import contextlib

            return contextlib.nullcontext()

    monkeypatch.setattr(
        tf_strategy, "tpu_cluster_resolver", lambda name: calls.append(("resolver", name)) or "R"
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
