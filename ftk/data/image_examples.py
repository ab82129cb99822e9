"""Write a real example image dataset as a class-folder tree, for demos and tests.

```
<out>/train/<label>/<NNNNN>.png
<out>/validation/<label>/<NNNNN>.png
<out>/test/<label>/<NNNNN>.png
<out>/ftk_example.json          # the manifest: source, counts, seed, labels, source indices
```

Sources:

- `fashion_mnist`: the IDX files that the Debian package `dataset-fashion-mnist` installs in
  `/usr/share/datasets/fashion-mnist/` (28x28 grayscale). Train and validation images come
  from the IDX train set (disjoint), test images from the t10k set.
- `digits`: scikit-learn's bundled `load_digits()` (1797 8x8 grayscale images, labels
  "0".."9"), split disjointly into train, validation and test. Needs the `examples` extra.
- `auto`: `fashion_mnist` when its files exist, else `digits`.

Each split is sampled stratified (equal per class as far as possible) with a seed, so the same
arguments write the same files. A file's name is its row in the source (the IDX file, or the
`load_digits` array), zero-padded; the manifest lists those rows per split. Images are written
as mode "L" PNGs; the training pipeline converts them to RGB.

Nothing is ever overwritten: the tree is written into `<out>.partial-<pid>` and moved into
place at the end. If `<out>` already holds the manifest these arguments would write, it is
reused as is; any other non-empty `<out>` is an error.

```
python -m ftk.data.image_examples build/example_images --train 2000 --validation 500 --test 2000
```
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ftk.errors import ConfigError, DataError, FtkError

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
MANIFEST_NAME = "ftk_example.json"
MANIFEST_FORMAT = "ftk-example-images"
MANIFEST_VERSION = 1
# Manifest keys that decide whether an existing tree is the one these arguments would write.
IDENTITY_KEYS = ("format", "version", "source", "seed", "requested")

_IDX_UBYTE = 0x08


# --------------------------------------------------------------------------------------------
# Reading the sources
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _allocate(available: list[int], n: int) -> list[int]:
    """`n` items over classes, as equal as possible, never more than a class has.

    Left-over items (n not divisible) go to the first classes in label order.
    """
    alloc = [0] * len(available)
    remaining = n
    while remaining > 0:
        open_classes = [c for c, a in enumerate(available) if alloc[c] < a]
        if not open_classes:
            break
        share = remaining // len(open_classes)
        if share == 0:
            for c in open_classes[:remaining]:
                alloc[c] += 1
            break
        for c in open_classes:
            give = min(share, available[c] - alloc[c])
            alloc[c] += give
            remaining -= give
    return alloc


def _proportional(requested: list[int], total: int) -> list[int]:
    """Scale `requested` down to sum to `total` (largest remainder; ties to the first)."""
    want = sum(requested)
    counts = [r * total // want for r in requested]
    by_remainder = sorted(range(len(requested)), key=lambda i: (-(requested[i] * total % want), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _split_counts(source: _Source, requested: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """How many images each split gets: the request, or proportional splits of a pool that is
    too small for it. Returns the counts and one note per pool that was too small."""
    counts = dict(requested)
    notes = []
    for pool, (images, _) in source.pools.items():
        splits = [s for s in SPLITS if source.split_pool[s] == pool]
        want = [requested[s] for s in splits]
        if sum(want) <= len(images):
            continue
        scaled = _proportional(want, len(images))
        counts.update(zip(splits, scaled, strict=True))
        asked = " + ".join(f"{s} {w}" for s, w in zip(splits, want, strict=True))
        got = ", ".join(f"{s} {c}" for s, c in zip(splits, scaled, strict=True))
        notes.append(
            f"requested {asked} = {sum(want)} images but {source.pool_files[pool]} has "
            f"{len(images)}; split all of them proportionally: {got}"
        )
    return counts, notes


def _sample(source: _Source, counts: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Source row indices per split: stratified, seeded, disjoint within each pool."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, np.ndarray] = {}
    for pool, (_, labels) in source.pools.items():
        # One seeded permutation per class; splits of this pool take consecutive slices.
        order = [rng.permutation(np.flatnonzero(labels == c)) for c in range(len(source.labels))]
        used = [0] * len(order)
        for split in (s for s in SPLITS if source.split_pool[s] == pool):
            left = [len(o) - u for o, u in zip(order, used, strict=True)]
            alloc = _allocate(left, counts[split])
            parts = []
            for c, n in enumerate(alloc):
                parts.append(order[c][used[c] : used[c] + n])
                used[c] += n
            chosen[split] = np.sort(np.concatenate(parts)) if parts else np.zeros([0], np.int64)
    return chosen


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _identity(manifest: dict) -> dict:
    return {key: manifest.get(key) for key in IDENTITY_KEYS}


def _check_tree(out: Path, manifest: dict) -> None:
    """The PNG files under `out` are the ones the manifest lists (by count per label)."""
    for split, per_label in manifest.get("per_label", {}).items():
        for label, n in per_label.items():
            folder = out / split / label
            found = len(list(folder.glob("*.png"))) if folder.is_dir() else 0
            if found != n:
                raise DataError(
                    f"{out} has a matching {MANIFEST_NAME} but {folder} holds {found} PNG "
                    f"file(s) where the manifest lists {n}; it was changed after it was "
                    "written. Write to a new directory."
                )


def _existing(out: Path, identity: dict) -> dict | None:
    """The manifest of an `out` that already holds this dataset; None if `out` is absent or
    empty; an error if it holds anything else."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataError(f"{out} exists and is not a directory; choose a new output directory.")
    if not any(out.iterdir()):
        return None
    manifest_path = out / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DataError(
            f"{out} already exists and is not empty (no {MANIFEST_NAME} in it); refusing to "
            "write into it. Choose a new output directory."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(
            f"{manifest_path} cannot be read ({e}); refusing to write into {out}. Choose a "
            "new output directory."
        ) from None
    if not isinstance(manifest, dict) or _identity(manifest) != identity:
        have = _identity(manifest) if isinstance(manifest, dict) else manifest
        raise DataError(
            f"{out} already holds a different example dataset ({have}; this run would write "
            f"{identity}); refusing to overwrite it. Choose a new output directory."
        )
    _check_tree(out, manifest)
    return manifest


def _manifest_text(manifest: dict) -> str:
    """The manifest as indented JSON, each split's source indices on one line."""
    body = json.dumps({k: v for k, v in manifest.items() if k != "source_indices"}, indent=1)
    indices = ",\n".join(
        f"  {json.dumps(split)}: {json.dumps(rows)}"
        for split, rows in manifest["source_indices"].items()
    )
    return f'{body.removesuffix("}").rstrip()},\n "source_indices": {{\n{indices}\n }}\n}}\n'


def _write_tree(root: Path, source: _Source, chosen: dict[str, np.ndarray]) -> None:
    width = max(5, *(len(str(len(images) - 1)) for images, _ in source.pools.values()))
    for split in SPLITS:
        images, labels = source.pools[source.split_pool[split]]
        split_dir = root / split
        split_dir.mkdir()
        for label_id in sorted({int(labels[i]) for i in chosen[split]}):
            (split_dir / source.labels[label_id]).mkdir()
        for i in chosen[split]:
            path = split_dir / source.labels[int(labels[i])] / f"{int(i):0{width}d}.png"
            Image.fromarray(np.ascontiguousarray(images[i])).save(path, format="PNG")


def _write(
    out: Path,
    source: str,
    train: int,
    validation: int,
    test: int,
    seed: int,
    fashion_mnist_dir: Path,
) -> tuple[dict, bool]:
    """The manifest, and whether an existing tree was reused."""
    out = Path(out)
    fashion_mnist_dir = Path(fashion_mnist_dir)
    requested = {"train": train, "validation": validation, "test": test}
    for name, value in requested.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1; received {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0; received {seed!r}.")
    resolved = _resolve_source(source, fashion_mnist_dir)
    identity = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "source": resolved,
        "seed": seed,
        "requested": requested,
    }
    existing = _existing(out, identity)
    if existing is not None:
        return existing, True

    data = _load_fashion_mnist(fashion_mnist_dir) if resolved == "fashion_mnist" else _load_digits()
    counts, notes = _split_counts(data, requested)
    chosen = _sample(data, counts, seed)
    first_images = next(iter(data.pools.values()))[0]
    manifest = {
        **identity,
        "source_detail": data.detail,
        "labels": list(data.labels),
        "image_size": [int(first_images.shape[1]), int(first_images.shape[2])],
        "image_mode": "L",
        "counts": {split: int(len(chosen[split])) for split in SPLITS},
        "per_label": {
            split: {
                label: int(np.sum(data.pools[data.split_pool[split]][1][chosen[split]] == c))
                for c, label in enumerate(data.labels)
            }
            for split in SPLITS
        },
        "capped": bool(notes),
        "notes": notes,
        "source_files": {split: data.pool_files[data.split_pool[split]] for split in SPLITS},
        # Rows of `source_files` in each split; also each image's file name.
        "source_indices": {split: [int(i) for i in chosen[split]] for split in SPLITS},
    }

    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        _write_tree(partial, data, chosen)
        (partial / MANIFEST_NAME).write_text(_manifest_text(manifest), encoding="utf-8")
        if out.exists() and not any(out.iterdir()):
            out.rmdir()  # an empty directory is replaced
        try:
            os.replace(partial, out)
        except OSError as e:
            raise DataError(
                f"Could not move the finished dataset into {out} ({e}); it appeared while this "
                "run was writing. Choose a new output directory."
            ) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest, False


def write_example_images(
    out: Path,
    source: str = "auto",
    train: int = 2000,
    validation: int = 500,
    test: int = 2000,
    seed: int = 42,
    fashion_mnist_dir: Path = FASHION_MNIST_DIR,
) -> dict:
    """Write an example image dataset to `out` as `<split>/<label>/<NNNNN>.png` and return its
    manifest (also written to `out/ftk_example.json`).

    `source` is `"fashion_mnist"`, `"digits"` or `"auto"` (Fashion-MNIST when its files are in
    `fashion_mnist_dir`, else digits). `train`, `validation`, `test`: images per split, sampled
    stratified with `seed`; if a source has fewer images than requested, all of them are split
    proportionally and the manifest's `notes` say so. An `out` that already holds this dataset
    (same source, requested counts and seed) is reused; any other non-empty `out` is an error.
    """
    manifest, _ = _write(out, source, train, validation, test, seed, fashion_mnist_dir)
    return manifest


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _summary(manifest: dict) -> str:
    counts = manifest["counts"]
    size = "x".join(str(s) for s in manifest["image_size"])
    return (
        f"train {counts['train']}, validation {counts['validation']}, test {counts['test']} "
        f"{size} grayscale PNGs, {len(manifest['labels'])} labels"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftk.data.image_examples",
        description="Write a real example image dataset as <out>/<split>/<label>/<NNNNN>.png.",
    )
    parser.add_argument("out", type=Path, help="output directory (must not exist, or be empty)")
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="fashion_mnist (Debian dataset-fashion-mnist), digits (scikit-learn), or auto: "
        "fashion_mnist when installed, else digits (default: %(default)s)",
    )
    parser.add_argument("--train", type=int, default=2000, help="default: %(default)s")
    parser.add_argument("--validation", type=int, default=500, help="default: %(default)s")
    parser.add_argument("--test", type=int, default=2000, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=42, help="default: %(default)s")
    parser.add_argument(
        "--fashion-mnist-dir", type=Path, default=FASHION_MNIST_DIR, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    try:
        manifest, reused = _write(
            args.out,
            args.source,
            args.train,
            args.validation,
            args.test,
            args.seed,
            args.fashion_mnist_dir,
        )
    except FtkError as e:
        print(f"ftk: error: {e}", file=sys.stderr)
        return 2
    how = " (auto)" if args.source == "auto" else ""
    print(f"ftk: source: {manifest['source']}{how}: {manifest['source_detail']}")
    for note in manifest["notes"]:
        print(f"ftk: note: {note}")
    if reused:
        print(f"ftk: reused {args.out}: already written with the same source, counts and seed")
    else:
        print(f"ftk: wrote {args.out}: {_summary(manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
