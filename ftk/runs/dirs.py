"""Run directories: a fresh one per run, the resolved config written next to the artifacts,
and reading that config back. Standard library only."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ftk.config import Config, load_config, to_toml
from ftk.errors import ConfigError
from ftk.files import read_json, write_json
from ftk.runs.files import RunFiles


def new_run_dir(config: Config) -> Path:
    """A fresh `<run.run_dir>/<timestamp>` directory (never an existing one), or
    `<run.run_dir>/<run.run_id>` (`restart_dir` said it holds no run yet)."""
    root = config.resolve_path(config.run.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    if config.run.run_id:
        path = named_dir(config)
        path.mkdir(exist_ok=True)
        return path
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


def load_run_config(run_dir: Path, overrides: list[str] = ()) -> Config:
    """The exact config a run used (relative paths still resolve where they did), with
    `overrides` (`section.key=value`, as `--set` takes them) applied."""
    files = RunFiles(run_dir)
    if not files.config.is_file() or not files.run.is_file():
        raise ConfigError(
            f"{run_dir} is not an ftk run directory (no {files.config.name} and {files.run.name})."
        )
    base_dir = read_json(files.run)["base_dir"]
    return load_config(files.config, overrides, base_dir=base_dir)


WORKERS_DIR = ".workers"  # non-chief workers' folders, below run.run_dir
TRAINING = "train"  # run.json's "kind" of a training run (`ftk.runs.pipeline`)
_KINDS = {"lr_find": "a learning-rate finder run (python train.py --lr-find)"}


def named_dir(config: Config, worker: int | None = None) -> Path:
    """Where the run named `run.run_id` lives: the chief's run directory, or (`worker`) that
    worker's directory (`ftk.runtime.distribute.worker_dir`)."""
    root = config.resolve_path(config.run.run_dir)
    if worker is None:
        return root / config.run.run_id
    return root / WORKERS_DIR / config.run.run_id / str(worker)


def restart_dir(config: Config, run_dir: Path) -> Path | None:
    """`run_dir` if an earlier start of the run named `run.run_id` left it there (the run to
    continue), `None` for a new run. Raises if that run finished, or if it was started with
    another config (continuing it would mix two settings)."""
    files = RunFiles(run_dir)
    if not files.run.is_file():
        return None
    what = f"run.run_id={config.run.run_id!r} ({run_dir})"
    check_resumable(run_dir, what)
    if files.config.read_text(encoding="utf-8") != to_toml(config):
        raise ConfigError(
            f"{what}: this run was started with another config; choose a new run.run_id, or "
            f"continue it with its own config: python train.py --resume {run_dir}"
        )
    return run_dir


def check_resumable(run_dir: Path, what: str = "") -> None:
    """Raise, saying what `run_dir` is, unless it is a training run that stopped before its
    end (the only kind `--resume` and a restart with `run.run_id` continue)."""
    what = what or f"--resume {run_dir}"
    files = RunFiles(run_dir)
    kind = read_json(files.run).get("kind") or ("lr_find" if files.lr_find.exists() else TRAINING)
    if kind != TRAINING:
        raise ConfigError(
            f"{what}: this is {_KINDS.get(kind, repr(kind))}, not a training run; "
            "there is nothing to resume. Start a training run with: python train.py"
        )
    if not files.weights.exists():
        return
    if files.summary.exists():
        raise ConfigError(
            f"{what}: this run finished ({files.summary.name} exists); start a new "
            f"run (a new run.run_id), or publish its model again with: ftk export {run_dir}"
        )
    raise ConfigError(
        f"{what}: this run already finished training ({files.weights.name} exists) "
        f"but not its export; publish it with: ftk export {run_dir} "
        "(add --set export.export_dir=DIR for another destination)"
    )


def discard_if_unused(run_dir: Path) -> bool:
    """Remove `run_dir` if it holds only what a run writes before training (its config, facts
    and label names): a run that failed before its first batch leaves no empty run behind."""
    files = RunFiles(run_dir)
    first = {files.config, files.run, files.labels}
    if not run_dir.is_dir() or any(p.is_file() and p not in first for p in run_dir.rglob("*")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
