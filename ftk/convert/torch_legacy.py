"""Read a legacy (pre-1.6, non-zip) PyTorch `.pth` state dict into numpy, without torch and
without a general unpickler.

The file is a sequence of pickles: a magic number, a protocol version, system info, the state
dict (tensors refer to storages by persistent id), the list of storage keys, then each storage's
raw bytes. Only the handful of globals a state dict needs are admitted; any other global (the
way a malicious pickle runs code) is refused with `UnsafeCheckpointError` before anything runs.

Example:

>>> weights = load_legacy_state_dict("efficientnet-lite0.pth")
>>> weights["_conv_stem.weight"].shape
(32, 3, 3, 3)
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ftk.errors import PresetError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(PresetError):
    """The checkpoint asks for a Python global that a plain state dict never needs."""


class _Storage:
    def __init__(self, dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = np.dtype(dtype), key, numel
        self.array: np.ndarray | None = None


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _LazyTensor:
    """A tensor whose storage bytes come later in the file."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise PresetError(f"Storage {self.storage.key} has no data in the checkpoint.")
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # a compact copy


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only OrderedDict, tensor rebuilding and storage types."""

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"Refusing to load the checkpoint: it asks for the Python global {module}.{name}, "
            "which a plain tensor state dict never needs (it could run code)."
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafeCheckpointError(f"Unexpected persistent id in the checkpoint: {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"Unexpected storage type in the checkpoint: {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[storage_type.name], key, int(numel))
        return self.storages[key]


def _safe_header_load(f):
    """The small header pickles (numbers and a dict of str/bool/int): no globals at all."""

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise UnsafeCheckpointError(
                f"Refusing to load the checkpoint: its header asks for {module}.{name}."
            )

    return _NoGlobals(f).load()


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The state dict of a legacy `.pth` file as `{name: numpy array}`."""
    path = Path(path)
    data = path.read_bytes()
    f = io.BytesIO(data)
    try:
        if _safe_header_load(f) != MAGIC_NUMBER:
            raise PresetError(f"{path} is not a legacy PyTorch checkpoint (bad magic number).")
        if _safe_header_load(f) != PROTOCOL_VERSION:
            raise PresetError(f"{path} has an unsupported PyTorch protocol version.")
        sys_info = _safe_header_load(f)
        if not sys_info.get("little_endian", True):
            raise PresetError(f"{path} was saved big-endian, which is not supported.")
        storages: dict[str, _Storage] = {}
        state = _RestrictedUnpickler(f, storages).load()
        keys = _safe_header_load(f)
    except PresetError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as e:
        raise PresetError(f"{path} is not a readable legacy PyTorch checkpoint: {e}") from None
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * storage.dtype.itemsize
        raw = f.read(nbytes)
        if numel != storage.numel or len(raw) != nbytes:
            raise PresetError(f"{path} is truncated (storage {key}).")
        storage.array = np.frombuffer(raw, dtype=storage.dtype)
    if not isinstance(state, dict):
        raise PresetError(f"{path} does not hold a state dict.")
    return {
        name: value.materialize() for name, value in state.items() if isinstance(value, _LazyTensor)
    }
