"""`runtime.distribution = "model_parallel"` (JAX): the weights split over devices with
`keras.distribution.ModelParallel` and the `LayoutMap` that keras-hub's backbone ships
(`get_layout_map`: Llama and Llama 3, Gemma, Qwen and Qwen-MoE in keras-hub 0.32).

The devices form a 2-D mesh `(batch, model)`: `runtime.model_devices` devices on the `model`
axis share one copy of the weights, the rest repeat it along `batch` (data parallelism), so
`model_devices = 0` (every device) is pure model parallelism and 2 of 4 devices is 2 x 2.
keras-hub's layout maps also split some weights along `batch`, so every device holds a part.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from ftk.errors import ConfigError

logger = logging.getLogger("ftk")
AXES = ("batch", "model")


def device_mesh(model_devices: int):
    """The `(batch, model)` mesh over every JAX device."""
    import jax
    import keras

    devices = jax.devices()
    model = model_devices or len(devices)
    if len(devices) % model:
        raise ConfigError(
            f"`runtime.model_devices` must divide the {len(devices)} devices found. Received: "
            f"runtime.model_devices={model_devices}."
        )
    shape = (len(devices) // model, model)
    return keras.distribution.DeviceMesh(shape, AXES, devices)


def backbone_class(location: str):
    """The keras-hub backbone class a preset builds, found the way `Backbone.from_preset`
    finds it (its preset loader), without building it."""
    from keras_hub.src.utils.preset_utils import get_preset_loader

    return get_preset_loader(location).check_backbone_class()


def distribution(location: str, mesh):
    """`ModelParallel` with the backbone's own layout map on `mesh`."""
    import keras

    cls = backbone_class(location)
    if not hasattr(cls, "get_layout_map"):
        raise ConfigError(
            f'runtime.distribution="model_parallel" splits a backbone with its keras-hub '
            f"layout map, and {cls.__name__} has none (keras-hub 0.32: Llama, Llama 3, Gemma, "
            'Qwen, Qwen-MoE). Use runtime.distribution="data_parallel" for this model.'
        )
    layout_map = cls.get_layout_map(
        mesh, model_parallel_dim_name=AXES[1], data_parallel_dim_name=AXES[0]
    )
    logger.info(
        "Model parallel: mesh %s over %d devices (%s axis %d, %s axis %d), %s's layout map",
        tuple(mesh.shape),
        len(mesh.devices.flatten()),
        AXES[0],
        mesh.shape[0],
        AXES[1],
        mesh.shape[1],
        cls.__name__,
    )
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name=AXES[0], auto_shard_dataset=False
    )


def explain_indivisible(error: BaseException, mesh) -> ConfigError | None:
    """The error to show when a weight cannot be split over the mesh's `model` axis (JAX wants
    every split dimension divisible: SmolLM2-135M's 9 attention heads do not split in 2)."""
    import re

    text = str(error)
    found = re.search(r"dimension size is (\d+) \(full shape: (\([^)]*\))", text)
    if "evenly divide" not in text or not found:
        return None
    size, shape = int(found.group(1)), found.group(2)
    fits = [d for d in range(2, min(size, 64) + 1) if size % d == 0]
    return ConfigError(
        f"A weight of shape {shape} cannot be split over the mesh {tuple(mesh.shape)} "
        f"({AXES[0]} x {AXES[1]}): one of its dimensions is {size}. `runtime.model_devices` "
        f"must divide it ({', '.join(map(str, fits)) or 'none fits'}), and the device count "
        f"must be a multiple of it. Received: a model axis of {mesh.shape[1]} on "
        f"{mesh.devices.size} devices (runtime.model_devices, 0 = every device)."
    )


def bytes_per_device(model) -> dict[str, int]:
    """How many bytes of `model`'s weights each device holds (its shards of every variable)."""
    totals: dict[str, int] = defaultdict(int)
    for variable in model.weights:
        for shard in variable.value.addressable_shards:
            totals[str(shard.device)] += shard.data.nbytes
    return dict(sorted(totals.items()))


def log_placement(model) -> dict:
    """Log and return where the weights are: bytes per device and in all."""
    per_device = bytes_per_device(model)
    total = sum(int(w.value.nbytes) for w in model.weights)
    logger.info(
        "Weights: %.2f MB in all; per device: %s",
        total / 1e6,
        ", ".join(f"{d} {b / 1e6:.2f} MB" for d, b in per_device.items()),
    )
    return {"weights_bytes": total, "weights_bytes_per_device": per_device}
