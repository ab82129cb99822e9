"""EfficientNet-Lite0 from PyPI: the restricted legacy-torch reader and the key mapping. (The
converted model's ImageNet predictions: tests/system/test_image_model.py.)"""

import io
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest

from ftk.convert import efficientnet_lite
from ftk.convert.torch_legacy import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    UnsafeCheckpointError,
    load_legacy_state_dict,
)
from ftk.errors import PresetError


def legacy_file(tmp_path, state_pickle: bytes, storages=(), header=None):
    """A legacy-format checkpoint: header pickles, the state pickle, keys, raw storages."""
    out = io.BytesIO()
    for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, header or {"little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    out.write(state_pickle)
    pickle.dump([key for key, _ in storages], out, protocol=2)
    for _, array in storages:
        out.write(struct.pack("<q", array.size))
        out.write(array.tobytes())
    path = tmp_path / "model.pth"
    path.write_bytes(out.getvalue())
    return path


class RunsCode:
    """What a malicious checkpoint does: unpickling calls a function of the attacker's choice."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_reader_matches_torch_on_the_real_checkpoint():
    torch = pytest.importorskip("torch")  # installed by the [torch] extra in `make test`
    path = efficientnet_lite.checkpoint_path()
    ours = load_legacy_state_dict(path)
    reference = torch.load(path, weights_only=True, map_location="cpu")
    assert set(ours) == set(reference) and len(ours) == 296
    for name, value in reference.items():
        np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)


def test_malicious_checkpoint_is_refused_before_running_code(tmp_path):
    marker = tmp_path / "pwned"
    state = pickle.dumps(OrderedDict(weight=RunsCode(marker)), protocol=2)
    path = legacy_file(tmp_path, state)
    with pytest.raises(UnsafeCheckpointError, match=r"global (builtins|io)\.open"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_globals_in_the_header_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = legacy_file(tmp_path, b"", header=RunsCode(marker))
    with pytest.raises(UnsafeCheckpointError, match="header"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    real = efficientnet_lite.checkpoint_path().read_bytes()
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(real[: len(real) // 2])
    with pytest.raises(PresetError, match="truncated|not a readable"):
        load_legacy_state_dict(truncated)
    foreign = tmp_path / "zip.pth"
    foreign.write_bytes(b"PK\x03\x04 not a legacy checkpoint")
    with pytest.raises(PresetError):
        load_legacy_state_dict(foreign)


def test_key_mapping_covers_every_weight_once():
    state = load_legacy_state_dict(efficientnet_lite.checkpoint_path())
    names = [efficientnet_lite.timm_name(k) for k in state]
    kept = [n for n in names if n is not None]
    assert len(kept) == len(set(kept)) == 296 - 49  # minus the BatchNorm step counters
    assert "blocks.0.0.conv_pw.weight" in kept and "blocks.6.0.conv_pwl.weight" in kept
    assert efficientnet_lite.timm_name("_blocks.15._project_conv.weight") == (
        "blocks.6.0.conv_pwl.weight"
    )
    with pytest.raises(PresetError):
        efficientnet_lite.timm_name("_blocks.0._se_reduce.weight")
