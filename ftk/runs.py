"""Run directories: creation, the resolved config written next to the artifacts, JSON helpers.

Standard library only.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from ftk.config import Config, load_config, to_toml
from ftk.errors import ConfigError

CONFIG_FILE = "config.toml"
RUN_FILE = "run.json"


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


def new_run_dir(config: Config) -> Path:
    """A fresh `<run.run_dir>/<timestamp>` directory (never an existing one)."""
    root = config.resolve_path(config.run.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{i}" for i in range(1, 100)]:
        path = root / f"{stamp}{suffix}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"Could not create a new run directory under {root}")


def save_run_config(run_dir: Path, config: Config, extra: dict) -> None:
    """The resolved config (`config.toml`) and run facts (`run.json`) next to the artifacts."""
    (run_dir / CONFIG_FILE).write_text(to_toml(config), encoding="utf-8")
    write_json(run_dir / RUN_FILE, {"base_dir": config.base_dir, **extra})


def load_run_config(run_dir: Path) -> Config:
    """The exact config a run used (relative paths still resolve where they did)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RUN_FILE).is_file():
        raise ConfigError(
            f"{run_dir} is not an ftk run directory (no {CONFIG_FILE} and {RUN_FILE})."
        )
    base_dir = read_json(run_dir / RUN_FILE)["base_dir"]
    return load_config(run_dir / CONFIG_FILE, base_dir=base_dir)
