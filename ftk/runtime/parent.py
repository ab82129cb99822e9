"""A child process that dies with its parent, and never publishes for a parent that is gone.

The JAX and PyTorch backends export in a TensorFlow subprocess (`python -m ftk.export`). If the
training process is killed (`kill -9`, an OOM kill, a closed terminal) while that child runs,
the child must not live on and publish a version for a run that has no report or summary.

- The parent passes its pid in `FTK_PARENT_PID` (`child_env`).
- The child calls `die_with_parent()` first thing: on Linux the kernel sends it SIGKILL when the
  parent dies (`prctl(PR_SET_PDEATHSIG)`); elsewhere a daemon thread polls the parent. If the
  parent is already gone when it starts, it exits at once.
- Just before a version is published, `check_parent()` raises if the parent is gone (the last
  guard, for platforms where neither of the above could be set up).

Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_PID = "FTK_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's environment) with this process named as the parent."""
    return {**(os.environ if env is None else env), PARENT_PID: str(os.getpid())}


def _expected_parent() -> int | None:
    value = os.environ.get(PARENT_PID, "")
    return int(value) if value.isdigit() else None


def parent_gone() -> bool:
    """True if this process was started by an ftk parent that has since died."""
    expected = _expected_parent()
    return expected is not None and os.getppid() != expected


def _set_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(interval: float) -> None:
    while not parent_gone():
        time.sleep(interval)
    os._exit(1)


def die_with_parent(interval: float = 1.0) -> None:
    """Tie this process's life to the ftk parent that started it (no-op without one)."""
    if _expected_parent() is None:
        return
    if not _set_death_signal():
        threading.Thread(target=_watch, args=(interval,), daemon=True).start()
    if parent_gone():  # died before the signal was set up
        os._exit(1)


def check_parent(what: str = "this export") -> None:
    """Raise if the parent that asked for `what` is gone (the result would belong to no run)."""
    if parent_gone():
        from ftk.errors import ExportError

        raise ExportError(f"The training process that started {what} is gone; not publishing.")
