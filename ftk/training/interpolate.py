"""WiSE-FT weight-space ensembling (Wortsman et al., 2022, "Robust fine-tuning of zero-shot
models"): θ(α) = θ_pre + α (θ_ft − θ_pre), computed as (1 − α) θ_pre + α θ_ft so that α = 0 and
α = 1 reproduce the two endpoints exactly.

Typical use:

>>> pre = snapshot(model)              # before fine-tuning (same architecture, head included)
>>> model.fit(...)
>>> ft = snapshot(model)
>>> curve = wise_ft_curve(model, pre, ft, evaluate, alpha_grid(11))
>>> model.set_weights(interpolate(pre, ft, best_alpha(curve, "accuracy", maximize=True)))

`pre` must have the same weights as `ft`, so snapshot the model after its head is built (a
randomly initialised head interpolates like every other weight).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ftk.errors import ConfigError

_EXTRA_FLOATS = ("bfloat16", "float8")


def snapshot(model) -> list[np.ndarray]:
    """Copies of `model.get_weights()` (unaffected by later training)."""
    return [np.array(w, copy=True) for w in model.get_weights()]


def _is_float(array: np.ndarray) -> bool:
    # ml_dtypes' bfloat16 / float8 are not `np.floating` subtypes.
    return np.issubdtype(array.dtype, np.floating) or array.dtype.name.startswith(_EXTRA_FLOATS)


def interpolate(pre: Sequence, ft: Sequence, alpha: float) -> list[np.ndarray]:
    """`(1 - alpha) * pre + alpha * ft` per float array, in float64, cast back to `ft`'s dtype.

    Non-float arrays (integer counters, seed states) are taken from `ft`. `alpha` outside
    [0, 1] extrapolates.
    """
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise ConfigError(f"`alpha` must be a finite number. Received: alpha={alpha}")
    if len(pre) != len(ft):
        raise ConfigError(
            f"Cannot interpolate {len(pre)} pretrained arrays with {len(ft)} fine-tuned ones; "
            "both snapshots must come from the same model."
        )
    out = []
    for index, (p, f) in enumerate(zip(pre, ft, strict=True)):
        p, f = np.asarray(p), np.asarray(f)
        if p.shape != f.shape:
            raise ConfigError(
                f"Weight {index} has shape {p.shape} before fine-tuning and {f.shape} after; "
                "both snapshots must come from the same model."
            )
        if not _is_float(f):
            out.append(f.copy())
            continue
        mixed = (1.0 - alpha) * p.astype(np.float64) + alpha * f.astype(np.float64)
        out.append(mixed.astype(f.dtype))
    return out


def wise_ft_curve(
    model,
    pre: Sequence,
    ft: Sequence,
    evaluate: Callable[[object], dict],
    alphas: Sequence[float],
) -> list[dict]:
    """Evaluate `model` at each mixing coefficient; rows `{"alpha": a, **evaluate(model)}`.

    The model is left at the fine-tuned weights `ft` (also when `evaluate` raises).
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ConfigError("`alphas` is empty; pass e.g. alpha_grid(11).")
    curve = []
    try:
        for alpha in alphas:
            model.set_weights(interpolate(pre, ft, alpha))
            metrics = dict(evaluate(model))
            metrics.pop("alpha", None)
            curve.append({"alpha": alpha, **{k: _plain(v) for k, v in metrics.items()}})
    finally:
        model.set_weights(list(ft))
    return curve


def _plain(value):
    """numpy / tensor scalars as Python floats, so the curve serialises to JSON."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _score(row: dict, metric: str, maximize: bool) -> float:
    value = float(row[metric])
    if math.isnan(value):
        return -math.inf
    return value if maximize else -value


def best_alpha(curve: Sequence[dict], metric: str, maximize: bool) -> float:
    """The alpha with the best `metric`: the highest with `maximize`, else the lowest (the
    task says which: `Task.direction`).

    Ties go to the lower `loss` (when the rows have one), then to the larger alpha (closer to
    the fine-tuned model).
    """
    if not curve:
        raise ConfigError("The WiSE-FT curve is empty.")
    missing = [row["alpha"] for row in curve if metric not in row]
    if missing:
        raise ConfigError(
            f"The curve has no {metric!r} at alpha={missing[0]}; it has "
            f"{sorted(k for k in curve[0] if k != 'alpha')}. Received: metric={metric!r}"
        )

    def key(row):
        loss = float(row.get("loss", 0.0))
        return (
            _score(row, metric, maximize),
            -loss if not math.isnan(loss) else -math.inf,
            row["alpha"],
        )

    return float(max(curve, key=key)["alpha"])


def plot_curve(
    curve: Sequence[dict],
    path,
    metric: str,
    maximize: bool,
    size=(6.4, 4.0),
    dpi: int = 100,
) -> Path:
    """A PNG of the WiSE-FT curve: `metric` against alpha, loss on a twin axis, best marked.

    The image is `size` inches at `dpi` (640 x 400 pixels by default), written atomically.
    """
    from ftk.plots import new_figure, save_png

    path = Path(path)
    best = best_alpha(curve, metric, maximize)
    rows = sorted(curve, key=lambda row: row["alpha"])
    alphas = [row["alpha"] for row in rows]
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    ax.plot(alphas, [row[metric] for row in rows], "o-", color="tab:blue", label=metric)
    ax.set_xlabel("α  (0 = pretrained, 1 = fine-tuned)")
    ax.set_ylabel(f"validation {metric}", color="tab:blue")
    handles = ax.get_lines()[:]
    if metric != "loss" and all("loss" in row for row in rows):
        twin = ax.twinx()
        twin.plot(alphas, [row["loss"] for row in rows], "s--", color="tab:orange", label="loss")
        twin.set_ylabel("validation loss", color="tab:orange")
        handles += twin.get_lines()
    best_row = next(row for row in rows if row["alpha"] == best)
    handles.append(ax.axvline(best, color="tab:green", linestyle=":", label=f"best α = {best:g}"))
    ax.plot([best], [best_row[metric]], "*", color="tab:green", markersize=14)
    ax.grid(alpha=0.3)
    ax.set_title(f"WiSE-FT: {metric} = {float(best_row[metric]):.4g} at α = {best:g}")
    # Below the axes, where it cannot hide a curve.
    fig.legend(handles=handles, loc="lower center", ncols=3, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_png(fig, path)


def alpha_grid(n: int) -> list[float]:
    """`n` evenly spaced alphas from 0 to 1, rounded to 4 decimals: `alpha_grid(5)` ->
    `[0.0, 0.25, 0.5, 0.75, 1.0]`."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"`alpha_grid` needs n >= 2 points. Received: n={n!r}")
    return [round(float(a), 4) for a in np.linspace(0.0, 1.0, n)]
