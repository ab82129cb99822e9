"""WiSE-FT: interpolation endpoints and midpoint, the alpha sweep, choosing alpha, the plot."""

import keras
import ml_dtypes
import numpy as np
import pytest
from helpers import build_classifier, examples

from ftk.errors import ConfigError
from ftk.training.interpolate import (
    alpha_grid,
    best_alpha,
    interpolate,
    plot_curve,
    snapshot,
    wise_ft_curve,
)


def metrics(logits, labels) -> dict:
    """Accuracy and mean cross-entropy of logits, in numpy."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    return {"accuracy": float((logits.argmax(-1) == labels).mean()), "loss": float(loss)}


@pytest.fixture(scope="module")
def tuned(tiny_preset):
    """The tiny classifier, a pretrained and a "fine-tuned" snapshot, and the outputs of each.

    The fine-tuned weights are the pretrained ones moved by a random step (interpolation does
    not care how they moved, and `fit` would triple the time of this file).
    """
    keras.utils.set_random_seed(4)
    model = build_classifier(tiny_preset, dropout=0.0)
    data = examples(4, seed=11)
    pre = snapshot(model)
    pre_out = model.predict(data.texts, verbose=0)
    rng = np.random.default_rng(0)
    ft = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in pre]
    model.set_weights(ft)
    ft_out = model.predict(data.texts, verbose=0)
    return model, pre, snapshot(model), data, pre_out, ft_out


def test_snapshot_is_a_copy(tuned):
    model, pre, ft, *_ = tuned
    assert len(pre) == len(ft) == len(model.weights)
    before = ft[0].copy()
    ft[0] += 1.0  # mutating a snapshot leaves the model alone
    try:
        assert not np.array_equal(model.get_weights()[0], ft[0])
    finally:
        ft[0][...] = before


def test_endpoints_reproduce_both_models_and_half_is_the_midpoint(tuned):
    model, pre, ft, data, pre_out, ft_out = tuned
    texts = data.texts
    assert np.abs(pre_out - ft_out).max() > 1e-3  # fine-tuning changed the outputs
    try:
        model.set_weights(interpolate(pre, ft, 0.0))
        np.testing.assert_allclose(model.predict(texts, verbose=0), pre_out, atol=1e-6)
        model.set_weights(interpolate(pre, ft, 1.0))
        np.testing.assert_allclose(model.predict(texts, verbose=0), ft_out, atol=1e-6)
    finally:
        model.set_weights(ft)
    for p, got in zip(pre, interpolate(pre, ft, 0.0), strict=True):
        np.testing.assert_array_equal(got, p)
    for f, got in zip(ft, interpolate(pre, ft, 1.0), strict=True):
        np.testing.assert_array_equal(got, f)
    moved = 0
    for p, f, got in zip(pre, ft, interpolate(pre, ft, 0.5), strict=True):
        assert got.dtype == f.dtype and got.shape == f.shape
        np.testing.assert_allclose(got, (p.astype("float64") + f) / 2, rtol=1e-6, atol=1e-7)
        moved += not np.array_equal(p, f)
    assert moved > 10


def test_non_float_arrays_come_from_ft_and_shapes_must_match():
    pre = [
        np.zeros((2, 2), "float32"),
        np.array(3, "int64"),
        np.array([1, 2], "uint32"),
        np.zeros(4, ml_dtypes.bfloat16),
    ]
    ft = [
        np.full((2, 2), 4.0, "float32"),
        np.array(10, "int64"),
        np.array([7, 8], "uint32"),
        np.full(4, 2.0, ml_dtypes.bfloat16),
    ]
    out = interpolate(pre, ft, 0.25)
    np.testing.assert_array_equal(out[0], np.full((2, 2), 1.0))
    assert out[1] == 10 and out[1].dtype == np.int64
    np.testing.assert_array_equal(out[2], [7, 8])
    assert out[3].dtype == ml_dtypes.bfloat16 and float(out[3][0]) == 0.5
    out[1][...] = 0
    assert ft[1] == 10  # copies, not the caller's arrays

    with pytest.raises(ConfigError, match=r"Weight 0 has shape \(2, 2\) .* \(3,\)"):
        interpolate(pre, [np.zeros(3, "float32"), *ft[1:]], 0.5)
    with pytest.raises(ConfigError, match="4 pretrained arrays with 3"):
        interpolate(pre, ft[:3], 0.5)
    with pytest.raises(ConfigError, match="finite"):
        interpolate(pre, ft, float("nan"))


def test_curve_evaluates_each_alpha_and_restores_ft(tuned):
    model, pre, ft, *_ = tuned
    seen = []

    def evaluate(m):
        seen.append(m.get_weights()[0].copy())
        alpha = len(seen) - 1
        return {"accuracy": np.float32(0.5 + alpha / 10), "loss": 1.0 - alpha / 10}

    model.set_weights(pre)  # wherever it starts, it ends at ft
    curve = wise_ft_curve(model, pre, ft, evaluate, [0.0, 0.5, 1.0])
    assert [row["alpha"] for row in curve] == [0.0, 0.5, 1.0]
    assert curve[1] == {"alpha": 0.5, "accuracy": pytest.approx(0.6), "loss": 0.9}
    assert type(curve[1]["accuracy"]) is float
    for alpha, weights in zip([0.0, 0.5, 1.0], seen, strict=True):
        np.testing.assert_array_equal(weights, interpolate(pre, ft, alpha)[0])
    for got, f in zip(model.get_weights(), ft, strict=True):
        np.testing.assert_array_equal(got, f)

    def broken(m):
        raise RuntimeError("evaluation failed")

    model.set_weights(pre)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        wise_ft_curve(model, pre, ft, broken, [0.3])
    np.testing.assert_array_equal(model.get_weights()[0], ft[0])


def test_curve_on_the_real_model_matches_both_endpoints(tuned):
    model, pre, ft, data, pre_out, ft_out = tuned
    curve = wise_ft_curve(
        model,
        pre,
        ft,
        lambda m: metrics(m.predict(data.texts, verbose=0), data.labels),
        alpha_grid(3),
    )
    assert [set(row) for row in curve] == [{"alpha", "accuracy", "loss"}] * 3
    assert curve[0] == {"alpha": 0.0, **metrics(pre_out, data.labels)}
    assert curve[2] == {"alpha": 1.0, **metrics(ft_out, data.labels)}
    assert curve[0]["loss"] != curve[1]["loss"] != curve[2]["loss"]
    np.testing.assert_allclose(model.predict(data.texts, verbose=0), ft_out, atol=1e-6)


def test_best_alpha_tie_rules():
    curve = [
        {"alpha": 0.0, "accuracy": 0.70, "loss": 0.50},
        {"alpha": 0.25, "accuracy": 0.80, "loss": 0.45},
        {"alpha": 0.5, "accuracy": 0.80, "loss": 0.40},
        {"alpha": 0.75, "accuracy": 0.80, "loss": 0.40},
        {"alpha": 1.0, "accuracy": 0.75, "loss": 0.30},
    ]
    # An accuracy tie goes to the lowest loss, then to the larger alpha.
    assert best_alpha(curve, "accuracy", maximize=True) == 0.75
    assert best_alpha(curve[:3], "accuracy", maximize=True) == 0.5
    assert best_alpha(curve, "loss", maximize=False) == 1.0  # a loss is minimised
    no_loss = [{"alpha": a, "accuracy": 0.9} for a in (0.0, 0.4, 0.2)]
    assert best_alpha(no_loss, "accuracy", maximize=True) == 0.4
    nan_first = [{"alpha": 0.0, "accuracy": float("nan")}, {"alpha": 1, "accuracy": 0}]
    assert best_alpha(nan_first, "accuracy", True) == 1
    with pytest.raises(ConfigError, match="no 'f1'.*accuracy"):
        best_alpha(curve, "f1", maximize=True)
    with pytest.raises(ConfigError, match="empty"):
        best_alpha([], "accuracy", maximize=True)


def test_alpha_grid():
    assert alpha_grid(2) == [0.0, 1.0]
    assert alpha_grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert alpha_grid(7)[1] == 0.1667 and alpha_grid(7)[-1] == 1.0
    grid = alpha_grid(21)
    assert len(grid) == 21 and grid == sorted(grid) and grid[10] == 0.5
    for bad in (1, 0, 2.0, True):
        with pytest.raises(ConfigError, match="n >= 2"):
            alpha_grid(bad)


def test_plot_is_a_png_of_the_expected_size(tmp_path):
    from PIL import Image

    curve = [
        {"alpha": a, "accuracy": 0.6 + 0.3 * a - 0.2 * a * a, "loss": 0.9 - 0.5 * a + 0.3 * a * a}
        for a in alpha_grid(11)
    ]
    path = plot_curve(curve, tmp_path / "plots" / "wise.png", "accuracy", maximize=True)
    assert path == tmp_path / "plots" / "wise.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (640, 400)
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # something was drawn
    assert [p.name for p in path.parent.iterdir()] == ["wise.png"]  # no temp file left

    small = plot_curve(curve[:2], tmp_path / "small.png", "loss", False, size=(4, 3), dpi=50)
    with Image.open(small) as image:
        assert image.size == (200, 150)
