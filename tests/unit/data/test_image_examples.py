"""Example image datasets (`ftk.data.image_examples`): the digits source, Fashion-MNIST from
tiny IDX files written here, the no-overwrite rules and the command line.

Only the last Fashion-MNIST test reads the Debian package's files, and only where installed.
"""

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ftk.data.image_examples import (
    DIGITS_LABELS,
    FASHION_MNIST_DIR,
    FASHION_MNIST_FILES,
    FASHION_MNIST_LABELS,
    MANIFEST_NAME,
    available_sources,
    main,
    read_idx,
    write_example_images,
)
from ftk.errors import ConfigError, DataError

SPLITS = ("train", "validation", "test")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def tree(out: Path) -> dict[str, dict[str, list[str]]]:
    """split -> label -> sorted file names."""
    return {
        split: {
            label.name: sorted(p.name for p in label.iterdir())
            for label in sorted((out / split).iterdir())
        }
        for split in SPLITS
    }


def all_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def write_idx(path: Path, array: np.ndarray, magic: bytes | None = None) -> Path:
    array = np.asarray(array, np.uint8)
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def fake_fashion_mnist(directory: Path, n_train: int = 60, n_test: int = 30) -> Path:
    """IDX files shaped like Fashion-MNIST (6x5 images, so the size is checked): every image
    is filled with its own row number, so a written PNG shows which row it came from."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = np.broadcast_to((np.arange(n) % 256)[:, None, None], (n, 6, 5))
        write_idx(directory / FASHION_MNIST_FILES[f"{prefix}_images"], images)
        write_idx(directory / FASHION_MNIST_FILES[f"{prefix}_labels"], labels)
    return directory


@pytest.fixture
def no_fashion(tmp_path) -> Path:
    """A Fashion-MNIST directory that does not exist, so `auto` means digits."""
    return tmp_path / "no-fashion-mnist"


def digits(out: Path, no_fashion: Path, **kwargs) -> dict:
    kwargs = {"train": 200, "validation": 50, "test": 100, **kwargs}
    return write_example_images(out, "digits", fashion_mnist_dir=no_fashion, **kwargs)


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------


def test_digits_tree_counts_labels_and_images(tmp_path, no_fashion):
    out = tmp_path / "digits"
    manifest = digits(out, no_fashion)
    assert manifest == json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["source"] == "digits"
    assert manifest["labels"] == list(DIGITS_LABELS)
    assert manifest["counts"] == {"train": 200, "validation": 50, "test": 100}
    assert manifest["capped"] is False and manifest["notes"] == []
    files = tree(out)
    for split in SPLITS:
        assert list(files[split]) == list(DIGITS_LABELS)
        # Stratified: equal per class.
        assert {len(names) for names in files[split].values()} == {manifest["counts"][split] // 10}
        assert manifest["per_label"][split] == {
            label: len(names) for label, names in files[split].items()
        }
        # File names are the source rows the manifest lists.
        names = sorted(n for label_names in files[split].values() for n in label_names)
        assert names == sorted(f"{i:05d}.png" for i in manifest["source_indices"][split])
    # Nothing else in the tree, no partial directory left behind.
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, *sorted(SPLITS)]
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []

    from sklearn.datasets import load_digits

    source = load_digits()
    for split in SPLITS:
        for label, names in files[split].items():
            for name in names[:3]:
                with Image.open(out / split / label / name) as image:
                    assert image.format == "PNG" and image.mode == "L" and image.size == (8, 8)
                    pixels = np.asarray(image)
                row = int(name.removesuffix(".png"))
                assert str(source.target[row]) == label
                expected = np.rint(source.images[row] * 255 / 16).astype(np.uint8)
                np.testing.assert_array_equal(pixels, expected)
                assert pixels.max() > 200  # scaled from 0..16 to 0..255


def test_digits_splits_are_disjoint(tmp_path, no_fashion):
    manifest = digits(tmp_path / "d", no_fashion)
    indices = {split: set(manifest["source_indices"][split]) for split in SPLITS}
    assert all(len(indices[s]) == manifest["counts"][s] for s in SPLITS)
    assert not indices["train"] & indices["validation"]
    assert not indices["train"] & indices["test"]
    assert not indices["validation"] & indices["test"]


def test_digits_request_beyond_the_data_is_split_proportionally(tmp_path, no_fashion):
    manifest = digits(tmp_path / "d", no_fashion, train=2000, validation=500, test=2000)
    counts = manifest["counts"]
    assert sum(counts.values()) == 1797
    assert counts == {"train": 799, "validation": 200, "test": 798}
    assert manifest["capped"] is True
    assert "1797" in manifest["notes"][0] and "proportionally" in manifest["notes"][0]
    every = sorted(i for s in SPLITS for i in manifest["source_indices"][s])
    assert every == list(range(1797))  # each image exactly once
    assert sum(len(n) for split in tree(tmp_path / "d").values() for n in split.values()) == 1797


def test_digits_is_deterministic_and_the_seed_matters(tmp_path, no_fashion):
    a = digits(tmp_path / "a", no_fashion, seed=7)
    b = digits(tmp_path / "b", no_fashion, seed=7)
    c = digits(tmp_path / "c", no_fashion, seed=8)
    assert a == b
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")
    assert a["source_indices"] != c["source_indices"]


def test_second_call_reuses_the_tree(tmp_path, no_fashion):
    out = tmp_path / "d"
    first = digits(out, no_fashion)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert digits(out, no_fashion) == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # `auto` resolves to digits here, so it is the same dataset.
    assert write_example_images(out, "auto", 200, 50, 100, fashion_mnist_dir=no_fashion) == first


def test_empty_existing_directory_is_written(tmp_path, no_fashion):
    out = tmp_path / "empty"
    out.mkdir()
    digits(out, no_fashion)
    assert (out / MANIFEST_NAME).is_file()


def test_unrelated_non_empty_directory_is_refused_and_untouched(tmp_path, no_fashion):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty.*new output directory"):
        digits(out, no_fashion)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_different_dataset_in_the_directory_is_refused(tmp_path, no_fashion):
    out = tmp_path / "d"
    digits(out, no_fashion)
    before = all_files(out)
    with pytest.raises(DataError, match="different example dataset"):
        digits(out, no_fashion, seed=1)
    with pytest.raises(DataError, match="different example dataset"):
        digits(out, no_fashion, train=100)
    assert all_files(out) == before


def test_a_changed_tree_is_not_reused(tmp_path, no_fashion):
    out = tmp_path / "d"
    digits(out, no_fashion)
    next((out / "train" / "3").iterdir()).unlink()
    with pytest.raises(DataError, match="changed after it was written"):
        digits(out, no_fashion)


def test_bad_arguments(tmp_path, no_fashion):
    with pytest.raises(
        ConfigError, match=r"source must be one of auto, fashion_mnist, digits; received 'mnist'"
    ):
        write_example_images(tmp_path / "x", "mnist", fashion_mnist_dir=no_fashion)
    with pytest.raises(ConfigError, match="train must be .* received 0"):
        digits(tmp_path / "x", no_fashion, train=0)
    with pytest.raises(ConfigError, match="seed"):
        digits(tmp_path / "x", no_fashion, seed=-1)
    assert not (tmp_path / "x").exists()


def test_available_sources(tmp_path, no_fashion):
    assert available_sources(no_fashion) == ["digits"]
    assert available_sources(fake_fashion_mnist(tmp_path / "f")) == ["fashion_mnist", "digits"]


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------


def test_fashion_mnist_from_synthetic_idx(tmp_path):
    fashion = fake_fashion_mnist(tmp_path / "fashion", n_train=60, n_test=30)
    out = tmp_path / "out"
    manifest = write_example_images(out, "auto", 20, 10, 10, seed=3, fashion_mnist_dir=fashion)
    assert manifest["source"] == "fashion_mnist"
    assert manifest["labels"] == list(FASHION_MNIST_LABELS)
    assert manifest["counts"] == {"train": 20, "validation": 10, "test": 10}
    assert manifest["image_size"] == [6, 5]
    assert manifest["source_files"]["test"] == "t10k-images-idx3-ubyte.gz"
    files = tree(out)
    assert list(files["train"]) == sorted(FASHION_MNIST_LABELS)
    assert all(len(names) == 2 for names in files["train"].values())
    assert all(len(names) == 1 for names in files["validation"].values())
    # Train and validation come from the same IDX file and are disjoint.
    assert not set(manifest["source_indices"]["train"]) & set(
        manifest["source_indices"]["validation"]
    )
    for split in SPLITS:
        for label, names in files[split].items():
            for name in names:
                row = int(name.removesuffix(".png"))
                assert FASHION_MNIST_LABELS[row % 10] == label
                with Image.open(out / split / label / name) as image:
                    assert image.mode == "L" and image.size == (5, 6)
                    assert set(np.asarray(image).ravel().tolist()) == {row}
    # Asking for more than the t10k file holds takes all of it.
    capped = write_example_images(
        tmp_path / "capped", "fashion_mnist", 20, 10, 50, fashion_mnist_dir=fashion
    )
    assert capped["counts"]["test"] == 30 and capped["capped"] is True
    assert "t10k-images-idx3-ubyte.gz has 30" in capped["notes"][0]


def test_fashion_mnist_not_installed(tmp_path, no_fashion):
    with pytest.raises(DataError, match="sudo apt-get install dataset-fashion-mnist.*digits"):
        write_example_images(tmp_path / "x", "fashion_mnist", fashion_mnist_dir=no_fashion)
    assert not (tmp_path / "x").exists()


def test_corrupt_idx_is_a_data_error(tmp_path):
    fashion = fake_fashion_mnist(tmp_path / "fashion")
    images = fashion / FASHION_MNIST_FILES["train_images"]
    write_idx(images, np.zeros([60, 6, 5]), magic=b"\x12\x34\x08\x03")
    with pytest.raises(DataError, match="bad magic number 12340803"):
        write_example_images(tmp_path / "out", "fashion_mnist", 20, 10, 10,
                             fashion_mnist_dir=fashion)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fashion"]


def test_read_idx_checks_the_header(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "ok.gz", array), 3), array)
    with pytest.raises(DataError, match="3 dimension.*expected.*1 dimension"):
        read_idx(tmp_path / "ok.gz", 1)
    truncated = tmp_path / "short.gz"
    with gzip.open(truncated, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 4) + bytes(10))
    with pytest.raises(DataError, match="24 bytes of data, found 10"):
        read_idx(truncated, 3)
    (tmp_path / "plain.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(tmp_path / "plain.gz", 3)


@pytest.mark.skipif(
    not all((FASHION_MNIST_DIR / name).is_file() for name in FASHION_MNIST_FILES.values()),
    reason="the Debian package dataset-fashion-mnist is optional and not installed",
)
def test_real_fashion_mnist(tmp_path):
    out = tmp_path / "fashion"
    manifest = write_example_images(out, "fashion_mnist", 20, 10, 20)
    assert manifest["counts"] == {"train": 20, "validation": 10, "test": 20}
    assert manifest["image_size"] == [28, 28]
    files = tree(out)
    assert list(files["train"]) == sorted(FASHION_MNIST_LABELS)
    assert all(len(names) == 2 for names in files["test"].values())
    with Image.open(out / "test" / "sneaker" / files["test"]["sneaker"][0]) as image:
        assert image.mode == "L" and image.size == (28, 28)
        assert np.asarray(image).std() > 10  # a real picture, not a blank


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_cli_writes_then_reuses_then_refuses(tmp_path, no_fashion, capsys):
    out = tmp_path / "cli"
    argv = [str(out), "--train", "30", "--validation", "10", "--test", "20"]
    argv += ["--fashion-mnist-dir", str(no_fashion)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "source: digits (auto)" in printed and "wrote" in printed
    assert main(argv) == 0
    assert "reused" in capsys.readouterr().out
    assert main([*argv, "--seed", "1"]) == 2
    assert "error: " in capsys.readouterr().err
    assert json.loads((out / MANIFEST_NAME).read_text())["seed"] == 42


def test_partial_directory_is_removed_on_failure(tmp_path, no_fashion, monkeypatch):
    from ftk.data import image_examples

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(image_examples, "_write_tree", fail)
    with pytest.raises(KeyboardInterrupt):
        digits(tmp_path / "d", no_fashion)
    assert list(tmp_path.iterdir()) == []
    assert not Path(f"{tmp_path / 'd'}.partial-{os.getpid()}").exists()
