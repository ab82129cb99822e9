"""The task registry: `@register_task` on a `Task` subclass, `get_task(name)` to find it.

There is no central list. The tasks that ship with ftk are the modules of `ftk.tasks` that
register one; they are found by importing every module of the package the first time a task
is looked up. A task living elsewhere registers when its module is imported, or through the
`ftk.tasks` entry-point group of an installed distribution. Task modules import no Keras at
module level, so looking tasks up is cheap and can happen before the backend is chosen.

Example:

>>> get_task("text_classification").template
'text-classification'
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from ftk.errors import ConfigError

Task = Any  # an `ftk.tasks.base.Task` (not imported: the base imports what imports this)

_TASKS: dict[str, Task] = {}
_DISCOVERED = False


def register_task(cls: type) -> type:
    """Class decorator: make `cls` the task of `run.task = cls.name`. Returns `cls`."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} must set `name` (the run.task value) to be registered.")
    existing = _TASKS.get(cls.name)
    if existing is not None and type(existing) is not cls:
        raise TypeError(
            f"Two tasks are registered as {cls.name!r}: {type(existing).__qualname__} and "
            f"{cls.__qualname__}."
        )
    _TASKS[cls.name] = cls()
    return cls


def _discover() -> None:
    """Import the modules of `ftk.tasks` and the `ftk.tasks` entry points, once."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = __name__.rpartition(".")[0]  # ftk.tasks, this module's package
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
    from importlib.metadata import entry_points

    for entry in entry_points(group="ftk.tasks"):
        entry.load()


def task_names() -> list[str]:
    """The `run.task` values of every registered task, sorted."""
    _discover()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The registered task whose `name` is `name` (the `run.task` value)."""
    _discover()
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"`run.task` must be one of {', '.join(sorted(_TASKS))}. Received: run.task={name!r}"
        ) from None


def all_tasks() -> list[Task]:
    """Every registered task, in name order."""
    return [get_task(name) for name in task_names()]
