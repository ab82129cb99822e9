"""The sources of the example image datasets (`ftk.data.image_examples`): Fashion-MNIST's
IDX files from the Debian package `dataset-fashion-mnist`, and scikit-learn's bundled digits.

Each source is read into pools of (uint8 images `[n, h, w]`, label ids `[n]`) and says which
pool each split samples from (`_Source`). Nothing is written here.

Example:

>>> available_sources()                                   # ["fashion_mnist", "digits"]
>>> read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 1).shape   # (10000,)
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftk.errors import ConfigError, DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_LABELS = (
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
DIGITS_LABELS = tuple(str(i) for i in range(10))
SOURCES = ("auto", "fashion_mnist", "digits")
SPLITS = ("train", "validation", "test")
_IDX_UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """A gzip-compressed IDX file of unsigned bytes as a uint8 array with `ndim` dimensions.

    IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each
    dimension as a big-endian uint32, then the data.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}; "
            "expected 0000 then a type code and the number of dimensions."
        )
    if raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise DataError(
            f"{path}: IDX type 0x{raw[2]:02x} with {raw[3]} dimension(s); expected unsigned "
            f"bytes (0x08) with {ndim} dimension(s)."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated ({len(raw)} bytes).")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header says {dims} = {expected} bytes of data, found {len(raw) - header}."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _fashion_mnist_missing(directory: Path) -> list[str]:
    return [name for name in FASHION_MNIST_FILES.values() if not (directory / name).is_file()]


def _read_fashion_pair(directory: Path, images_name: str, labels_name: str):
    images = read_idx(directory / images_name, 3)
    labels = read_idx(directory / labels_name, 1)
    if len(images) != len(labels):
        raise DataError(
            f"{directory}: {images_name} has {len(images)} images but {labels_name} has "
            f"{len(labels)} labels."
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_LABELS):
        raise DataError(
            f"{directory / labels_name}: label {int(labels.max())} is out of range; "
            f"Fashion-MNIST labels are 0..{len(FASHION_MNIST_LABELS) - 1}."
        )
    return images, labels


@dataclass
class _Source:
    name: str
    detail: str
    labels: tuple[str, ...]
    # Pools to sample from: name -> (images [n, h, w] uint8, label ids [n]).
    pools: dict[str, tuple[np.ndarray, np.ndarray]]
    # Which pool each split samples from; splits sharing a pool are disjoint within it.
    split_pool: dict[str, str]
    pool_files: dict[str, str]


def _load_fashion_mnist(directory: Path) -> _Source:
    missing = _fashion_mnist_missing(directory)
    if missing:
        raise DataError(
            f"Fashion-MNIST is not installed: {directory} lacks {', '.join(missing)}. "
            "Install it with `sudo apt-get install dataset-fashion-mnist`, or use "
            "source='digits'."
        )
    files = FASHION_MNIST_FILES
    train = _read_fashion_pair(directory, files["train_images"], files["train_labels"])
    test = _read_fashion_pair(directory, files["test_images"], files["test_labels"])
    return _Source(
        name="fashion_mnist",
        detail=f"Fashion-MNIST IDX files in {directory} (Debian package dataset-fashion-mnist)",
        labels=FASHION_MNIST_LABELS,
        pools={"train": train, "t10k": test},
        split_pool={"train": "train", "validation": "train", "test": "t10k"},
        pool_files={"train": files["train_images"], "t10k": files["test_images"]},
    )


def _load_digits() -> _Source:
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "The digits source needs scikit-learn: pip install -e '.[examples]' "
            "(or use source='fashion_mnist')."
        ) from None
    digits = load_digits()
    # 0..16 -> 0..255
    images = np.rint(np.asarray(digits.images, np.float64) * (255.0 / 16.0))
    images = np.clip(images, 0, 255).astype(np.uint8)
    labels = np.asarray(digits.target, np.int64)
    return _Source(
        name="digits",
        detail=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
        labels=DIGITS_LABELS,
        pools={"digits": (images, labels)},
        split_pool={split: "digits" for split in SPLITS},
        pool_files={"digits": "sklearn.datasets.load_digits()"},
    )


def available_sources(fashion_mnist_dir: Path = FASHION_MNIST_DIR) -> list[str]:
    """The sources that can be written on this machine (not counting `auto`)."""
    found = []
    if not _fashion_mnist_missing(Path(fashion_mnist_dir)):
        found.append("fashion_mnist")
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("digits")
    return found


def _resolve_source(source: str, fashion_mnist_dir: Path) -> str:
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}; received {source!r}.")
    if source != "auto":
        return source
    return "digits" if _fashion_mnist_missing(fashion_mnist_dir) else "fashion_mnist"
