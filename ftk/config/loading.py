"""Building a `Config`: defaults (the schema's, then the task's), then `config.toml`, then
`--set section.key=value` overrides; the result is type-checked and validated.

Example:

```python
from ftk.config import load_config
config = load_config("config.toml", overrides=["train.epochs=3"])
config.train.epochs  # 3
```

Unknown sections or keys and values of the wrong type raise `ConfigError`, naming the
key, what was received, and what is valid.
"""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path
from typing import Any

from ftk.config.keys import coerce, foreign_keys, sections, to_dict, valid_keys
from ftk.config.schema import Config, RunConfig
from ftk.config.validation import validate
from ftk.errors import ConfigError
from ftk.tasks.registry import get_task


def _task_of(tree: dict[str, Any]) -> str:
    run = tree.get("run", {})
    task = coerce("run.task", run.get("task", RunConfig.task), str) if isinstance(run, dict) else ""
    get_task(task)  # an unknown name is an error that lists the registered ones
    return task


def _build(tree: dict[str, Any], base_dir: str) -> Config:
    known = sections()
    task = _task_of(tree)
    foreign = foreign_keys(task)
    task_class = get_task(task)
    merged = {"tune": {"objective": next(iter(task_class.objectives))}}  # the task's first
    for name, values in task_class.defaults.items():
        merged.setdefault(name, {}).update(values)
    for name, section in tree.items():
        if isinstance(section, dict):
            for key in section:
                owner = foreign.get(f"{name}.{key}")
                if owner:
                    raise ConfigError(
                        f"`{name}.{key}` is a setting of {owner} runs, and this config has "
                        f"run.task={task!r}. Remove it or change run.task."
                    )
            merged.setdefault(name, {}).update(section)
        else:
            merged[name] = section
    kwargs = {}
    for name, section in merged.items():
        if name not in known:
            raise ConfigError(
                f"Unknown config section `[{name}]`. Valid sections: {', '.join(known)}."
            )
        if not isinstance(section, dict):
            raise ConfigError(f"`{name}` must be a table like [{name}]. Received: {section!r}")
        cls = known[name]
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in section.items():
            if key not in hints:
                keys = ", ".join(k for k in valid_keys(task) if k.startswith(f"{name}."))
                raise ConfigError(f"Unknown config key `{name}.{key}`. Valid keys: {keys}.")
            values[key] = coerce(f"{name}.{key}", value, hints[key])
        kwargs[name] = cls(**values)
    config = Config(**kwargs, base_dir=base_dir)
    validate(config)
    return config


def parse_override(text: str) -> tuple[str, str, Any]:
    """`'train.epochs=3'` -> `('train', 'epochs', 3)`. Values are TOML; bare words are strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1:
        raise ConfigError(
            f"An override must look like section.key=value. Received: {text!r}. "
            f"Valid keys: {', '.join(valid_keys())}."
        )
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, name, value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    base_dir: str | Path | None = None,
) -> Config:
    """Defaults, then the TOML file at `path` (if any), then `overrides` (`section.key=value`).

    Relative paths in the config are resolved against `base_dir`, by default the directory
    of `path` (or the working directory when there is no file).
    """
    tree: dict[str, dict[str, Any]] = {}
    default_base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"Config file not found. Received: path={str(path)!r}. Run this in a project "
                "directory (`ftk new` makes one) or pass --config <file>."
            )
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path} is not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r}); "
                "save it as UTF-8, as TOML requires."
            ) from None
        default_base = path.resolve().parent
    for text in overrides:
        section, name, value = parse_override(text)
        tree.setdefault(section, {})
        if not isinstance(tree[section], dict):
            raise ConfigError(f"`{section}` is not a table in {path}.")
        tree[section][name] = value
    return _build(tree, str(Path(base_dir).resolve() if base_dir else default_base))


def replace(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys changed, validated: `replace(c, train={"epochs": 1})`."""
    tree = to_dict(config)
    for name, values in sections.items():
        tree.setdefault(name, {}).update(values)
    return _build(tree, config.base_dir)


# Keys that may name a file or folder (relative to `base_dir`) rather than a catalog name.
PATH_KEYS = (
    "run.run_dir",
    "model.preset",
    "data.path",
    "data.validation_path",
    "data.test_path",
    "export.export_dir",
)


def with_absolute_paths(config: Config) -> Config:
    """`config` with every path that exists (and the run and export folders) made absolute, so
    it can be written anywhere and still mean the same files."""
    sections: dict[str, dict[str, Any]] = {}
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not value:
            continue
        path = config.resolve_path(value)
        if section in ("run", "export") or path.exists():
            sections.setdefault(section, {})[name] = str(path)
    return replace(config, **sections)
