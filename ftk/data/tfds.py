"""TensorFlow Datasets as a text or image source: a catalog name, or a prepared dataset's
directory; for images also a folder in `tfds.folder_dataset.ImageFolder` layout.

A catalog name that is not yet prepared in the TFDS data directory must be downloaded; TFDS
retries for minutes when offline, so ftk probes the network first and fails in seconds.

The image pipeline reads image files by path, so the encoded images of a TFDS dataset are
written once to a per-user cache (`$FTK_CACHE`, else `~/.cache/ftk`):
`tfds-images/<name>[/<config>]/<version>/<split>/<label>/<index>.<ext>`.

Example:

```python
rows, skipped = load_tfds_images("beans", "train", DataConfig(image_column="image"))
rows[0].input      # ".../tfds-images/beans/0.1.0/train/healthy/0.jpg"
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ftk.config import DataConfig
from ftk.data.splits import Row, Skipped
from ftk.errors import DataError
from ftk.files import write_atomic
from ftk.presets.resolve import host_reachable
from ftk.progress import progress

DOWNLOAD_HOST = "storage.googleapis.com"
IMAGE_CACHE = "tfds-images"  # under ftk's cache root
# Leading bytes -> file extension of the cached image; anything else is written as ".img".
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_IMAGE_FOLDER_HINT = (
    " For images, data.path may also be a folder in tfds.folder_dataset.ImageFolder layout: "
    "<split>/<label>/<image>, with at least a train/ split."
)


def tfds_source(path_value: str, resolve: Callable[[str], Path] = Path) -> str:
    """A directory (resolved like other paths) when `path_value` names one, else a catalog name.

    Example:

    ```python
    tfds_source("data/beans_prepared", config.resolve_path)   # "/abs/project/data/beans_..."
    tfds_source("beans", config.resolve_path)                 # "beans"
    ```
    """
    path = resolve(path_value)
    return str(path) if path.is_dir() else path_value


def _builder(name_or_dir: str, hint: str = ""):
    import tensorflow_datasets as tfds

    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        try:
            return tfds.builder_from_directory(str(path))
        except Exception as e:  # TFDS raises several types for a bad directory
            raise DataError(
                f"{path} is not a prepared TFDS dataset directory (with dataset_info.json): {e}"
                + hint
            ) from None
    try:
        builder = tfds.builder(name_or_dir)
    except Exception as e:  # DatasetNotFoundError and friends
        raise DataError(
            f"Unknown TFDS dataset. Received: data.path={name_or_dir!r}. {str(e).splitlines()[0]}"
        ) from None
    if not builder.is_prepared():
        if not host_reachable(DOWNLOAD_HOST):
            raise DataError(
                f"TFDS dataset {name_or_dir!r} is not prepared in {builder.data_dir} and this "
                f"machine cannot reach {DOWNLOAD_HOST} to download it. Prepare it where you "
                "are online (`tfds build NAME`) and copy the data directory here, or set "
                "data.path to a prepared dataset directory."
            )
        builder.download_and_prepare()
    return builder


def _missing_feature(source: str, features, key: str, column: str, hint: str = "") -> DataError:
    return DataError(
        f"TFDS dataset {source!r} has no feature {column!r} (set by {key}). "
        f"Features: {list(features.keys())}.{hint} Received: {key}={column!r}"
    )


def load_tfds_split(name_or_dir: str, split: str, config: DataConfig):
    """`([(text, label), ...], label_names)` of one split, or `(None, names)` if it is absent."""
    import tensorflow_datasets as tfds

    builder = _builder(name_or_dir)
    features = builder.info.features
    for key, column in (
        ("data.text_column", config.text_column),
        ("data.label_column", config.label_column),
    ):
        if column not in features:
            raise _missing_feature(name_or_dir, features, key, column)
    label_feature = features[config.label_column]
    names = list(getattr(label_feature, "names", []) or [])
    prepared_splits = set(builder.info.splits.keys())
    if prepared_splits and split not in prepared_splits:
        return None, names
    ds = builder.as_dataset(split=split)
    records = [
        (ex[config.text_column], int(ex[config.label_column]) if names else ex[config.label_column])
        for ex in tfds.as_numpy(ds)
    ]
    return records, names


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def image_extension(data: bytes) -> str:
    """The file extension for encoded image bytes, told by their leading bytes ("img" if unknown).

    Example:

    ```python
    image_extension(Path("cat.jpg").read_bytes())     # "jpg"
    image_extension(b"GIF89a...")                       # "gif"
    ```
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _IMAGE_MAGIC if data.startswith(magic)), "img")


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_folder_root(path: Path) -> bool:
    """Whether `path` is a folder in ImageFolder layout (`<split>/<label>/<image>`).

    That is: a directory without `dataset_info.json` (which marks a prepared TFDS dataset)
    with at least one sub-folder that holds sub-folders.

    Example:

    ```python
    is_image_folder_root(Path("flowers"))      # True for flowers/train/rose/1.jpg, ...
    ```
    """
    path = Path(path).expanduser()
    if not path.is_dir() or (path / "dataset_info.json").exists():
        return False
    return any(_visible_dirs(split) for split in _visible_dirs(path))


def _missing_split(source: str, split: str, found: list[str]) -> DataError:
    return DataError(
        f"TFDS source {source!r} has no {split!r} split. ftk reads the {split!r} split of each "
        f"TFDS source (data.path, data.validation_path, data.test_path). Splits found: "
        f"{sorted(found)}. Received: {source!r}"
    )


def _image_folder_split(root: Path, split: str, required: bool):
    from ftk.data.image_files import scan_image_folder

    split_dir = root / split
    if not split_dir.is_dir():
        if required:
            raise _missing_split(str(root), split, [p.name for p in _visible_dirs(root)])
        return None
    return scan_image_folder(split_dir)


def _image_label_names(builder, source: str, config: DataConfig) -> list[str]:
    """Checks `data.image_column` and `data.label_column`; the ClassLabel names, else []."""
    import numpy as np
    import tensorflow_datasets as tfds

    features = builder.info.features
    column = config.image_column
    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    hint = f" Image features: {images}; set data.image_column to one of them."
    if column not in features:
        raise _missing_feature(source, features, "data.image_column", column, hint)
    feature = features[column]
    if not isinstance(feature, tfds.features.Image):
        raise DataError(
            f"Feature {column!r} of TFDS dataset {source!r} is a {type(feature).__name__}, not "
            f"an image (tfds.features.Image).{hint} Received: data.image_column={column!r}"
        )
    if np.dtype(feature.np_dtype) not in (np.uint8, np.uint16):
        raise DataError(
            f"Image feature {column!r} of TFDS dataset {source!r} holds "
            f"{np.dtype(feature.np_dtype)} images; ftk reads 8- and 16-bit integer images. "
            f"Received: data.image_column={column!r}"
        )
    if config.label_column not in features:
        raise _missing_feature(source, features, "data.label_column", config.label_column)
    return list(getattr(features[config.label_column], "names", []) or [])


def _label_name(value, names: list[str]) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if names:
        return names[int(value)]
    return str(value.item() if hasattr(value, "item") else value)


def _safe_name(label: str) -> str:
    """A folder name for a label: only letters, digits, "_", "-" and "."; never "." or ".."."""
    return re.sub(r"[^\w.-]+", "_", label).strip(".") or "_"


def _write_once(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, unless the file already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def image_cache_dir(builder, split: str) -> Path:
    """Where the images of one split of a TFDS dataset are cached.

    Example:

    ```python
    image_cache_dir(tfds.builder("beans"), "train")   # ~/.cache/ftk/tfds-images/beans/0.1.0/train
    ```
    """
    from ftk.convert.efficientnet_lite import cache_root

    return cache_root() / IMAGE_CACHE / builder.info.full_name / split


def _cached_rows(builder, source: str, split: str, config: DataConfig, names: list[str]):
    import tensorflow_datasets as tfds

    images = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)]
    decoders = {k: tfds.decode.SkipDecoding() for k in images}  # the encoded bytes
    directory = image_cache_dir(builder, split)
    dataset = builder.as_dataset(split=split, decoders=decoders)
    splits = builder.info.splits
    examples = progress(
        tfds.as_numpy(dataset),
        total=splits[split].num_examples if split in splits else None,
        desc=f"Writing {builder.info.name} {split} images",
        unit="image",
    )
    rows = []
    for index, example in enumerate(examples):
        data = example[config.image_column]
        label = _label_name(example[config.label_column], names)
        path = directory / _safe_name(label) / f"{index}.{image_extension(data)}"
        _write_once(path, data)
        rows.append(Row(os.path.abspath(path), label, f"tfds {source}[{split}] #{index}"))
    return rows


def load_tfds_images(
    name_or_dir: str, split: str, config: DataConfig, required: bool = False
) -> tuple[list[Row], list[Skipped]] | None:
    """`(rows, skipped)` of one split of a TFDS image source; `None` if it has no such split.

    `name_or_dir` is a catalog name (prepared on first use, which needs the network), a
    prepared dataset directory, or a folder in `tfds.folder_dataset.ImageFolder` layout
    (`<split>/<label>/<image>`). ImageFolder folders are read in place with
    `scan_image_folder` on `<split>/`: rows point at the original files, every image suffix
    that ftk reads is kept and other files are returned as skipped (ImageFolder itself keeps
    only .jpg/.jpeg/.png and drops the rest silently). From a TFDS dataset, the encoded bytes
    of `data.image_column` (a `tfds.features.Image`) are written once to
    `image_cache_dir(builder, split)/<label>/<index>.<ext>` and reused while unchanged.
    ClassLabel ids become their names. `required=True` raises a `DataError` naming the
    splits found instead of returning `None`.

    Example:

    ```python
    config = DataConfig(format="tfds", path="beans", image_column="image")
    rows, _ = load_tfds_images("beans", "train", config)
    rows[0].label, rows[0].origin      # ("healthy", "tfds beans[train] #0")
    ```
    """
    path = Path(name_or_dir).expanduser()
    if is_image_folder_root(path):
        return _image_folder_split(path, split, required)
    builder = _builder(name_or_dir, hint=_IMAGE_FOLDER_HINT)
    names = _image_label_names(builder, name_or_dir, config)
    prepared = list(builder.info.splits.keys())
    if prepared and split not in prepared:
        if required:
            raise _missing_split(name_or_dir, split, prepared)
        return None
    return _cached_rows(builder, name_or_dir, split, config, names), []
