"""Write a real example image dataset as a class-folder tree, for demos and tests.

```
<out>/train/<label>/<NNNNN>.png
<out>/validation/<label>/<NNNNN>.png
<out>/test/<label>/<NNNNN>.png
<out>/ftk_example.json          # the manifest: source, counts, seed, labels, source indices
```

Sources (read by `ftk.data.example_sources`):

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
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ftk.data.example_sources import (  # reading the sources; the public names re-exported
    DIGITS_LABELS,  # noqa: F401
    FASHION_MNIST_DIR,
    FASHION_MNIST_FILES,  # noqa: F401
    FASHION_MNIST_LABELS,  # noqa: F401
    SOURCES,
    SPLITS,
    _load_digits,
    _load_fashion_mnist,
    _resolve_source,
    _Source,
    available_sources,  # noqa: F401
    read_idx,  # noqa: F401
)
from ftk.errors import ConfigError, DataError, FtkError

MANIFEST_NAME = "ftk_example.json"
MANIFEST_FORMAT = "ftk-example-images"
MANIFEST_VERSION = 1
# Manifest keys that decide whether an existing tree is the one these arguments would write.
IDENTITY_KEYS = ("format", "version", "source", "seed", "requested")

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
