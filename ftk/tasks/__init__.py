"""Tasks: one registered class per kind of fine-tuning (`ftk.tasks.base.Task`).

`get_task(config.run.task)` finds a task; `ftk.run.pipeline.run` drives it. The modules of
this package are imported on the first lookup (`ftk.tasks.registry`); each imports Keras only
inside its methods.
"""

from ftk.tasks.registry import all_tasks, get_task, register_task, task_names

__all__ = ["all_tasks", "get_task", "register_task", "task_names"]
