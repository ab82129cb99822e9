"""Versioned, atomic publishing into TF Serving's `<model_name>/<version>/` layout.

An export is written into a staging directory *outside* the export tree (the run directory),
verified there, then renamed into the next free version number: a version directory appears
complete or not at all, an existing version is never overwritten, and an export that fails or
is killed half-way leaves `saved_models/` exactly as it was. When staging and the export tree
are on different filesystems, the verified files are copied into a hidden `.staging-*`
directory next to the versions (TF Serving only loads integer-named directories) and renamed
from there.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ftk.errors import ExportError
from ftk.runtime.parent import check_parent

logger = logging.getLogger("ftk")

STAGING = "export-staging-"  # an export being written and verified (`<pid>-<id>`)
FAILED = "export-failed-"  # an export that failed, kept until the next one


def check_writable(model_root: Path, key: str = "export.export_dir") -> None:
    """Fail now, naming `key`, if versions cannot be published under `model_root`: its folders
    are created (as publishing would), then a probe file is written, renamed and removed,
    the three things publishing does. A run checks this before its first batch, so a wrong
    destination costs seconds, not a whole training run."""
    model_root = Path(model_root)
    missing = [p for p in (model_root, *model_root.parents) if not p.exists()]
    probe = model_root / f".ftk-probe-{uuid.uuid4().hex[:12]}"
    try:
        model_root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.rename(probe.with_suffix(".renamed"))
        probe.with_suffix(".renamed").unlink()
    except OSError as e:
        for leftover in (probe, probe.with_suffix(".renamed")):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass
        raise ExportError(
            f"`{key}` cannot be written: {model_root} ({e.strerror or e}). Point {key} at a "
            'writable folder (or set it to "" to skip exporting; `ftk export RUN_DIR` '
            "exports a finished run later)."
        ) from None
    finally:
        for folder in missing:  # deepest first: leave the tree as it was found
            try:
                folder.rmdir()
            except OSError:
                break


def versions(model_root: Path) -> list[int]:
    """Published version numbers under `model_root`, ascending."""
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def publish(
    model_root: Path,
    write: Callable[[Path], None],
    verify: Callable[[Path], None],
    staging_root: Path,
) -> Path:
    """Stage, `write`, `verify`, then rename into the next version. Returns the version path.

    Staging happens under `staging_root` (the run directory: outside the export tree, on the
    same filesystem in a normal project), in `export-staging-<pid>-<id>`. If `write` or
    `verify` raises, nothing changes under `model_root`; the staged files are kept as
    `<staging_root>/export-failed-<time>-<id>` for inspection and the error says where. The
    next export removes what earlier ones left: failed exports, and the staging folders of
    exports whose process was killed.
    """
    staging_root = Path(staging_root)
    staging_root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(staging_root)
    staging = staging_root / f"{STAGING}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        write(staging)
        verify(staging)
        check_parent()  # a subprocess whose training process was killed publishes nothing
    except BaseException as e:
        failed = staging_root / f"{FAILED}{time.strftime('%Y%m%d-%H%M%S')}-{staging.name[-12:]}"
        staging.rename(failed)
        if isinstance(e, Exception) and not isinstance(e, ExportError):
            raise ExportError(f"Export failed ({e}); partial files kept in {failed}") from e
        if isinstance(e, ExportError):
            raise type(e)(f"{e} Partial files kept in {failed}") from e
        raise
    model_root.mkdir(parents=True, exist_ok=True)
    return _rename_into_next_version(staging, model_root)


def _owner_alive(staging: Path) -> bool:
    """Whether another process that made `export-staging-<pid>-<id>` still runs (its export
    is in progress)."""
    parts = staging.name[len(STAGING) :].split("-")
    if len(parts) != 2 or not parts[0].isdigit():
        return False  # an older name, without the pid: its export is long over
    pid = int(parts[0])
    if pid == os.getpid():  # this process publishes one export at a time
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(staging_root: Path) -> list[str]:
    """Remove earlier failed exports and staging folders whose export process is gone."""
    removed, size = [], 0
    for path in sorted(Path(staging_root).iterdir()):
        if not path.is_dir():
            continue
        stale = path.name.startswith(FAILED) or (
            path.name.startswith(STAGING) and not _owner_alive(path)
        )
        if stale:
            size += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    if removed:
        logger.info(
            "Removed %d folder(s) left by earlier exports (%.1f MB): %s",
            len(removed),
            size / 1e6,
            ", ".join(removed),
        )
    return removed


def _rename_into_next_version(staging: Path, model_root: Path) -> Path:
    for _ in range(100):
        target = model_root / str((versions(model_root) or [0])[-1] + 1)
        try:
            # Atomic. Fails if `target` appeared meanwhile with content (another export won the
            # race); POSIX rename only ever replaces an *empty* directory, never a version.
            os.rename(staging, target)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            if e.errno == errno.EXDEV:  # another filesystem: copy next to the versions first
                local = model_root / f".staging-{staging.name[len(STAGING) :]}"
                shutil.copytree(staging, local)
                shutil.rmtree(staging)
                return _rename_into_next_version(local, model_root)
            raise
        logger.info("Published %s", target)
        return target
    raise ExportError(f"Could not find a free version number under {model_root}")
