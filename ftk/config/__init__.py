"""Typed, frozen configuration: defaults, then `config.toml`, then `--set section.key=value`.

Standard library only, so it can run before the Keras backend is chosen. The package:

- `schema`: one frozen dataclass per section, and the choices keys take;
- `keys`: which keys exist and which a task reads; type checks of one value;
- `loading`: `load_config`, overrides, `replace`, paths made absolute;
- `validation`: range and cross-field checks per section (a task checks its own keys);
- `space`: `tune.space` entries;
- `toml`: writing the config as TOML, and changing one key in a user's file.

Example:

```python
from ftk.config import load_config
config = load_config("config.toml", overrides=["train.epochs=3"])
config.train.epochs  # 3
```
"""

from ftk.config.choices import BACKENDS, MAX_REPORT_MISTAKES, SCHEDULES
from ftk.config.keys import to_dict, valid_keys
from ftk.config.loading import (
    PATH_KEYS,
    load_config,
    parse_override,
    replace,
    with_absolute_paths,
)
from ftk.config.schema import (
    AugmentConfig,
    Config,
    DataConfig,
    ExportConfig,
    ModelConfig,
    RecipeConfig,
    RunConfig,
    RuntimeConfig,
    TrainConfig,
    TuneConfig,
)
from ftk.config.space import search_spec, searchable_keys
from ftk.config.toml import to_toml, update_config_file
from ftk.config.validation import validate

__all__ = [
    "BACKENDS",
    "MAX_REPORT_MISTAKES",
    "PATH_KEYS",
    "SCHEDULES",
    "AugmentConfig",
    "Config",
    "DataConfig",
    "ExportConfig",
    "ModelConfig",
    "RecipeConfig",
    "RunConfig",
    "RuntimeConfig",
    "TrainConfig",
    "TuneConfig",
    "load_config",
    "parse_override",
    "replace",
    "search_spec",
    "searchable_keys",
    "to_dict",
    "to_toml",
    "update_config_file",
    "valid_keys",
    "validate",
    "with_absolute_paths",
]
