"""End-to-end task pipelines: `get_task(config.run.task)`, driven by `ftk.tasks.runner.run`.

Import after the backend is set.
"""

from __future__ import annotations

from ftk.tasks.base import Task


def get_task(name: str) -> Task:
    """The `Task` named by `run.task` ("text_classification" or "image_classification")."""
    if name == "text_classification":
        from ftk.tasks.text_classification import TASK
    elif name == "image_classification":
        from ftk.tasks.image_classification import TASK
    else:
        from ftk.config import TASKS
        from ftk.errors import ConfigError

        raise ConfigError(f"`run.task` must be one of {', '.join(TASKS)}. Received: {name!r}")
    return TASK
