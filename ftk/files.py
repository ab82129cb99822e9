"""Small file helpers every part of ftk uses: atomic writes and JSON. Standard library only,
and imports nothing from ftk, so any module may use it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_atomic(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write `data` (str as UTF-8) via a temporary file in the same folder and a rename, so a
    crash never leaves half a file and concurrent writers never share a temporary file.
    `mode` sets the file's permissions (default: as any new file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("xb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, payload) -> None:
    """Write JSON atomically (`write_atomic`)."""
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
