"""The configuration as TOML: `to_toml` (what a run saves next to its artifacts) and
`update_config_file` (one key changed in a user's file, comments kept, a backup made)."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

from ftk.config.keys import to_dict
from ftk.config.schema import Config
from ftk.errors import ConfigError
from ftk.files import write_atomic


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}" if items else "{}"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_toml(config: Config) -> str:
    """The resolved configuration as TOML that `load_config` reads back unchanged."""
    lines = [f"# Resolved ftk configuration (base_dir: {config.base_dir})"]
    for name, values in to_dict(config).items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def update_config_file(path: str | Path, key: str, value: Any) -> Path:
    """Set one `section.key` in a TOML file, keeping every other line (comments included).

    The file is checked first (the result must load), a copy of the original is kept next to it
    as `<name>.<timestamp>.bak` (never overwriting an earlier copy), and the new text replaces
    the file atomically. Returns the backup's path.
    """
    path = Path(path)
    section, name = key.split(".")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    new_line = f"{name} = {toml_value(value)}\n"
    header = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
    assignment = re.compile(rf"^\s*{re.escape(name)}\s*=")
    current, start, done = None, None, False
    for i, line in enumerate(lines):
        match = header.match(line)
        if match:
            if current == section and not done:
                break
            current = match[1].strip()
            if current == section:
                start = i
            continue
        if current == section and assignment.match(line):
            lines[i] = new_line
            done = True
            break
    if not done:
        if start is None:
            lines.append(f"\n[{section}]\n{new_line}")
        else:
            lines.insert(start + 1, new_line)
    text = "".join(lines)
    check = tomllib.loads(text)
    if check.get(section, {}).get(name) != value:
        raise ConfigError(f"Could not set `{key}` in {path}: edit it by hand to {value!r}.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{i}" for i in range(1, 100)]:
        backup = path.with_name(f"{path.name}.{stamp}{suffix}.bak")
        try:
            with backup.open("xb") as f:
                f.write(path.read_bytes())
            break
        except FileExistsError:
            continue
    write_atomic(path, text)
    return backup
