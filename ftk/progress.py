"""Progress bars for the long steps that are not Keras' `fit` (tqdm), and quiet mode.

A bar is drawn on a terminal only (tqdm's own check), never in quiet mode (`--quiet` or
`run.quiet = true`), and always when `FTK_PROGRESS=1` is set (for notebooks and log files).

Example:

>>> for path in progress(paths, desc="Checking images", unit="image"):
...     check(path)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every ftk progress bar off (`True`) or back on (`False`)."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    return _quiet


def keras_verbose() -> str | int:
    """The `verbose` argument for Keras' `fit`/`predict`: a bar on a terminal (or with
    `FTK_PROGRESS=1`), else one plain line per epoch (a log file gets no escape codes)."""
    if _quiet:
        return 2
    if os.environ.get("FTK_PROGRESS", "") == "1":
        return "auto"
    return "auto" if getattr(sys.stdout, "isatty", lambda: False)() else 2


def _disabled() -> bool | None:
    if _quiet:
        return True
    if os.environ.get("FTK_PROGRESS", "") == "1":
        return False
    return None  # tqdm: off when the stream is not a terminal


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", **kw):
    """A tqdm bar over `iterable` (or a manual one with `total`), labelled `ftk: <desc>`."""
    return tqdm(
        iterable,
        total=total,
        desc=f"ftk: {desc}" if desc else "ftk",
        disable=_disabled(),
        file=kw.pop("file", sys.stderr),
        mininterval=kw.pop("mininterval", 0.5),
        leave=kw.pop("leave", False),
        dynamic_ncols=True,
        **kw,
    )
