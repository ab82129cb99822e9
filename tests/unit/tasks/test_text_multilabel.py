"""The multi-label task's pieces without a model: its metrics and tuned thresholds (against
scikit-learn), the CSV and Wikidata-films readers and their errors, its config checks."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ftk.config import load_config
from ftk.data.multilabel import EXAMPLE_FILMS, film_text, load_multilabel_splits
from ftk.errors import ConfigError, DataError
from ftk.tasks.text_multilabel.metrics import (
    average_precision,
    multilabel_report,
    tune_thresholds,
    worst_examples,
)


def _scores(seed=0, n=300, labels=5):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, labels)) < 0.3).astype(float)
    scores = np.clip(targets * 0.3 + rng.random((n, labels)) * 0.7, 0, 1).round(2)  # ties
    return targets, scores


def test_metrics_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    targets, scores = _scores()
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.7]
    report = multilabel_report(targets, scores, list("abcde"), thresholds)
    predicted = (scores >= np.array(thresholds)).astype(int)
    assert report["micro_f1"] == pytest.approx(
        metrics.f1_score(targets, predicted, average="micro")
    )
    assert report["macro_f1"] == pytest.approx(
        metrics.f1_score(targets, predicted, average="macro")
    )
    assert report["hamming_loss"] == pytest.approx(metrics.hamming_loss(targets, predicted))
    assert report["exact_match"] == pytest.approx(metrics.accuracy_score(targets, predicted))
    for j, name in enumerate("abcde"):
        expected = metrics.average_precision_score(targets[:, j], scores[:, j])
        assert report["per_label"][name]["average_precision"] == pytest.approx(expected)
        assert report["per_label"][name]["support"] == int(targets[:, j].sum())
    assert report["map"] == pytest.approx(
        metrics.average_precision_score(targets, scores, average="macro")
    )


def test_tuned_thresholds_give_each_label_its_best_f1():
    metrics = pytest.importorskip("sklearn.metrics")
    targets, scores = _scores(seed=1)
    thresholds = tune_thresholds(targets, scores, 0.5)
    report = multilabel_report(targets, scores, list("abcde"), thresholds)
    for j, name in enumerate("abcde"):
        best = max(
            metrics.f1_score(targets[:, j], scores[:, j] >= t) for t in np.unique(scores[:, j])
        )
        assert report["per_label"][name]["f1"] == pytest.approx(best)
        # The threshold falls between two distinct scores, never on one (ties go one way).
        assert thresholds[j] not in set(scores[:, j])


def test_a_label_without_positives_keeps_the_fallback_and_counts_in_no_average_precision():
    targets = np.array([[1, 0], [0, 0], [1, 0]], float)
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.3]])
    assert tune_thresholds(targets, scores, 0.4)[1] == 0.4
    report = multilabel_report(targets, scores, ["a", "b"], [0.5, 0.5])
    assert report["map"] == 1.0  # label b has no positive: left out of the mean
    assert average_precision(targets[:, 1], scores[:, 1]) == 0.0


def test_worst_examples_have_the_most_wrong_labels_first():
    targets = np.array([[1, 1], [0, 0], [1, 0]], float)
    scores = np.array([[0.1, 0.2], [0.9, 0.1], [0.9, 0.1]])
    worst = worst_examples(["two", "one", "right"], targets, scores, ["a", "b"], [0.5, 0.5], 5)
    assert [w["text"] for w in worst] == ["two", "one"]  # "right" has nothing wrong
    assert worst[0]["true"] == ["a", "b"] and worst[1]["predicted"] == {"a": 0.9}


def _config(path, *overrides):
    return load_config(None, ['run.task="text_multilabel"', f"data.path={path}", *overrides])


def test_a_label_column_with_separators_and_empty_cells(tmp_path):
    path = tmp_path / "tagged.csv"
    rows = [f'"text {i}","{["a", "a, b", "", " c ,a"][i % 4]}"' for i in range(40)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    splits = load_multilabel_splits(_config(path).data, Path, seed=0)
    assert splits.label_names == ["a", "b", "c"]
    everything = np.concatenate([splits.train.labels, splits.validation.labels, splits.test.labels])
    assert everything.sum(axis=0).tolist() == [30, 10, 10]
    assert (everything.sum(axis=1) == 0).sum() == 10  # the empty cells: texts with no label
    assert "3 labels" in splits.label_summary()
    assert splits.counts()["train"]["examples"] == len(splits.train)


def test_reader_errors_name_the_place(tmp_path):
    path = tmp_path / "tagged.csv"
    path.write_text("text,label\ngoal,sport\nchip,tech\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Label 'tech' at .*tagged.csv:3 is not one of"):
        load_multilabel_splits(_config(path, 'data.labels=["sport", "music"]').data, Path, seed=0)
    with pytest.raises(DataError, match=r"no column data.label_column='tags'"):
        load_multilabel_splits(_config(path, 'data.label_column="tags"').data, Path, seed=0)
    path.write_text("text,label\n,sport\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Empty 'text' at .*tagged.csv:2"):
        load_multilabel_splits(_config(path).data, Path, seed=0)
    with pytest.raises(DataError, match=r"Unknown example dataset"):
        load_multilabel_splits(_config("example:films").data, Path, seed=0)


def test_a_test_file_with_a_label_the_training_data_lacks_is_an_error(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\n" + "".join(f"t{i},a\n" for i in range(20)), encoding="utf-8")
    test.write_text("text,label\nx,a\ny,z\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Label 'z' at .*test.csv:3 is not one of the labels"):
        load_multilabel_splits(_config(train, f"data.test_path={test}").data, Path, seed=0)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.threshold=1.0", "train.threshold"),
        ('train.loss="mse"', "train.loss"),
        ('train.thresholds="best"', "train.thresholds"),
        ('data.label_separator=""', "data.label_separator"),
        ("train.class_weight='balanced'", "train.class_weight"),
    ],
)
def test_config_checks_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _config("x.csv", override)


def test_film_text_reads_like_a_catalogue_entry():
    text = film_text("Alien", 1979, "Ridley Scott", "Dan O'Bannon", "A, B", "English", "UK")
    assert text == (
        "Alien (1979). Directed by Ridley Scott. Written by Dan O'Bannon. Starring A, B. "
        "English, UK."
    )


@pytest.mark.skipif(
    importlib.util.find_spec("bokeh_sampledata") is None,
    reason="PyPI bokeh-sampledata is not installed (make install installs it)",
)
def test_wikidata_films_are_read_from_the_installed_package():
    config = _config(EXAMPLE_FILMS)
    splits = load_multilabel_splits(config.data, config.resolve_path, seed=42)
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert total == 17029 and len(splits.label_names) == 21
    assert {"Drama", "Comedy", "Horror", "Documentary", "Western"} <= set(splits.label_names)
    assert 2.0 < splits.train.labels.sum(axis=1).mean() < 2.2
    assert all(t.split(" (")[0] for t in splits.test.inputs[:50])
