"""TensorFlow's start-up chatter, kept out of a run's log unless `--debug`.

Importing TensorFlow and finding its devices prints, from C++ and straight to file descriptor
2, lines such as `I0000 ... oneDNN custom operations are on` (two to four times) and, on a
machine without a GPU, `E0000 ... failed call to cuInit: CUDA error`: an *error* line in every
CPU-only run. `TF_CPP_MIN_LOG_LEVEL` cannot hide the first ones (they are written before
TensorFlow reads it), so `quiet_startup()` sends fd 2 to a temporary file while TensorFlow
starts, then writes back every line that is not one of the known start-up notices. Nothing
else is lost: the lines are replayed when the block ends, even if it raises.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# Start-up notices of TensorFlow (and XLA) that say nothing about the run.
NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|\] oneDNN custom operations are on"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc.*has already been registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib"
)


def keep(line: str) -> bool:
    """False for a known start-up notice, True for anything else."""
    return not NOTICES.search(line)


@contextlib.contextmanager
def captured_stderr():
    """Within the block, fd 2 (C++ and subprocesses included) goes to a file; the list this
    yields holds its lines once the block ends, even if it raises."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", errors="replace").splitlines(True))


@contextlib.contextmanager
def quiet_startup(enabled: bool = True):
    """Within the block, fd 2 goes to a file; afterwards, all but the notices are written back."""
    if not enabled:
        yield
        return
    lines: list[str] = []
    try:
        with captured_stderr() as lines:
            yield
    finally:
        kept = [line for line in lines if keep(line)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_env(debug: bool = False) -> None:
    """Before TensorFlow is imported: its C++ log level, errors included unless `debug` (on a CPU
    machine TF logs `E0000 ... oneDNN supports DT_INT64 only ...` in every run; a real error
    still reaches the user as a Python exception). A level the user set is kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "3")


def start_tensorflow(debug: bool = False) -> None:
    """Import TensorFlow (if installed) and Keras, and let TF find its devices, quietly."""
    with quiet_startup(enabled=not debug):
        try:
            import tensorflow as tf
        except ImportError:  # a JAX or PyTorch install without TensorFlow
            tf = None
        if tf is not None:
            tf.config.list_physical_devices()
        import keras  # noqa: F401 (its backend starts here too)
