"""The per-user cache of converted presets: where it is, when a finished conversion can be
reused, and how a new one is put in place (written beside its target, then renamed, so that a
half-written conversion is never reused)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ftk.presets.files import file_sha256

RECORD = "ftk_conversion.json"  # beside the weights: where they came from, their checksum


def cache_root() -> Path:
    return Path(os.environ.get("FTK_CACHE", Path.home() / ".cache" / "ftk")).expanduser()


def finished(output: Path) -> bool:
    """Whether `output` holds a finished conversion whose weights still match its record."""
    record = output / RECORD
    if not record.is_file():
        return False
    done = json.loads(record.read_text(encoding="utf-8"))
    weights = output / "model.safetensors"
    return weights.is_file() and done.get("weights_sha256") == file_sha256(weights)


def staging_dir(output: Path) -> Path:
    """An empty folder beside `output` to convert into."""
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def publish(tmp: Path, output: Path, record: dict) -> Path:
    """Write `record` (plus the weights' checksum) into `tmp` and move it to `output`,
    replacing an unfinished or stale conversion of our own cache."""
    record = {**record, "weights_sha256": file_sha256(tmp / "model.safetensors")}
    (tmp / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
    if output.exists():
        stale = output.with_name(f".{output.name}.stale-{os.getpid()}")
        output.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp.rename(output)
    return output
