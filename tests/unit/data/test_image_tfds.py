"""Images from TensorFlow Datasets (`data.format = "tfds"`): a prepared dataset directory, a
folder in ImageFolder layout, and a catalog name (mocked online, or failing fast offline).

Everything runs offline: TFDS builds a tiny dataset from PNGs written here, the TFDS data
directory and ftk's cache (`FTK_CACHE`) point into tmp, and `host_reachable` is patched.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from helpers import prepare_tfds, record_probes
from PIL import Image

from ftk.config import DataConfig
from ftk.data.images import load_image_splits
from ftk.errors import DataError

LABELS = ["blue", "green", "red"]
TRAIN_PER_LABEL, TEST_PER_LABEL = 4, 1


def colour(label: str, split: str, i: int) -> tuple[int, int, int]:
    """A different solid colour for every image, so each cached file can be traced back."""
    base = {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}[label]
    shade = 10 * i + (100 if split == "test" else 0)
    return tuple(min(255, c + shade) if c else shade for c in base)


def write_png(path: Path, rgb, size=(5, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path, format="PNG")
    return path


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def expected_images() -> dict[tuple[int, int, int], tuple[str, str]]:
    """colour -> (split, label) for every image of the tiny dataset."""
    out = {}
    for split, n in (("train", TRAIN_PER_LABEL), ("test", TEST_PER_LABEL)):
        for label in LABELS:
            for i in range(n):
                out[colour(label, split, i)] = (split, label)
    return out


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def ftk_cache(tmp_path, monkeypatch) -> Path:
    """ftk's cache in tmp, so nothing is written to the home directory."""
    cache = tmp_path / "ftk_cache"
    monkeypatch.setenv("FTK_CACHE", str(cache))
    return cache


@pytest.fixture
def offline(monkeypatch) -> list[str]:
    """`host_reachable` answers False and records the hosts asked about."""
    import ftk.data.tfds as tfds_mod

    return record_probes(monkeypatch, tfds_mod, reachable=False)


@pytest.fixture
def no_probe(monkeypatch):
    import ftk.data.tfds as tfds_mod

    def fail(*args, **kwargs):
        raise AssertionError("a local source must not probe the network")

    monkeypatch.setattr(tfds_mod, "host_reachable", fail)


@pytest.fixture(scope="module")
def prepared_images(tmp_path_factory) -> Path:
    """A tiny image dataset prepared by TFDS from PNG files (train and test; no download)."""
    import tensorflow_datasets as tfds

    source = tmp_path_factory.mktemp("pngs")
    files = {
        split: [
            (write_png(source / split / f"{label}{i}.png", colour(label, split, i)), label)
            for label in LABELS
            for i in range(n)
        ]
        for split, n in (("train", TRAIN_PER_LABEL), ("test", TEST_PER_LABEL))
    }

    return prepare_tfds(
        tmp_path_factory.mktemp("tfds_prepared"),
        "FtkTinyImages",
        {"image": tfds.features.Image(), "label": tfds.features.ClassLabel(names=LABELS)},
        {
            split: [{"image": str(path), "label": label} for path, label in rows]
            for split, rows in files.items()
        },
    )


@pytest.fixture
def image_folder_root(tmp_path) -> Path:
    """`<root>/<split>/<label>/<image>`: tfds.folder_dataset.ImageFolder's layout."""
    root = tmp_path / "flowers"
    for split, n in (("train", TRAIN_PER_LABEL), ("test", TEST_PER_LABEL)):
        for label in LABELS:
            for i in range(n):
                write_png(root / split / label / f"{i}.png", colour(label, split, i))
    (root / "train" / "red" / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------------------------
# A prepared TFDS dataset directory
# --------------------------------------------------------------------------------------------


def test_prepared_directory_caches_images_and_splits(prepared_images, ftk_cache, no_probe):
    config = DataConfig(format="tfds", path=str(prepared_images), image_column="image")

    splits = load_image_splits(config, seed=0, workers=1)

    assert splits.skipped == []
    assert splits.label_names == LABELS  # ClassLabel ids mapped to names
    counts = splits.counts()
    assert counts["test"] == dict.fromkeys(LABELS, TEST_PER_LABEL)  # the dataset's test split
    assert {
        label: counts["train"][label] + counts["validation"][label] for label in LABELS
    } == dict.fromkeys(LABELS, TRAIN_PER_LABEL)

    expected = expected_images()
    cache = ftk_cache / "tfds-images" / "ftk_tiny_images" / "1.0.0"
    for name in ("train", "validation", "test"):
        examples = getattr(splits, name)
        for path, label_id in zip(examples.inputs, examples.labels, strict=True):
            path = Path(path)
            split = "test" if name == "test" else "train"
            label = splits.label_names[label_id]
            assert path.parent == cache / split / label and path.suffix == ".png"
            image = pixels(str(path))
            rgb = tuple(int(v) for v in image[0, 0])
            assert (image == rgb).all() and image.shape == (4, 5, 3)  # the original pixels
            assert expected[rgb] == (split, label)
    assert len({*splits.train.inputs, *splits.validation.inputs, *splits.test.inputs}) == 15


def test_second_call_reuses_the_cache(prepared_images, ftk_cache, no_probe):
    config = DataConfig(format="tfds", path=str(prepared_images), image_column="image")
    first = load_image_splits(config, seed=0, workers=1)
    files = sorted((ftk_cache / "tfds-images").rglob("*.png"))
    stats = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    assert len(files) == 15

    second = load_image_splits(config, seed=0, workers=1)

    assert second.fingerprint == first.fingerprint
    assert sorted((ftk_cache / "tfds-images").rglob("*.png")) == files
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files} == stats  # not rewritten
    assert not [p for p in (ftk_cache / "tfds-images").rglob(".*")]  # no temporary files left


def test_changed_cache_file_is_written_again(prepared_images, ftk_cache, no_probe):
    from ftk.data.tfds import load_tfds_images

    config = DataConfig(format="tfds", path=str(prepared_images), image_column="image")
    rows, _ = load_tfds_images(str(prepared_images), "test", config)
    original = Path(rows[0].input).read_bytes()
    Path(rows[0].input).write_bytes(b"stale")

    again, _ = load_tfds_images(str(prepared_images), "test", config)

    assert [r.input for r in again] == [r.input for r in rows]
    assert Path(rows[0].input).read_bytes() == original
    assert rows[0].origin == f"tfds {prepared_images}[test] #0"


def test_absent_split_is_none(prepared_images, no_probe):
    from ftk.data.tfds import load_tfds_images

    config = DataConfig(format="tfds", path=str(prepared_images), image_column="image")

    assert load_tfds_images(str(prepared_images), "validation", config) is None
    with pytest.raises(DataError, match=r"has no 'validation' split.*\['test', 'train'\]"):
        load_tfds_images(str(prepared_images), "validation", config, required=True)


def test_wrong_image_column_lists_the_features(prepared_images):
    config = DataConfig(format="tfds", path=str(prepared_images))  # image_column="path"

    with pytest.raises(DataError) as info:
        load_image_splits(config)

    message = str(info.value)
    assert "has no feature 'path' (set by data.image_column)" in message
    assert "Features: [" in message and "'label'" in message
    assert "Image features: ['image']" in message
    assert message.endswith("Received: data.image_column='path'")


def test_image_column_that_is_not_an_image(prepared_images):
    config = DataConfig(format="tfds", path=str(prepared_images), image_column="label")

    with pytest.raises(DataError, match=r"'label' .* is a ClassLabel, not an image") as info:
        load_image_splits(config)
    assert "Received: data.image_column='label'" in str(info.value)


def test_wrong_label_column(prepared_images):
    config = DataConfig(
        format="tfds", path=str(prepared_images), image_column="image", label_column="class"
    )

    with pytest.raises(DataError, match=r"has no feature 'class' \(set by data.label_column\)"):
        load_image_splits(config)


# --------------------------------------------------------------------------------------------
# ImageFolder layout
# --------------------------------------------------------------------------------------------


def test_image_folder_layout_works_offline(image_folder_root, ftk_cache, no_probe, tmp_path):
    import tensorflow_datasets as tfds

    config = DataConfig(format="tfds", path="flowers")  # relative: resolved like other paths

    splits = load_image_splits(config, resolve=lambda v: tmp_path / v, seed=0)

    assert splits.label_names == LABELS
    assert [Path(s.path).name for s in splits.skipped] == ["notes.txt"]
    root = str(image_folder_root)
    assert all(p.startswith(f"{root}/train/") for p in splits.train.inputs)  # no copies
    assert sorted(splits.test.inputs) == sorted(
        str(p) for p in (image_folder_root / "test").rglob("*.png")
    )
    assert len(splits.train) + len(splits.validation) == TRAIN_PER_LABEL * len(LABELS)
    assert not ftk_cache.exists()

    folder = tfds.folder_dataset.ImageFolder(root)  # the layout TFDS's ImageFolder reads
    assert folder.info.features["label"].names == splits.label_names
    assert folder.info.splits["test"].num_examples == len(splits.test)


def test_image_folder_without_train_split(tmp_path, no_probe):
    write_png(tmp_path / "root" / "training" / "cat" / "0.png", (1, 2, 3))

    with pytest.raises(DataError) as info:
        load_image_splits(DataConfig(format="tfds", path=str(tmp_path / "root")))

    assert "has no 'train' split" in str(info.value)
    assert "Splits found: ['training']" in str(info.value)


def test_directory_that_is_neither(tmp_path, no_probe):
    write_png(tmp_path / "root" / "0.png", (1, 2, 3))

    with pytest.raises(DataError) as info:
        load_image_splits(DataConfig(format="tfds", path=str(tmp_path / "root")))

    assert "not a prepared TFDS dataset directory" in str(info.value)
    assert "ImageFolder layout: <split>/<label>/<image>" in str(info.value)


# --------------------------------------------------------------------------------------------
# Catalog names
# --------------------------------------------------------------------------------------------


def test_catalog_name_offline_fails_fast(tfds_data_dir, offline):
    from ftk.data.tfds import DOWNLOAD_HOST

    config = DataConfig(format="tfds", path="beans", image_column="image")

    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_image_splits(config)

    assert time.monotonic() - start < 5
    assert offline == [DOWNLOAD_HOST]
    message = str(info.value)
    assert "'beans' is not prepared" in message
    assert f"cannot reach {DOWNLOAD_HOST} to download it" in message
    assert str(tfds_data_dir) in message


def test_catalog_name_with_mock_data(tfds_data_dir, ftk_cache, monkeypatch):
    import tensorflow_datasets as tfds

    import ftk.data.tfds as tfds_mod

    monkeypatch.setattr(tfds_mod, "host_reachable", lambda *args, **kwargs: True)
    config = DataConfig(format="tfds", path="beans", image_column="image")

    with tfds.testing.mock_data(num_examples=2):
        rows, skipped = tfds_mod.load_tfds_images("beans", "train", config)

    names = ["angular_leaf_spot", "bean_rust", "healthy"]
    assert skipped == [] and len(rows) == 2
    for index, row in enumerate(rows):
        path = Path(row.input)
        assert row.label in names and row.origin == f"tfds beans[train] #{index}"
        assert path == ftk_cache / "tfds-images/beans/0.1.0/train" / row.label / f"{index}.png"
        assert pixels(row.input).shape == (500, 500, 3)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, extension",
    [
        (b"\xff\xd8\xff\xe0rest", "jpg"),
        (b"\x89PNG\r\n\x1a\nrest", "png"),
        (b"GIF89arest", "gif"),
        (b"GIF87arest", "gif"),
        (b"BMrest", "bmp"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "img"),
        (b"", "img"),
    ],
)
def test_image_extension(data, extension):
    from ftk.data.tfds import image_extension

    assert image_extension(data) == extension
