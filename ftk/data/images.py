"""Image examples: read `<label>/<image>` folders, CSV files of image paths or TFDS datasets,
check that every image decodes, split them, and feed them to Keras as a `tf.data` pipeline.

Every reader returns `Row`s whose input is an image's absolute path and whose origin names the
file (and CSV line) it came from, so an error can point at it. `check_images` decodes every
image once, up front, so a corrupt file stops the run before training starts (or is left out
with `on_bad="skip"`), never half-way through an epoch. The folder and CSV readers and the
check live in `ftk.data.image_files` and are importable from here too.

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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ftk.config import AugmentConfig, DataConfig
from ftk.data.augment import augment_batch, augments
from ftk.data.image_files import (  # the readers and the up-front check, re-exported here
    DEFAULT_WORKERS,
    IMAGE_SUFFIXES,  # noqa: F401
    MAX_LISTED,  # noqa: F401
    ON_BAD,  # noqa: F401
    check_images,
    image_problem,  # noqa: F401
    read_image_csv,
    scan_image_folder,
)
from ftk.data.splits import Examples, Row, Skipped, Splits, build_splits
from ftk.errors import ConfigError, DataError

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_FORMATS = ("folder", "csv", "tfds")

# Leading bytes of the formats that `tf.io.decode_image` decodes correctly (see
# `decode_image_bytes`): JPEG, PNG, GIF. Anything else is decoded with Pillow.
_TF_SIGNATURES = ((b"\xff\xd8\xff", 3), (b"\x89PNG", 4), (b"GIF8", 4))
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


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
