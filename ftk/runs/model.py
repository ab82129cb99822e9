"""The task, its data and its model, as every kind of run gets them (training, the LR finder,
cross-validation, search trials, benchmarks). Import after the backend is set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ftk.config import Config
from ftk.data.splits import Splits

LoadData = Callable[[Config], Splits]


def load_task(config: Config, load_data: LoadData | None = None):
    """The task, the seeded data splits and the resolved (and reachable) preset of a config."""
    import keras

    from ftk.presets.resolve import check_online, resolve_preset
    from ftk.tasks.registry import get_task

    task = get_task(config.run.task)
    keras.utils.set_random_seed(config.run.seed)
    splits = (load_data or task.load_data)(config)
    info = resolve_preset(config.model.preset, config.base_dir)
    check_online(info)
    return task, splits, info


def project_load_data(config):
    """The `load_data` of the project a config belongs to: its `data.py` (next to the config),
    as the project's `train.py` uses it; `None` (the task's own reader) if there is none."""
    import importlib.util

    from ftk.errors import ConfigError

    path = Path(config.base_dir) / "data.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_ftk_project_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "load_data", None)):
        raise ConfigError(f"{path} has no load_data(config) function (see the template's data.py).")
    return module.load_data


def build_model(task, info, config: Config, label_names: list[str]):
    """The task's model from the pretrained preset, prepared by the task (a seeded head), with
    LoRA enabled if `model.lora_rank`."""
    model = task.build_model(info, config, label_names)
    task.prepare_model(model, config)
    if config.model.lora_rank:
        from ftk.models.lora import enable_lora

        enable_lora(
            model, config.model.lora_rank, config.model.lora_alpha, config.model.lora_targets
        )
    return model
