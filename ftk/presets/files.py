"""The files of a preset directory: sha256 checksums, and the manifest of a vendored copy.

`ftk presets pull` (`ftk.presets.vendor`) writes `ftk-preset.json` beside the files it
copies, with the sha256 of each; `ftk.presets.resolve.resolve_preset` checks them here
(`vendored_source`) before a vendored directory is used. Neither module is imported from
here, so both can use it.
Standard library only.

Example:

>>> file_sha256(Path("presets/minilm_l6/model.safetensors"))   # "sha256:..."
>>> verify_vendored(Path("presets/minilm_l6"))                  # raises PresetError if changed
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ftk.errors import PresetError

VENDOR_MANIFEST = "ftk-preset.json"  # written by `ftk presets pull` (ftk.presets.vendor)
_WEIGHT_FILES = ("model.safetensors", "model.weights.h5", "pytorch_model.bin")


def file_sha256(path: Path) -> str:
    """`sha256:<hex>` of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def weights_checksum(path: Path) -> str:
    """`sha256:<hex>` of the first weights file found in a preset directory, or `""`."""
    for filename in _WEIGHT_FILES:
        weights = path / filename
        if weights.is_file():
            return file_sha256(weights)
    return ""


def manifest_checksum(files: dict[str, str]) -> str:
    """One checksum for a whole preset: sha256 of its sorted `<path>\\t<sha256:hex>` lines."""
    lines = "".join(f"{name}\t{files[name]}\n" for name in sorted(files))
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def read_manifest(path: Path) -> dict | None:
    """The manifest of a vendored preset directory, or `None` when it has none."""
    manifest_path = Path(path) / VENDOR_MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PresetError(
            f"Cannot read {manifest_path}: {e}. Remove {path} and pull the preset again with "
            f"`ftk presets pull`."
        ) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise PresetError(
            f"{manifest_path} has no valid `files` table ({{relative path: 'sha256:<hex>'}}). "
            f"Remove {path} and pull the preset again with `ftk presets pull`."
        )
    return manifest


def verify_vendored(path: Path, name: str | None = None) -> None:
    """Check every file listed in `path/ftk-preset.json` against its recorded sha256.

    Does nothing for a directory without a manifest. Files that are not listed are ignored.
    Raises `PresetError` naming the first (sorted) file that is missing or differs; `name`
    (the `model.preset` value) is added to the message when given.

    Example:

    >>> verify_vendored(Path("presets/minilm_l6"))
    """
    _verified_manifest(Path(path), name)


def _verified_manifest(path: Path, name: str | None = None) -> dict | None:
    manifest = read_manifest(path)
    if manifest is None:
        return None
    received = f" Received: model.preset={name!r}" if name is not None else ""
    root = path.resolve()
    for rel in sorted(manifest["files"]):
        file = (path / rel).resolve()
        if not file.is_relative_to(root):
            raise PresetError(
                f"{path / VENDOR_MANIFEST} lists {rel!r}, which is outside the preset directory. "
                f"Remove {path} and pull the preset again.{received}"
            )
        if not file.is_file():
            problem = "is missing"
        elif file_sha256(file) != manifest["files"][rel]:
            problem = "does not match its sha256 in " + VENDOR_MANIFEST
        else:
            continue
        raise PresetError(
            f"The vendored preset {path} is damaged: {rel} {problem}. It was changed after "
            f"`ftk presets pull`; pull it again (remove {path}, then run "
            f"`ftk presets pull {manifest.get('name', '<name>')}`).{received}"
        )
    return manifest


def vendored_source(path: Path, name: str) -> tuple[str, str] | None:
    """For `ftk.presets.resolve`: verify a vendored directory and return (source line,
    weights checksum).

    `None` when `path` has no manifest. The weights checksum is the manifest's entry for the
    weights file, so a verified preset is not hashed twice.
    """
    manifest = _verified_manifest(path, name)
    if manifest is None:
        return None
    files = manifest["files"]
    checksum = next((files[w] for w in _WEIGHT_FILES if w in files), "")
    source = manifest.get("source") or "an unknown source"
    return f"vendored copy of {source} ({name}, checksums verified)", checksum
