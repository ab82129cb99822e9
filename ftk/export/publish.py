"""Versioned, atomic publishing into TF Serving's `<model_name>/<version>/` layout.

An export is written into a hidden staging directory next to the versions (TF Serving only
loads directories named by integers), verified there, then renamed into the next free
version number: a version directory appears complete or not at all, and an existing version
is never overwritten.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ftk.errors import ExportError

logger = logging.getLogger("ftk")


def versions(model_root: Path) -> list[int]:
    """Published version numbers under `model_root`, ascending."""
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def publish(
    model_root: Path,
    write: Callable[[Path], None],
    verify: Callable[[Path], None],
) -> Path:
    """Stage, `write`, `verify`, then rename into the next version. Returns the version path.

    If `write` or `verify` raises, nothing new is visible to TF Serving; the staging directory
    is kept as `.failed-<time>` for inspection and the error says where.
    """
    model_root.mkdir(parents=True, exist_ok=True)
    staging = model_root / f".staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        write(staging)
        verify(staging)
    except BaseException as e:
        failed = model_root / f".failed-{time.strftime('%Y%m%d-%H%M%S')}-{staging.name[9:]}"
        staging.rename(failed)
        if isinstance(e, Exception) and not isinstance(e, ExportError):
            raise ExportError(f"Export failed ({e}); partial files kept in {failed}") from e
        if isinstance(e, ExportError):
            raise type(e)(f"{e} Partial files kept in {failed}") from e
        raise
    for _ in range(100):
        target = model_root / str((versions(model_root) or [0])[-1] + 1)
        try:
            # Atomic. Fails if `target` appeared meanwhile with content (another export won the
            # race); POSIX rename only ever replaces an *empty* directory, never a version.
            os.rename(staging, target)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise
        logger.info("Published %s", target)
        return target
    raise ExportError(f"Could not find a free version number under {model_root}")
