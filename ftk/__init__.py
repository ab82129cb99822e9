"""ftk, the fine-tuning kit: fine-tune pretrained keras-hub backbones on Keras 3.

`import ftk` imports neither keras nor tensorflow: the Keras backend is chosen from
the configuration first (see `ftk.runtime.backend`), then the modules that need Keras are
imported. The public names below are imported on first use:

```python
import ftk

config = ftk.load_config("config.toml", overrides=["train.epochs=1"])
rows = [ftk.Row("Markets fell", "business", origin="my.db:1")]
ftk.get_task(config.run.task)          # the task class that runs this config
```

- configuration: `Config`, `load_config`
- data: `Row`, `Examples`, `Splits`, `build_splits`, `load_text_splits`,
  `load_image_splits`, `check_images`
- tasks: `Task`, `ClassificationTask`, `register_task`, `get_task`, `task_names`
- runs: `train_main` (a project's `train.py`), `run` (the pipeline), `RunFiles`,
  `load_run_config`, `write_report`
- errors: `FtkError`, `ConfigError`, `DataError`
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "Config": "ftk.config",
    "load_config": "ftk.config",
    "Row": "ftk.data.splits",
    "Examples": "ftk.data.splits",
    "Splits": "ftk.data.splits",
    "build_splits": "ftk.data.splits",
    "load_text_splits": "ftk.data.text",
    "load_image_splits": "ftk.data.images",
    "check_images": "ftk.data.images",
    "Task": "ftk.tasks.base",
    "ClassificationTask": "ftk.tasks.classification",
    "register_task": "ftk.tasks.registry",
    "get_task": "ftk.tasks.registry",
    "task_names": "ftk.tasks.registry",
    "train_main": "ftk.cli.main",
    "run": "ftk.runs.pipeline",
    "RunFiles": "ftk.runs.files",
    "load_run_config": "ftk.runs.dirs",
    "write_report": "ftk.report",
    "FtkError": "ftk.errors",
    "ConfigError": "ftk.errors",
    "DataError": "ftk.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562), so `import ftk` stays light."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'ftk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
