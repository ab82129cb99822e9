"""Image examples: read `<label>/<image>` folders, CSV files of image paths or TFDS datasets,
check that every image decodes, split them, and feed them to Keras as a `tf.data` pipeline.

Every reader returns `Row`s whose input is an image's absolute path and whose origin names the
file (and CSV line) it came from, so an error can point at it. `check_images` decodes every
image once, up front, so a corrupt file stops the run before training starts (or is left out
with `on_bad="skip"`), never half-way through an epoch.

Example:

```python
splits = load_image_splits(config.data, config.resolve_path, seed=42)
splits.label_names                      # ["cat", "dog"]
train = image_dataset(splits.train, (224, 224), batch_size=32, shuffle_buffer=1000,
                      augment=AugmentConfig())
images, labels = next(iter(train))      # float32 [32, 224, 224, 3] in 0..255, int32 [32]
```

TensorFlow and Keras are imported inside the functions that need them, so importing this
module does not choose a Keras backend.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from ftk.config import AugmentConfig, DataConfig
from ftk.data.augment import augment_batch, augments
from ftk.data.csv_records import read_records
from ftk.data.splits import Examples, Row, Skipped, Splits, build_splits
from ftk.errors import ConfigError, DataError
from ftk.progress import progress

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
ON_BAD = ("error", "skip")
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)
MAX_LISTED = 20  # bad files listed in one error message
IMAGE_FORMATS = ("folder", "csv", "tfds")

# Leading bytes of the formats that `tf.io.decode_image` decodes correctly (see
# `decode_image_bytes`): JPEG, PNG, GIF. Anything else is decoded with Pillow.
_TF_SIGNATURES = ((b"\xff\xd8\xff", 3), (b"\x89PNG", 4), (b"GIF8", 4))
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _scan_class_folder(class_dir: Path) -> tuple[list[Row], list[Skipped]]:
    rows, skipped = [], []
    for entry in _visible(class_dir):
        if entry.is_dir():
            reason = "a folder inside a class folder (not read: images must sit in <label>/)"
            skipped.append(Skipped(str(entry), reason))
        elif not _is_image_name(entry):
            suffix = entry.suffix or "no suffix"
            skipped.append(Skipped(str(entry), f"not an image file ({suffix})"))
        else:
            path = os.path.abspath(entry)
            rows.append(Row(path, class_dir.name, path))
    return rows, skipped


def scan_image_folder(path: Path) -> tuple[list[Row], list[Skipped]]:
    """`<path>/<label>/<image>`: one example per image file, the folder name is the label.

    Hidden files and folders (names starting with ".") are ignored. Other files without an
    image suffix (`IMAGE_SUFFIXES`, any case) and folders nested in a class folder are returned
    as `Skipped`. A class folder without any image is an error naming it.

    Example:

    ```python
    rows, skipped = scan_image_folder(Path("flowers"))   # flowers/rose/1.jpg, ...
    rows[0].label, rows[0].input                          # ("rose", "/abs/flowers/rose/1.jpg")
    ```
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            "data.format='folder' needs a directory with one sub-folder of images per label. "
            f"Received: data.path={str(path)!r} (not a directory)"
        )
    class_dirs = [p for p in _visible(path) if p.is_dir()]
    if not class_dirs:
        raise DataError(
            f"No class folders found in {path}. Expected one sub-folder per label, each holding "
            f"image files ({' '.join(IMAGE_SUFFIXES)})."
        )
    rows, skipped, empty = [], [], []
    for class_dir in class_dirs:
        found, left_out = _scan_class_folder(class_dir)
        rows.extend(found)
        skipped.extend(left_out)
        if not found:
            empty.append(f"{class_dir} ({len(left_out)} other file(s))" if left_out else class_dir)
    if empty:
        raise DataError(
            f"Class folder(s) without images: {', '.join(map(str, empty))}. Each label folder "
            f"needs image files ({' '.join(IMAGE_SUFFIXES)}); add images or remove the folder."
        )
    return rows, skipped


def _resolve_listed(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return os.path.abspath(path if path.is_absolute() else base / path)


def _csv_row(value: str, label: str, where: str, base: Path) -> Row:
    if not value.strip():
        raise DataError(f"Empty image path at {where}. Every row needs an image path.")
    image = _resolve_listed(value.strip(), base)
    if not os.path.isfile(image):
        raise DataError(
            f"Image not found: {image} (listed at {where} as {value.strip()!r}; relative paths "
            f"are read from the CSV file's folder {base})."
        )
    return Row(image, label, where)


def read_image_csv(path: Path, path_column: str = "path", label_column: str = "label") -> list[Row]:
    """A CSV file with a header row: one image path and one label per row.

    Relative paths are resolved against the CSV file's folder; every listed file must exist.
    In a config, `data.image_column` names the path column and `data.label_column` the labels.

    Example:

    ```python
    # labels.csv:  path,label \\n  img/1.png,cat \\n  /data/2.jpg,dog
    rows = read_image_csv(Path("labels.csv"))
    rows[0].input, rows[0].origin        # ("/abs/img/1.png", "labels.csv:2")
    ```
    """
    path = Path(path)
    records = read_records(
        path,
        path_column,
        label_column,
        what="a CSV file of image paths and labels",
        input_key="data.image_column",
        input_role=" for the image paths",
        replace_hint=False,  # replacing bytes in a path cannot find the file
    )
    return [_csv_row(value, label, where, path.parent) for value, label, where in records]


# --------------------------------------------------------------------------------------------
# Checking every image up front
# --------------------------------------------------------------------------------------------


def image_problem(path: str) -> str | None:
    """Why the image at `path` cannot be used, or `None` when it decodes completely.

    Decodes all of it with Pillow (`Image.open` + `load`; `Image.verify` misses truncation).
    JPEGs are decoded at 1/8 scale (`draft`), which still reads every byte, so truncated and
    corrupt files are still caught, twice as fast. Pillow's global
    `ImageFile.LOAD_TRUNCATED_IMAGES = True`, if some code sets it, would let truncated
    files through.

    Example:

    ```python
    image_problem("cat.jpg")       # None
    image_problem("notes.png")     # "not an image (Pillow cannot identify its content)"
    ```
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as image:
            image.draft(None, (1, 1))
            image.load()
    except UnidentifiedImageError:
        return "not an image (Pillow cannot identify its content)"
    except Image.DecompressionBombError as e:
        return f"too large to decode safely ({e})"
    except Exception as e:  # any decoder failure makes the file unusable
        return f"corrupt or truncated ({type(e).__name__}: {e})"
    return None


def _bad_images_error(bad: list[tuple[Row, str]], total: int) -> DataError:
    lines = []
    for row, reason in bad[:MAX_LISTED]:
        where = "" if row.origin == row.input else f" (listed at {row.origin})"
        lines.append(f"  {row.input}{where}: {reason}")
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return DataError(
        f"{len(bad)} of {total} image(s) cannot be decoded:\n"
        + "\n".join(lines)
        + "\nFix or remove these files, or leave them out with data.on_bad_images='skip'."
    )


def check_images(
    rows: Iterable[Row], on_bad: str = "error", workers: int = DEFAULT_WORKERS
) -> tuple[list[Row], list[Skipped]]:
    """Decode every image once (`image_problem`); returns (usable rows, skipped files).

    `on_bad="error"` raises one `DataError` listing every bad file and why (the first
    `MAX_LISTED`, then a count); `on_bad="skip"` leaves them out and returns them as
    `Skipped`. Grayscale, palette, RGBA, CMYK and 16-bit images are fine: the pipeline
    converts them to RGB. Files are decoded by `workers` threads (Pillow releases the GIL
    while decoding); the output keeps the input order.

    Example:

    ```python
    rows, skipped = check_images(rows, on_bad="skip")
    for s in skipped:
        print(s.path, s.reason)
    ```
    """
    if on_bad not in ON_BAD:
        raise ConfigError(
            f"`on_bad` must be 'error' (stop and list every bad image) or 'skip' (leave them "
            f"out). Received: on_bad={on_bad!r}"
        )
    rows = list(rows)
    unique = list(dict.fromkeys(row.input for row in rows))
    bar_kw = {"total": len(unique), "desc": "Checking images", "unit": "image"}
    if workers > 1 and len(unique) > 1:
        with ThreadPoolExecutor(min(workers, len(unique))) as pool:
            found = progress(pool.map(image_problem, unique), **bar_kw)
            problems = dict(zip(unique, found, strict=True))
    else:
        problems = {path: image_problem(path) for path in progress(unique, **bar_kw)}
    bad = [(row, problems[row.input]) for row in rows if problems[row.input]]
    if bad and on_bad == "error":
        raise _bad_images_error(bad, len(rows))
    kept = [row for row in rows if not problems[row.input]]
    skipped = [
        Skipped(row.input, reason if row.origin == row.input else f"{reason} ({row.origin})")
        for row, reason in bad
    ]
    return kept, skipped


# --------------------------------------------------------------------------------------------
# Decoding in tf.data
# --------------------------------------------------------------------------------------------


def _check_image_size(image_size) -> tuple[int, int]:
    size = tuple(image_size) if isinstance(image_size, list | tuple) else ()
    if len(size) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size
    ):
        raise ConfigError(
            f"`image_size` must be two positive integers (height, width). "
            f"Received: image_size={image_size!r}"
        )
    return int(size[0]), int(size[1])


def pillow_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes with Pillow to a uint8 `[h, w, 3]` RGB array (first frame).

    16-bit grayscale (modes "I;16*", and "I", which Pillow also uses for it) is scaled to
    8 bits (value / 257, as TensorFlow does); Pillow's own `convert("RGB")` clips it to 255
    instead. Float images ("F") are clipped to 0..255. Alpha is dropped, as
    `tf.io.decode_image` does.

    Example:

    ```python
    pillow_rgb(Path("logo.webp").read_bytes()).shape     # (64, 64, 3)
    ```
    """
    if isinstance(data, np.ndarray):  # tf.numpy_function passes a 0-d object array
        data = data.item()
    with Image.open(io.BytesIO(data)) as image:
        if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
            values = np.asarray(image, dtype=np.float64)
            if image.mode != "F":
                values = values / 257.0
            gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=-1)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def decoded_by_tf_as_in_training(data: bytes) -> bool:
    """Whether encoded `data` is JPEG, PNG or GIF, which training and the served graph decode
    with the same TensorFlow op (other formats go through Pillow in training only)."""
    return any(data[:n] == magic for magic, n in _TF_SIGNATURES)


def _decoded_by_tf(data: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    matches = [tf.equal(tf.strings.substr(data, 0, n), magic) for magic, n in _TF_SIGNATURES]
    return tf.reduce_any(tf.stack(matches))


def _tf_rgb(data: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.io.decode_image(data, channels=3, expand_animations=False)


def _pillow_rgb_op(data: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    image = tf.numpy_function(pillow_rgb, [data], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def decode_image_bytes(data: tf.Tensor, pillow_fallback: bool = True) -> tf.Tensor:
    """Decode one encoded image (a scalar `tf.string`) to uint8 RGB `[h, w, 3]`; first frame.

    JPEG, PNG and GIF (told apart by their leading bytes) go through `tf.io.decode_image`,
    the op an exported serving graph uses, so training sees the same pixels as serving.
    It was checked against Pillow for each image mode: grayscale, LA, RGBA (alpha dropped),
    palette PNG (with or without transparency), CMYK JPEG, and 16-bit PNGs (scaled to 8 bits,
    where Pillow's `convert("RGB")` clips) all come out right.

    Everything else (BMP, WebP, TIFF and other formats Pillow reads under an image suffix)
    goes through Pillow in a `tf.numpy_function`, because TensorFlow 2.21 gets them wrong:
    palette BMPs decode to the palette *indices* as gray, with no error; 1-bit BMPs fail;
    WebP with alpha or animation fails with `channels=3`, and decoding an animated WebP
    corrupted the heap (the process aborted). Converting those files up front would need a
    cache folder and new paths; they are rare, so the slower Python path costs little.
    `pillow_fallback=False` gives a pure-graph decoder (for an exported model, which cannot
    hold Python code); it then has TensorFlow's limits above.

    GIFs: the first frame; its transparent pixels come out black (TensorFlow's choice).
    EXIF orientation is ignored, as `tf.io.decode_image` ignores it.

    Example:

    ```python
    image = decode_image_bytes(tf.io.read_file("cat.bmp"))   # uint8 [h, w, 3]
    ```
    """
    import tensorflow as tf

    if not pillow_fallback:
        return _tf_rgb(data)
    return tf.cond(_decoded_by_tf(data), lambda: _tf_rgb(data), lambda: _pillow_rgb_op(data))


def resize_image(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """An image tensor as float32 `image_size + (3,)` in [0, 255] (bilinear, antialiased).

    Example:

    ```python
    resize_image(tf.zeros([480, 640, 3], tf.uint8), (224, 224)).shape  # (224, 224, 3)
    ```
    """
    import tensorflow as tf

    height, width = _check_image_size(image_size)
    image = tf.image.resize(
        tf.cast(image, tf.float32), (height, width), method="bilinear", antialias=True
    )
    return tf.clip_by_value(image, 0.0, 255.0)


def decode_and_resize(path_tensor: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Read an image file in `tf.data`: float32 RGB `[h, w, 3]` in [0, 255], resized.

    `tf.io.read_file` → `decode_image_bytes` (which says how each format and mode is decoded,
    and why some go through Pillow) → bilinear, antialiased resize to `image_size`.

    Example:

    ```python
    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.map(lambda p: decode_and_resize(p, (224, 224)), num_parallel_calls=tf.data.AUTOTUNE)
    ```
    """
    import tensorflow as tf

    _check_image_size(image_size)
    return resize_image(decode_image_bytes(tf.io.read_file(path_tensor)), image_size)


# --------------------------------------------------------------------------------------------
# Augmentation and the dataset
# --------------------------------------------------------------------------------------------


def image_dataset(
    examples: Examples,
    image_size: tuple[int, int],
    batch_size: int,
    shuffle_buffer: int = 0,
    seed: int = 0,
    augment: AugmentConfig | None = None,
) -> tf.data.Dataset:
    """A batched, prefetched `tf.data.Dataset` of (float32 `[b, h, w, 3]` in 0..255, int32 `[b]`).

    Paths are shuffled (when `shuffle_buffer` > 0, reshuffled every epoch) before decoding, so
    the buffer holds strings, not images. Batches are augmented only when `augment` is given:
    pass it for training, never for validation, test or export.

    Example:

    ```python
    train = image_dataset(splits.train, (224, 224), 32, shuffle_buffer=1000, seed=42,
                          augment=AugmentConfig())
    val = image_dataset(splits.validation, (224, 224), 32)
    ```
    """
    import tensorflow as tf

    _check_image_size(image_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1. Received: batch_size={batch_size!r}")
    paths = tf.constant(list(examples.inputs), dtype=tf.string, shape=[len(examples)])
    labels = tf.constant(np.asarray(examples.labels, dtype=np.int32), shape=[len(examples)])
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle_buffer > 0 and len(examples) > 1:
        buffer = min(shuffle_buffer, len(examples))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda path, label: (decode_and_resize(path, image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size)
    if augments(augment):
        # Each batch carries its own seed (new ones every epoch, the same ones every run with
        # the same `seed`), so augmenting in parallel still draws the same numbers.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, key: (augment_batch(batch[0], key, augment), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# From a DataConfig to splits
# --------------------------------------------------------------------------------------------


def _read_tfds(
    config: DataConfig, value: str, resolve: Callable[[str], Path], split: str, required: bool
) -> tuple[list[Row] | None, list[Skipped]]:
    from ftk.data.tfds import load_tfds_images, tfds_source

    found = load_tfds_images(tfds_source(value, resolve), split, config, required=required)
    return found if found is not None else (None, [])


def _read(
    config: DataConfig, value: str, resolve: Callable[[str], Path]
) -> tuple[list[Row], list[Skipped]]:
    if config.format == "tfds":  # the "train" split of each TFDS source, as for text
        return _read_tfds(config, value, resolve, "train", required=True)
    path = resolve(value)
    if config.format == "folder":
        return scan_image_folder(path)
    return read_image_csv(path, config.image_column, config.label_column), []


def _check_format(config: DataConfig) -> None:
    if config.format not in IMAGE_FORMATS:
        raise DataError(
            f"Images are read from data.format='folder', 'csv' or 'tfds'. "
            f"Received: data.format={config.format!r}"
        )


def load_image_splits(
    config: DataConfig,
    resolve: Callable[[str], Path] = Path,
    seed: int = 42,
    workers: int = DEFAULT_WORKERS,
) -> Splits:
    """Read, check and split the images that `config` describes.

    `data.format` is "folder" (`<path>/<label>/<image>`), "csv", where `data.image_column`
    names the column of image paths and `data.label_column` the labels, or "tfds"
    (`ftk.data.tfds.load_tfds_images`: a catalog name, a prepared dataset directory or an
    ImageFolder `<split>/<label>/<image>` folder; `data.image_column` names the image
    feature). As for text, TFDS sources give their "train" split, and without
    `data.test_path` the dataset's own "test" split, when it has one, is the test set.
    `data.path`, `data.validation_path` and `data.test_path` are resolved with `resolve`
    (a TFDS name that is not a directory stays a name). Every image is
    decoded once (`check_images`, with `data.on_bad_images`) before the seeded, stratified
    split. `splits.skipped` lists the non-image files in class folders and, with "skip", the
    bad images left out.

    Example:

    ```python
    splits = load_image_splits(config.data, config.resolve_path, seed=42)
    splits.counts()["test"]          # {"cat": 20, "dog": 20}
    splits.skipped                   # [Skipped(path=".../notes.txt", reason="not an image ...")]
    ```
    """
    _check_format(config)
    skipped: list[Skipped] = []
    sources = {"pool": config.path, "validation": config.validation_path, "test": config.test_path}
    parts: dict[str, list[Row] | None] = dict.fromkeys(sources)
    for name, value in sources.items():
        if value:
            parts[name], left_out = _read(config, value, resolve)
            skipped.extend(left_out)
    if config.format == "tfds" and not config.test_path:  # the dataset's own test split
        parts["test"], left_out = _read_tfds(config, config.path, resolve, "test", required=False)
        skipped.extend(left_out)
    every = [row for rows in parts.values() for row in rows or []]
    _, bad = check_images(every, config.on_bad_images, workers)
    bad_paths = {s.path for s in bad}
    kept = {
        name: None if rows is None else [r for r in rows if r.input not in bad_paths]
        for name, rows in parts.items()
    }
    splits = build_splits(kept["pool"], kept["validation"], kept["test"], config, seed)
    splits.skipped = skipped + bad
    return splits
