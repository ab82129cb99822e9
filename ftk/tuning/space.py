"""The search space of `[tune]`: from the config to KerasTuner hyperparameters and back.

`tune.space` maps `"section.key"` to a range, a list of choices or a fixed value:

```toml
[tune.space]
"train.learning_rate" = {min = 1e-5, max = 1e-3, log = true}
"train.weight_decay" = [0.0, 0.01, 0.1]
"model.dropout" = {min = 0.0, max = 0.3, step = 0.1}
"model.trainable" = ["head", "last_n:2", "all"]
```

A trial's config is the run's config with those keys replaced (`trial_config`), built and
validated by `ftk.config` like any other: a tuned config trains exactly like a hand-written
one. Every key keeps its hyperparameter name (`"train.learning_rate"`) end to end: in the
trials table, the plot and the best config.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ftk.config import Config, replace, search_spec
from ftk.errors import ConfigError
from ftk.tasks.registry import get_task

# Keys that change only the head or the optimisation of a head-only run: a search over these
# alone, with the backbone frozen, can train the head on cached backbone features.
HEAD_KEYS = frozenset(
    {
        "model.dropout",
        "train.batch_size",
        "train.learning_rate",
        "train.weight_decay",
        "train.l2",
        "train.label_smoothing",
        "train.schedule",
        "train.warmup_steps",
        "train.warmup_epochs",
        "train.decay_to",
        "train.early_stopping_patience",
        "recipe.lr_head",
    }
)


def search_space(config: Config) -> dict[str, dict[str, Any]]:
    """The normalised `tune.space` (see `ftk.config.search_spec`). An empty space searches the
    learning rate over a log range from a tenth to ten times `train.learning_rate`."""
    space = dict(config.tune.space)
    if not space:
        rate = config.train.learning_rate
        space = {"train.learning_rate": {"min": rate / 10, "max": min(rate * 10, 0.5), "log": True}}
    return {key: search_spec(config, key, spec) for key, spec in space.items()}


def by_section(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"train.learning_rate": 1e-3}` -> `{"train": {"learning_rate": 1e-3}}` (Hyperband's
    `tuner/...` bookkeeping left out), as `ftk.config.replace` takes them."""
    sections: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, value in values.items():
        if not key.startswith("tuner/"):
            section, name = key.split(".")
            sections[section][name] = value
    return sections


def trial_config(config: Config, values: dict[str, Any]) -> Config:
    """`config` with the trial's values, `tune.epochs` epochs (if set) and tuning off."""
    sections = by_section(values)
    if config.tune.epochs:
        sections["train"].setdefault("epochs", config.tune.epochs)
    sections["tune"]["enabled"] = False
    return replace(config, **sections)


def check_space(config: Config, space: dict[str, dict[str, Any]]) -> None:
    """Each value of the space, alone, must give a valid config (fails in seconds, naming the
    key, rather than after hours of failed trials)."""
    try:
        trial_config(config, {})
    except ConfigError as e:
        epochs = f" with tune.epochs={config.tune.epochs}" if config.tune.epochs else ""
        raise ConfigError(f"The config of a trial{epochs} is not valid: {e}") from None
    for key, spec in space.items():
        candidates = spec.get("values") or [spec.get("value"), spec.get("min"), spec.get("max")]
        for value in [v for v in candidates if v is not None]:
            try:
                trial_config(config, {key: value})
            except ConfigError as e:
                message = f'`tune.space."{key}"` includes {value!r}, which fails: {e}'
                raise ConfigError(message) from None
        if config.tune.algorithm == "grid" and "min" in spec and spec["step"] is None:
            raise ConfigError(
                f'`tune.space."{key}"` is a continuous range and tune.algorithm="grid" needs '
                f"a finite grid: give it a `step`, or list the values."
            )


def declare(hp, space: dict[str, dict[str, Any]]) -> None:
    """Register the space's hyperparameters on a `keras_tuner.HyperParameters`."""
    for key, spec in space.items():
        if "value" in spec:
            hp.Fixed(key, spec["value"])
        elif "values" in spec:
            hp.Choice(key, spec["values"], ordered=_ordered(spec["values"]))
        else:
            sampling = "log" if spec["log"] else "linear"
            if isinstance(spec["min"], int) and isinstance(spec["max"], int):
                hp.Int(key, spec["min"], spec["max"], step=spec["step"], sampling=sampling)
            else:
                hp.Float(key, spec["min"], spec["max"], step=spec["step"], sampling=sampling)


def _ordered(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def values_of(values: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A trial's value of every key of the space, from its hyperparameter values (floats to 10
    significant digits: a grid step of 0.1 gives 0.3, not 0.30000000000000004)."""
    return {key: _tidy(values.get(key)) for key in space}


def _tidy(value):
    return float(f"{value:.10g}") if isinstance(value, float) else value


def baseline_values(config: Config, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config's own value of every searched key: the untuned baseline (trial 1)."""
    out = {}
    for key in space:
        section, name = key.split(".")
        out[key] = getattr(getattr(config, section), name)
    return out


def uses_cached_features(config: Config, space: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """Whether the search can train the head on cached backbone features, and why (not)."""
    if not config.tune.cache_features:
        return False, "tune.cache_features is false"
    if config.model.trainable != "head" or config.model.lora_rank:
        return False, "the backbone trains (model.trainable is not 'head')"
    other = sorted(set(space) - HEAD_KEYS)
    if other:
        return False, f"{', '.join(other)} change(s) more than the head"
    refusal = get_task(config.run.task).feature_cache_refusal(config)
    if refusal:
        return False, refusal
    return True, "the backbone is frozen (model.trainable = 'head')"
