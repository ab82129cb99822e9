"""The learning-rate finder's plot: training loss against the rate, the suggestion marked.

>>> plot_lr_find(lr_find(model, train_ds, compile_fn), run_dir / "lr_find.png")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftk.errors import ConfigError
from ftk.training.lr_find import RULES, LrFindResult


def plot_lr_find(result: LrFindResult, path, size=(8.0, 5.0), dpi: int = 100) -> Path:
    """A PNG of the sweep: training loss against the learning rate (log axis), raw loss faint,
    smoothed loss bold, the suggestion marked. `size` inches at `dpi` (800 x 500 pixels by
    default); written atomically (a temporary file, then a rename) to `path` (`.png`)."""
    from ftk.plots import new_figure, save_png

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"The LR finder plot is a PNG: `path` must end in .png. Received: {path}")
    if result.rule not in RULES:
        raise ConfigError(f"`rule` must be one of {RULES}. Received: rule={result.rule!r}")
    lrs = np.asarray(result.learning_rates, dtype=np.float64)
    raw = np.asarray(result.losses, dtype=np.float64)
    smoothed = np.asarray(result.smoothed, dtype=np.float64)
    finite = np.isfinite(smoothed)

    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    ax.plot(lrs, raw, color="tab:blue", alpha=0.3, linewidth=1, label="loss (per batch)")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=2.5, label="loss (centered average)")
    ax.set_xscale("log")
    if finite.any():
        y = float(np.interp(np.log10(result.suggestion), np.log10(lrs[finite]), smoothed[finite]))
        label = f"suggestion {result.suggestion:.2e} ({result.rule.replace('_', ' ')})"
        ax.axvline(result.suggestion, color="tab:red", linestyle="--", linewidth=1.2, label=label)
        ax.plot([result.suggestion], [y], "o", color="tab:red", markersize=9)
        ax.annotate(
            f"{result.suggestion:.2e}",
            (result.suggestion, y),
            xytext=(8, 8),
            textcoords="offset points",
            color="tab:red",
            bbox={
                "boxstyle": "round,pad=0.2",
                "facecolor": "white",
                "edgecolor": "none",
                "alpha": 0.7,
            },
        )
        ax.set_ylim(*_loss_limits(raw, smoothed))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    stopped = ", stopped early: loss diverged" if result.stopped_early else ""
    ax.set_title(f"Learning-rate finder ({len(lrs)} steps{stopped})")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.1, which="minor")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return save_png(fig, path)


def _loss_limits(raw: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """y limits that keep the descent readable: a diverged tail may reach far above the start,
    so the top is half the descent's range above its highest point (or the data's top)."""
    values = np.concatenate([raw, smoothed])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    best = int(np.nanargmin(np.where(np.isfinite(smoothed), smoothed, np.nan)))
    descent_top = float(np.nanmax(smoothed[: best + 1]))
    span = max(descent_top - low, 1e-12)
    top = min(high, descent_top + 0.5 * span)
    return low - 0.05 * span, top + 0.05 * span
