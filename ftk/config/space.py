"""`tune.space`: which keys a search may vary, and each entry's form (range, choices, value)."""

from __future__ import annotations

import typing
from typing import Any

from ftk.config.keys import coerce, valid_keys
from ftk.config.schema import Config
from ftk.errors import ConfigError

# Keys `tune.space` may search: those of these sections, except the ones below.
SEARCHABLE_SECTIONS = ("model", "train", "recipe", "augment")
NOT_SEARCHABLE = (
    "model.preset",
    "train.epochs",  # epochs per trial: tune.epochs
    "train.steps_per_epoch",
    "train.monitor",  # what picks a trial's epoch is tune.objective
    "recipe.cv_folds",
    "recipe.interpolate",
    "recipe.interpolation_points",
    "recipe.keep_best_alpha",
)


def searchable_keys(task: str) -> list[str]:
    """The `section.key` names `tune.space` accepts for `task`."""
    return [
        key
        for key in valid_keys(task)
        if key.split(".")[0] in SEARCHABLE_SECTIONS and key not in NOT_SEARCHABLE
    ]


def search_spec(config: Config, key: str, spec: Any) -> dict[str, Any]:
    """Check one `tune.space` entry; returns it normalised as one of
    `{"values": [...]}` (choices), `{"value": v}` (fixed) or
    `{"min": a, "max": b, "log": bool, "step": s or None}` (a numeric range)."""
    name = f'tune.space."{key}"'
    allowed = searchable_keys(config.run.task)
    if key not in allowed:
        raise ConfigError(
            f"`{name}`: {key!r} cannot be searched. Searchable keys: {', '.join(allowed)}."
        )
    section, field_name = key.split(".")
    annotation = typing.get_type_hints(type(getattr(config, section)))[field_name]
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"`{name}` must list at least one value. Received: []")
        values = [coerce(name, v, annotation) for v in spec]
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"`{name}` lists a value twice. Received: {spec!r}")
        return {"values": values}
    if not isinstance(spec, dict):
        return {"value": coerce(name, spec, annotation)}
    if annotation not in (int, float):
        raise ConfigError(
            f"`{name}` is not a number, so it takes a list of choices, like "
            f'["a", "b"], not a range. Received: {spec!r}'
        )
    unknown = set(spec) - {"min", "max", "log", "step"}
    if unknown or not {"min", "max"} <= set(spec):
        raise ConfigError(
            f"`{name}` must be a range like {{min = 1e-5, max = 1e-3, log = true}} (optional "
            f"`step`), a list of choices or one value. Received: {spec!r}"
        )
    low = coerce(f"{name}.min", spec["min"], annotation)
    high = coerce(f"{name}.max", spec["max"], annotation)
    log = coerce(f"{name}.log", spec.get("log", False), bool)
    step = spec.get("step")
    if step is not None:
        step = coerce(f"{name}.step", step, annotation)
        if step <= 0:
            raise ConfigError(f"`{name}.step` must be > 0. Received: step={step!r}")
    if not low < high:
        raise ConfigError(f"`{name}` needs min < max. Received: min={low!r}, max={high!r}")
    if log and low <= 0:
        raise ConfigError(f"`{name}` with log = true needs min > 0. Received: min={low!r}")
    return {"min": low, "max": high, "log": log, "step": step}
