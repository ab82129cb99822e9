"""Choose the Keras backend before keras is imported. Standard library only."""

from __future__ import annotations

import os
import sys

from ftk.config import BACKENDS
from ftk.errors import ConfigError


def set_backend(backend: str, cpu_devices: int = 0) -> None:
    """Select `backend` for Keras. Must run before the first `import keras`.

    `cpu_devices` (`runtime.cpu_devices`) > 0 makes JAX show that many host devices (XLA's
    `--xla_force_host_platform_device_count`); TensorFlow's are set in `ftk.runtime.tf_strategy`.

    Example:

    >>> set_backend("jax")  # then: import keras; keras.backend.backend() == "jax"
    """
    if backend not in BACKENDS:
        raise ConfigError(
            f"`runtime.backend` must be one of {', '.join(BACKENDS)}. "
            f"Received: runtime.backend={backend!r}"
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ConfigError(
                f"Keras was already imported with backend {current!r}, so "
                f"runtime.backend={backend!r} cannot take effect. Set the backend before "
                "importing keras (or run in a fresh process)."
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax" and cpu_devices and "jax" not in sys.modules:
        flag = "--xla_force_host_platform_device_count"
        kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(flag)]
        os.environ["XLA_FLAGS"] = " ".join([*kept, f"{flag}={cpu_devices}"])
    # TensorFlow's C++ start-up chatter hides the progress bar; keep warnings and errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend != "tensorflow":
        # TensorFlow is still used for tf.data and tokenisation: keep it off any GPU.
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
