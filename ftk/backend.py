"""Choose the Keras backend before keras is imported. Standard library only."""

from __future__ import annotations

import os
import sys

from ftk.config import BACKENDS
from ftk.errors import ConfigError


def set_backend(backend: str) -> None:
    """Select `backend` for Keras. Must run before the first `import keras`.

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
    # TensorFlow's C++ start-up chatter hides the progress bar; keep warnings and errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend != "tensorflow":
        # TensorFlow is still used for tf.data and tokenisation: keep it off any GPU.
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
