"""Image data: folder and CSV readers, the up-front decode check, decoding every image mode to
RGB (as the served graph decodes), the tf.data pipeline with augmentation, and
`load_image_splits`.

Every image is written by the test with Pillow in `tmp_path`; nothing touches the network.
"""

import io
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, features

from ftk.config import DataConfig
from ftk.data.augment import affine_transforms, augment_batch, augments
from ftk.data.images import (
    IMAGE_SUFFIXES,
    MAX_LISTED,
    AugmentConfig,
    Skipped,
    check_images,
    decode_and_resize,
    image_dataset,
    load_image_splits,
    read_image_csv,
    scan_image_folder,
)
from ftk.data.splits import Examples, Row
from ftk.errors import ConfigError, DataError, FtkError

RED, GREEN, BLUE = (220, 20, 30), (20, 200, 60), (30, 40, 210)
COLOURS = {"apple": RED, "leaf": GREEN, "sky": BLUE}
needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def solid(path: Path, colour=RED, size=(12, 9), mode="RGB", **kwargs) -> Path:
    return save(path, Image.new(mode, size, colour), **kwargs)


def noise_jpeg(path: Path, size=(64, 48), seed=0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    return save(path, Image.fromarray(pixels), format="JPEG", quality=90)


def truncated_jpeg(path: Path) -> Path:
    data = noise_jpeg(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def colour_folder(root: Path, per_class: int = 5) -> Path:
    """`<root>/<label>/<i>.png`, each class one solid colour, sizes varying per image."""
    for label, colour in COLOURS.items():
        for i in range(per_class):
            solid(root / label / f"{i}.png", colour, size=(10 + i, 7 + 2 * i))
    return root


def examples_of(rows: list[Row]) -> tuple[Examples, list[str]]:
    names = sorted({row.label for row in rows})
    labels = np.asarray([names.index(row.label) for row in rows], np.int32)
    return Examples([row.input for row in rows], labels), names


def decode(path: Path, size=(4, 6)) -> np.ndarray:
    import tensorflow as tf

    image = decode_and_resize(tf.constant(str(path)), size)
    assert image.dtype == tf.float32
    return image.numpy()


def batches(ds) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------------
# scan_image_folder
# --------------------------------------------------------------------------------------------


def test_scan_folder_reads_images_and_reports_skipped_files(tmp_path):
    root = tmp_path / "data"
    cat_b = solid(root / "cat" / "b.png")
    cat_a = solid(root / "cat" / "A.JPG", format="JPEG")  # suffixes are case-insensitive
    dog = solid(root / "dog" / "x.bmp")
    (root / "cat" / "notes.txt").write_text("not an image", encoding="utf-8")
    solid(root / "cat" / ".hidden.png")
    solid(root / "cat" / "nested" / "deep.png")
    solid(root / ".git" / "img.png")  # hidden folder: not a class
    solid(root / "top.png")  # a file at the top level is not a class

    rows, skipped = scan_image_folder(root)

    assert rows == [
        Row(str(cat_a), "cat", str(cat_a)),
        Row(str(cat_b), "cat", str(cat_b)),
        Row(str(dog), "dog", str(dog)),
    ]
    assert all(Path(row.input).is_absolute() for row in rows)
    assert [(Path(s.path).name, s.reason.split(" (")[0]) for s in skipped] == [
        ("nested", "a folder inside a class folder"),
        ("notes.txt", "not an image file"),
    ]
    assert ".txt" in skipped[1].reason


def test_image_suffixes():
    assert set(IMAGE_SUFFIXES) == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def test_scan_folder_empty_class_folder_is_named(tmp_path):
    solid(tmp_path / "cat" / "a.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "fish").mkdir()
    (tmp_path / "fish" / "readme.txt").write_text("no images here", encoding="utf-8")

    with pytest.raises(DataError, match="without images") as info:
        scan_image_folder(tmp_path)

    message = str(info.value)
    assert str(tmp_path / "dog") in message
    assert f"{tmp_path / 'fish'} (1 other file(s))" in message
    assert str(tmp_path / "cat") not in message


def test_scan_folder_without_class_folders(tmp_path):
    solid(tmp_path / "loose.png")
    (tmp_path / ".hidden").mkdir()

    with pytest.raises(DataError, match="No class folders found") as info:
        scan_image_folder(tmp_path)
    assert str(tmp_path) in str(info.value)

    with pytest.raises(DataError, match="not a directory") as info:
        scan_image_folder(tmp_path / "missing")
    assert "data.format='folder'" in str(info.value)


# --------------------------------------------------------------------------------------------
# read_image_csv
# --------------------------------------------------------------------------------------------


def test_read_image_csv_resolves_paths_against_the_csv_folder(tmp_path):
    relative = solid(tmp_path / "csvdir" / "img" / "1.png")
    absolute = solid(tmp_path / "elsewhere" / "2.jpg", format="JPEG")
    path = tmp_path / "csvdir" / "labels.csv"
    path.write_text(
        f"id,file,kind\n1,img/1.png, cat \n2,{absolute},dog\n3,./img/../img/1.png,cat\n",
        encoding="utf-8",
    )

    rows = read_image_csv(path, path_column="file", label_column="kind")

    assert rows == [
        Row(str(relative), "cat", f"{path}:2"),
        Row(str(absolute), "dog", f"{path}:3"),
        Row(str(relative), "cat", f"{path}:4"),  # normalised, so duplicates are found
    ]


@pytest.mark.parametrize(
    ("path_column", "label_column", "key", "missing"),
    [
        ("image", "label", "data.image_column", "image"),
        ("path", "kind", "data.label_column", "kind"),
    ],
)
def test_read_image_csv_missing_column(tmp_path, path_column, label_column, key, missing):
    path = tmp_path / "d.csv"
    path.write_text("path,label\na.png,cat\n", encoding="utf-8")

    with pytest.raises(DataError) as info:
        read_image_csv(path, path_column, label_column)

    message = str(info.value)
    assert str(path) in message
    assert f"no column {missing!r}" in message
    assert "Columns found: ['path', 'label']" in message
    assert f"{key}={missing!r}" in message


def test_read_image_csv_empty_label_names_the_line(tmp_path):
    solid(tmp_path / "a.png")
    path = tmp_path / "gap.csv"
    path.write_text("path,label\na.png,cat\na.png,  \n", encoding="utf-8")

    with pytest.raises(DataError, match="Empty label") as info:
        read_image_csv(path)
    assert f"{path}:3" in str(info.value)


def test_read_image_csv_missing_file_names_it_and_the_line(tmp_path):
    solid(tmp_path / "a.png")
    path = tmp_path / "d.csv"
    path.write_text("path,label\na.png,cat\nphotos/gone.jpg,dog\n", encoding="utf-8")

    with pytest.raises(DataError, match="Image not found") as info:
        read_image_csv(path)

    message = str(info.value)
    assert str(tmp_path / "photos" / "gone.jpg") in message
    assert f"{path}:3" in message


def test_read_image_csv_short_row_and_not_a_file(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("path,label\nlonely.png\n", encoding="utf-8")
    with pytest.raises(DataError, match="fewer columns") as info:
        read_image_csv(path)
    assert f"{path}:2" in str(info.value)

    with pytest.raises(DataError, match="not a file"):
        read_image_csv(tmp_path)


# --------------------------------------------------------------------------------------------
# check_images
# --------------------------------------------------------------------------------------------


@pytest.fixture
def mixed_rows(tmp_path) -> tuple[list[Row], dict[str, Path]]:
    """Good images and the three kinds of bad file, interleaved."""
    files = {
        "good1": solid(tmp_path / "a" / "good1.png"),
        "truncated": truncated_jpeg(tmp_path / "a" / "truncated.jpg"),
        "good2": noise_jpeg(tmp_path / "a" / "good2.jpg"),
        "text": tmp_path / "b" / "text.png",
        "empty": tmp_path / "b" / "empty.jpg",
        "good3": solid(tmp_path / "b" / "good3.gif", GREEN),
    }
    files["text"].parent.mkdir(parents=True, exist_ok=True)
    files["text"].write_text("this is not a PNG\n", encoding="utf-8")
    files["empty"].write_bytes(b"")
    rows = [Row(str(p), p.parent.name, str(p)) for p in files.values()]
    return rows, files


def test_check_images_error_lists_every_bad_file(mixed_rows):
    rows, files = mixed_rows

    with pytest.raises(DataError) as info:
        check_images(rows, on_bad="error")

    message = str(info.value)
    assert message.startswith("3 of 6 image(s) cannot be decoded")
    assert f"{files['truncated']}: corrupt or truncated" in message
    assert f"{files['text']}: not an image" in message
    assert f"{files['empty']}: empty file (0 bytes)" in message
    assert "good" not in message
    assert "data.on_bad_images='skip'" in message
    assert isinstance(info.value, FtkError)


@pytest.mark.parametrize("workers", [1, 4])
def test_check_images_skip_keeps_good_images_in_order(mixed_rows, workers):
    rows, files = mixed_rows

    kept, skipped = check_images(rows, on_bad="skip", workers=workers)

    assert [Path(r.input).stem for r in kept] == ["good1", "good2", "good3"]
    assert [Path(s.path).stem for s in skipped] == ["truncated", "text", "empty"]
    assert all(isinstance(s, Skipped) and s.reason for s in skipped)


def test_check_images_caps_the_listing_and_names_csv_lines(tmp_path):
    rows = []
    for i in range(MAX_LISTED + 5):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")
        rows.append(Row(str(tmp_path / f"{i:02d}.png"), "x", f"list.csv:{i + 2}"))

    with pytest.raises(DataError) as info:
        check_images(rows)

    message = str(info.value)
    assert "... and 5 more" in message
    assert message.count("empty file") == MAX_LISTED
    assert f"{tmp_path / '00.png'} (listed at list.csv:2)" in message

    _, skipped = check_images(rows, on_bad="skip")
    assert skipped[0] == Skipped(str(tmp_path / "00.png"), "empty file (0 bytes) (list.csv:2)")


def test_check_images_rejects_unknown_on_bad():
    with pytest.raises(ConfigError, match=r"Received: on_bad='ignore'"):
        check_images([], on_bad="ignore")


# --------------------------------------------------------------------------------------------
# Every image mode decodes to RGB (decode_and_resize), and passes check_images
# --------------------------------------------------------------------------------------------


def sixteen_bit_rgb_png(path: Path) -> Path:
    import tensorflow as tf

    pixels = np.zeros((6, 5, 3), np.uint16)
    pixels[...] = (40000, 10000, 65535)
    path.write_bytes(tf.io.encode_png(tf.constant(pixels)).numpy())
    return path


def animated(path: Path, **kwargs) -> Path:
    frames = [Image.new("RGB", (8, 6), colour) for colour in (RED, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], **kwargs)
    return path


def palette(colour, transparent: bool = False) -> Image.Image:
    image = Image.new("RGB", (8, 6), colour).convert("P", palette=Image.Palette.ADAPTIVE)
    if transparent:
        image.info["transparency"] = 0
    return image


def tiff_named_jpg(path: Path) -> Path:
    return save(path, Image.new("RGB", (8, 6), GREEN), format="TIFF")


# name: (write the file, expected RGB, tolerance)
MODES = {
    "gray.png": (lambda p: solid(p, 100, mode="L"), (100, 100, 100), 0),
    "gray.jpg": (lambda p: solid(p, 100, mode="L"), (100, 100, 100), 2),
    "gray_alpha.png": (lambda p: solid(p, (100, 40), mode="LA"), (100, 100, 100), 0),
    "rgba.png": (lambda p: solid(p, (*RED, 128), mode="RGBA"), RED, 0),  # alpha dropped
    "palette.png": (lambda p: save(p, palette(GREEN)), GREEN, 0),
    "palette_transparent.png": (lambda p: save(p, palette(GREEN, True), transparency=0), GREEN, 0),
    "one_bit.png": (lambda p: solid(p, 1, mode="1"), (255, 255, 255), 0),
    "gray16.png": (lambda p: solid(p, 40000, mode="I;16"), (156, 156, 156), 0),
    "rgb16.png": (sixteen_bit_rgb_png, (156, 39, 255), 0),
    "rgb.jpg": (lambda p: solid(p, RED, quality=95), RED, 3),
    "palette.bmp": (lambda p: save(p, palette(BLUE)), BLUE, 0),
    "one_bit.bmp": (lambda p: solid(p, 1, mode="1"), (255, 255, 255), 0),
    "rgba.bmp": (lambda p: solid(p, (*RED, 128), mode="RGBA"), RED, 0),
    "animated.gif": (animated, RED, 0),  # first frame
    "tiff_inside.jpg": (tiff_named_jpg, GREEN, 0),
}
WEBP_MODES = {
    "rgba.webp": (lambda p: solid(p, (*RED, 128), mode="RGBA", lossless=True), RED, 0),
    "gray.webp": (lambda p: solid(p, 100, mode="L", lossless=True), (100, 100, 100), 0),
    "animated.webp": (lambda p: animated(p, lossless=True), RED, 0),
}
ALL_MODES = [pytest.param(name, id=name) for name in MODES] + [
    pytest.param(name, id=name, marks=needs_webp) for name in WEBP_MODES
]


@pytest.mark.parametrize("name", ALL_MODES)
def test_every_image_mode_decodes_to_rgb(tmp_path, name):
    write, expected, tolerance = {**MODES, **WEBP_MODES}[name]
    path = write(tmp_path / name)

    image = decode(path, size=(4, 6))

    assert image.shape == (4, 6, 3)
    assert np.abs(image - np.asarray(expected, np.float32)).max() <= tolerance + 1e-3
    assert check_images([Row(str(path), "x", str(path))]) == ([Row(str(path), "x", str(path))], [])


@pytest.mark.parametrize("cmyk", [(0, 255, 255, 0), (30, 60, 90, 20), (200, 10, 100, 60)])
def test_cmyk_jpeg_matches_pillow(tmp_path, cmyk):
    path = solid(tmp_path / "cmyk.jpg", cmyk, mode="CMYK", quality=95)
    with Image.open(path) as image:
        assert image.mode == "CMYK"
        expected = np.asarray(image.convert("RGB"), np.float32)[0, 0]

    assert np.abs(decode(path) - expected).max() <= 2


def test_tensorflow_alone_decodes_palette_bmp_wrongly(tmp_path):
    """Why BMPs go through Pillow (if this fails, TensorFlow fixed it)."""
    import tensorflow as tf

    data = save(tmp_path / "p.bmp", palette(BLUE)).read_bytes()
    tf_pixel = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()[0, 0]
    assert tuple(tf_pixel) != BLUE
    assert tuple(decode(tmp_path / "p.bmp")[0, 0].astype(int)) == BLUE


def test_decode_and_resize_keeps_detail_and_range(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, 30:] = 255  # left half black, right half white
    path = save(tmp_path / "half.png", Image.fromarray(pixels))

    image = decode(path, size=(10, 20))

    assert image.shape == (10, 20, 3)
    assert image.min() >= 0.0 and image.max() <= 255.0
    assert np.all(image[:, :8] == 0.0) and np.all(image[:, 12:] == 255.0)


def test_decode_and_resize_rejects_a_bad_size(tmp_path):
    with pytest.raises(ConfigError, match=r"image_size=\(224,\)"):
        decode(solid(tmp_path / "a.png"), size=(224,))


# --------------------------------------------------------------------------------------------
# image_dataset
# --------------------------------------------------------------------------------------------


def assert_pairs_match(images: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    for image, label in zip(images, labels, strict=True):
        expected = np.asarray(COLOURS[names[label]], np.float32)
        assert np.abs(image - expected).max() < 1e-3


def test_image_dataset_shapes_dtypes_and_order(tmp_path):
    import tensorflow as tf

    rows, _ = scan_image_folder(colour_folder(tmp_path))
    examples, names = examples_of(rows)

    ds = image_dataset(examples, (8, 10), batch_size=4)

    image_spec, label_spec = ds.element_spec
    assert image_spec.dtype == tf.float32 and image_spec.shape.as_list() == [None, 8, 10, 3]
    assert label_spec.dtype == tf.int32
    images, labels = batches(ds)
    assert images.shape == (15, 8, 10, 3)
    assert labels.tolist() == examples.labels.tolist()  # no shuffle: input order
    assert_pairs_match(images, labels, names)


def test_image_dataset_shuffle_keeps_images_with_their_labels(tmp_path):
    rows, _ = scan_image_folder(colour_folder(tmp_path))
    examples, names = examples_of(rows)

    ds = image_dataset(examples, (6, 6), batch_size=4, shuffle_buffer=100, seed=3)
    first_images, first = batches(ds)
    _, second = batches(ds)

    assert sorted(first.tolist()) == sorted(examples.labels.tolist())
    assert first.tolist() != examples.labels.tolist()  # shuffled
    assert first.tolist() != second.tolist()  # reshuffled each epoch
    assert_pairs_match(first_images, first, names)


def test_image_dataset_empty_split():
    ds = image_dataset(Examples(), (8, 8), batch_size=4)
    assert list(ds) == []


def asymmetric_examples(tmp_path, n: int = 16) -> Examples:
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:, 8:] = 255
    paths = [str(save(tmp_path / f"{i}.png", Image.fromarray(pixels))) for i in range(n)]
    return Examples(paths, np.zeros([n], np.int32))


def test_augmentation_only_when_requested(tmp_path):
    examples = asymmetric_examples(tmp_path)
    flip_only = AugmentConfig(flip=True, rotation=0.0, zoom=0.0, contrast=0.0)

    plain, _ = batches(image_dataset(examples, (16, 16), batch_size=8))
    flipped, _ = batches(image_dataset(examples, (16, 16), batch_size=8, seed=1, augment=flip_only))

    assert np.all(plain[:, :, :8] == 0) and np.all(plain[:, :, 8:] == 255)
    mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(flipped == plain, axis=(1, 2, 3))
    assert np.all(mirrored | unchanged)
    assert mirrored.any() and unchanged.any()


def test_full_augmentation_stays_in_range(tmp_path):
    import tensorflow as tf

    examples = asymmetric_examples(tmp_path, n=8)
    strong = AugmentConfig(rotation=0.2, zoom=0.3, contrast=0.9)

    ds = image_dataset(examples, (16, 16), batch_size=4, seed=0, augment=strong)

    assert ds.element_spec[0].dtype == tf.float32
    images, labels = batches(ds)
    assert images.shape == (8, 16, 16, 3) and labels.tolist() == [0] * 8
    assert images.min() >= 0.0 and images.max() <= 255.0
    assert not np.all(images[:, :, :8] == 0)  # rotation, zoom or contrast moved pixels


def transform(images: np.ndarray, flip: float, angle: float, scale: float) -> np.ndarray:
    import tensorflow as tf

    b, h, w, _ = images.shape
    fill = lambda value: tf.fill([b], float(value))  # noqa: E731
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=affine_transforms(fill(flip), fill(angle), fill(scale), h, w),
        output_shape=[h, w],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    ).numpy()


def test_one_affine_transform_equals_the_keras_layers():

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 20, 28, 3)).astype("float32")
    rotated = keras.layers.RandomRotation((0.07, 0.07))(images, training=True)
    zoomed_out = keras.layers.RandomZoom((0.2, 0.2))(images, training=True)
    zoomed_in = keras.layers.RandomZoom((-0.15, -0.15))(images, training=True)

    np.testing.assert_allclose(transform(images, 1, 2 * np.pi * 0.07, 1), rotated, atol=1e-2)
    np.testing.assert_allclose(transform(images, 1, 0, 1.2), zoomed_out, atol=1e-2)
    np.testing.assert_allclose(transform(images, 1, 0, 0.85), zoomed_in, atol=1e-2)
    np.testing.assert_array_equal(transform(images, -1, 0, 1), images[:, :, ::-1])
    # Composed in the layers' order: flip first, then rotate (a quarter turn, nearest pixels).
    square = images[:, :16, :16]
    quarter = keras.layers.RandomRotation((0.25, 0.25), interpolation="nearest")
    expected = quarter(square[:, :, ::-1], training=True)
    np.testing.assert_allclose(transform(square, -1, np.pi / 2, 1), expected, atol=1e-2)


def test_augment_batch_draws_from_its_seed():
    import tensorflow as tf

    images = tf.constant(np.random.default_rng(1).uniform(0, 255, (4, 12, 12, 3)), tf.float32)
    strong = AugmentConfig(rotation=0.2, zoom=0.3, contrast=0.9)

    def run(seed, config=strong, images=images):
        return augment_batch(images, tf.constant(seed, tf.int64), config).numpy()

    np.testing.assert_array_equal(run(5), run(5))
    unknown_size = tf.function(  # a graph where the image size is not known until it runs
        lambda x, key: augment_batch(x, key, strong),
        input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([], tf.int64)],
    )
    np.testing.assert_allclose(unknown_size(images, tf.constant(5, tf.int64)), run(5), atol=1e-3)
    assert np.abs(run(5) - run(6)).max() > 1.0
    assert run(5).min() >= 0.0 and run(5).max() <= 255.0
    contrast_only = AugmentConfig(flip=False, rotation=0, zoom=0, contrast=0.5)
    grey = images * 0.2 + 100.0  # no pixel leaves 0..255 at contrast 1.5
    changed = run(5, contrast_only, grey)
    # Contrast keeps each image's channel means, and scales the spread around them.
    np.testing.assert_allclose(changed.mean(axis=(1, 2)), grey.numpy().mean(axis=(1, 2)), atol=1e-3)
    assert not np.allclose(changed.std(axis=(1, 2)), grey.numpy().std(axis=(1, 2)))
    assert augments(AugmentConfig()) and augments(contrast_only)
    assert not augments(AugmentConfig(flip=False, rotation=0, zoom=0, contrast=0))
    assert not augments(None)


def test_augmented_pipeline_is_reproducible_and_new_every_epoch(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (16, 16, 3), np.uint8)
    paths = [str(save(tmp_path / f"{i}.png", Image.fromarray(pixels))) for i in range(12)]
    examples = Examples(paths, np.zeros([12], np.int32))

    def pipeline(seed):
        return image_dataset(
            examples, (16, 16), batch_size=4, shuffle_buffer=12, seed=seed, augment=AugmentConfig()
        )

    ds = pipeline(7)
    first, second = batches(ds)[0], batches(ds)[0]
    again = batches(pipeline(7))[0]
    other = batches(pipeline(8))[0]

    np.testing.assert_array_equal(first, again)  # the same seed, the same run
    assert np.abs(first - second).max() > 1.0  # a new epoch draws anew
    assert np.abs(first - other).max() > 1.0


# --------------------------------------------------------------------------------------------
# load_image_splits
# --------------------------------------------------------------------------------------------


def test_load_image_splits_from_a_folder(tmp_path):
    root = colour_folder(tmp_path / "images", per_class=10)
    (root / "sky" / "readme.txt").write_text("about the sky photos", encoding="utf-8")
    config = DataConfig(format="folder", path="images", validation_split=0.2, test_split=0.2)

    splits = load_image_splits(config, resolve=lambda v: tmp_path / v, seed=7)

    assert splits.label_names == ["apple", "leaf", "sky"]
    assert splits.counts() == {
        "train": {"apple": 6, "leaf": 6, "sky": 6},
        "validation": {"apple": 2, "leaf": 2, "sky": 2},
        "test": {"apple": 2, "leaf": 2, "sky": 2},
    }
    for split in (splits.train, splits.validation, splits.test):
        for path, label in zip(split.inputs, split.labels, strict=True):
            assert Path(path).is_absolute() and Path(path).parent.name == splits.label_names[label]
    assert [Path(s.path).name for s in splits.skipped] == ["readme.txt"]
    again = load_image_splits(config, resolve=lambda v: tmp_path / v, seed=7)
    assert again.fingerprint == splits.fingerprint


def test_load_image_splits_bad_images(tmp_path):
    root = colour_folder(tmp_path, per_class=4)
    truncated_jpeg(root / "leaf" / "broken.jpg")
    config = DataConfig(format="folder", path=str(root), validation_split=0.0, test_split=0.25)

    with pytest.raises(DataError, match="broken.jpg"):
        load_image_splits(config)

    splits = load_image_splits(replace(config, on_bad_images="skip"))
    assert [Path(s.path).name for s in splits.skipped] == ["broken.jpg"]
    every = splits.train.inputs + splits.validation.inputs + splits.test.inputs
    assert len(every) == 12 and not any("broken" in p for p in every)


def test_load_image_splits_from_csv_files(tmp_path):
    colour_folder(tmp_path / "img", per_class=4)
    lines = [f"img/{label}/{i}.png,{label}" for label in COLOURS for i in range(4)]
    train = tmp_path / "train.csv"
    train.write_text("file,label\n" + "\n".join(lines[1:4] + lines[5:8] + lines[9:]) + "\n")
    test = tmp_path / "test.csv"
    test.write_text("file,label\n" + "\n".join([lines[0], lines[4], lines[8]]) + "\n")
    config = DataConfig(
        format="csv", path=str(train), test_path=str(test), image_column="file", test_split=0.2
    )

    splits = load_image_splits(config)

    assert splits.skipped == []
    assert [Path(p).stem for p in splits.test.inputs] == ["0", "0", "0"]
    assert splits.test.labels.tolist() == [0, 1, 2]
    assert len(splits.train) + len(splits.validation) == 9


def test_pillow_decodes_bytes_directly():
    """`check_images` and the Pillow route read the same bytes the same way."""
    from ftk.data.images import pillow_rgb

    buffer = io.BytesIO()
    Image.new("I;16", (3, 2), 65535).save(buffer, format="PNG")
    assert pillow_rgb(buffer.getvalue()).tolist() == [[[255] * 3] * 3] * 2


def test_training_pipeline_and_served_graph_decode_identically(tmp_path):
    import io

    import tensorflow as tf
    from PIL import Image

    from ftk.data.images import decode_and_resize
    from ftk.tasks.classification.savedmodel import decode_for_serving

    rng = np.random.default_rng(3)
    for mode, fmt, suffix in (
        ("RGB", "JPEG", ".jpg"),
        ("L", "PNG", ".png"),
        ("RGBA", "PNG", ".png"),
        ("P", "GIF", ".gif"),
    ):
        buffer = io.BytesIO()
        image = Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).convert(mode)
        image.save(buffer, format=fmt)
        path = tmp_path / f"{mode}{suffix}"
        path.write_bytes(buffer.getvalue())
        trained = decode_and_resize(tf.constant(str(path)), (32, 32)).numpy()
        served = decode_for_serving(tf.constant(buffer.getvalue()), (32, 32)).numpy()
        np.testing.assert_array_equal(trained, served, err_msg=f"{mode} {fmt}")
