"""Run directories: a fresh one per run, the resolved config written next to the artifacts,
and reading that config back. Standard library only."""

from __future__ import annotations

import time
from pathlib import Path

from ftk.config import Config, load_config, to_toml
from ftk.errors import ConfigError
from ftk.files import read_json, write_json
from ftk.runs.files import RunFiles


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
    files = RunFiles(run_dir)
    files.config.write_text(to_toml(config), encoding="utf-8")
    write_json(files.run, {"base_dir": config.base_dir, **extra})


def load_run_config(run_dir: Path) -> Config:
    """The exact config a run used (relative paths still resolve where they did)."""
    files = RunFiles(run_dir)
    if not files.config.is_file() or not files.run.is_file():
        raise ConfigError(
            f"{run_dir} is not an ftk run directory (no {files.config.name} and {files.run.name})."
        )
    base_dir = read_json(files.run)["base_dir"]
    return load_config(files.config, base_dir=base_dir)
