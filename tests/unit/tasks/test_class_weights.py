"""`train.class_weight = "balanced"` for the classification tasks: the weights (scikit-learn's
"balanced" rule), the training dataset carrying them as sample weights (validation and test
data never), the key refused where it does not apply. (The effect on an imbalanced BBC News
split: docs/results/2026-12-03-class-weights.md.)"""

import numpy as np
import pytest

from ftk.config import load_config
from ftk.data.splits import Examples
from ftk.errors import ConfigError
from ftk.tasks import get_task
from ftk.tasks.classification.weights import balanced_weights


def test_balanced_weights_give_every_class_the_same_total():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 0])
    weights = balanced_weights(labels, 4)  # class 3 has no training example
    np.testing.assert_allclose(weights[:3], [10 / (3 * 7), 10 / (3 * 2), 10 / (3 * 1)], rtol=1e-6)
    assert weights[3] == 0
    totals = np.bincount(labels, weights=weights[labels])
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)


def test_the_training_dataset_carries_the_weights_and_no_other_does():
    task = get_task("text_classification")
    examples = Examples(["a", "b", "c", "d"], np.array([0, 0, 0, 1], np.int32))
    config = load_config(None, ["train.class_weight=balanced", "train.batch_size=4"])
    assert len(next(iter(task.dataset(examples, config, training=False)))) == 2
    (batch,) = list(task.dataset(examples, config, training=True).as_numpy_iterator())
    texts, labels, weights = batch
    expected = {0: 4 / (2 * 3), 1: 4 / (2 * 1)}
    np.testing.assert_allclose(weights, [expected[int(i)] for i in labels], rtol=1e-6)
    plain = load_config(None, ["train.batch_size=4"])
    assert len(next(iter(task.dataset(examples, plain, training=True)))) == 2


def test_class_weight_is_checked_and_refused_where_it_does_not_apply():
    with pytest.raises(ConfigError, match="train.class_weight.*one of none, balanced"):
        load_config(None, ["train.class_weight=yes"])
    with pytest.raises(ConfigError, match="train.class_weight"):
        load_config(None, ["run.task=causal_lm", "train.class_weight=balanced"])
    config = load_config(None, ["train.class_weight=balanced"])
    for name in ("text_classification", "image_classification"):
        assert "train.class_weight" in get_task(name).feature_cache_refusal(config)
