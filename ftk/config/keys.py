"""The keys of the configuration: which exist, which a task reads, and checking one value
against its field's type. Standard library only (and the task registry, Keras-free)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from ftk.config.schema import Config
from ftk.errors import ConfigError
from ftk.tasks.registry import all_tasks, get_task


def foreign_keys(task: str) -> dict[str, str]:
    """`{key: owner}` for the keys that only other tasks read (an error under `task`). A key
    two tasks both read is foreign to neither."""
    this = get_task(task)
    others = [t for t in all_tasks() if t.name != task]
    owners: dict[str, list[str]] = {}
    for other in others:
        for key in other.only_keys:
            if key not in this.only_keys:
                owners.setdefault(key, []).append(other.name)
    # Shared keys this task does not read are foreign to it too: owned by the tasks that do.
    for key in this.unused_keys:
        owners[key] = [t.name for t in others if key not in t.unused_keys]
    return {key: "/".join(names) for key, names in owners.items()}


def sections() -> dict[str, type]:
    """`{section name: its dataclass}`, in `Config` order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "base_dir"}


def valid_keys(task: str | None = None) -> list[str]:
    """Every `section.key` the configuration accepts; with `task`, those that task reads."""
    foreign = foreign_keys(task) if task else {}
    return [
        key
        for name, cls in sections().items()
        for key in (f"{name}.{f.name}" for f in dataclasses.fields(cls))
        if key not in foreign
    ]


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The keys the config's task reads, as nested dicts (TOML sections), without `base_dir`."""
    foreign = foreign_keys(config.run.task)
    tree = {}
    for name in sections():
        values = dataclasses.asdict(getattr(config, name))
        kept = {k: v for k, v in values.items() if f"{name}.{k}" not in foreign}
        if kept:
            tree[name] = kept
    return tree


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against the field's type; ints are accepted where floats are expected."""
    origin = typing.get_origin(annotation)
    if annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"`{key}` must be a table. Received: {key}={value!r}")
        return dict(value)
    if origin in (list, types.GenericAlias) or annotation is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f'`{key}` must be a list of strings, like ["a", "b"]. Received: {key}={value!r}'
            )
        return list(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"`{key}` must be true or false. Received: {key}={value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"`{key}` must be an integer. Received: {key}={value!r}")
        return value
    if annotation is float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"`{key}` must be a number. Received: {key}={value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"`{key}` must be a string. Received: {key}={value!r}")
        return value
    raise TypeError(f"Unsupported config annotation {annotation!r} for {key}")
