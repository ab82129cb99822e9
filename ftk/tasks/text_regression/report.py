"""The regression sections of the run report: the test metrics per target (beside what
predicting the mean would score), predicted against true values, and the largest errors."""

from __future__ import annotations

import numpy as np

from ftk.files import read_json
from ftk.report.document import REPORT_DIR, Doc, RunFacts
from ftk.tasks.text_regression.pairs import shown

SNIPPET = 200  # characters of a text shown beside an error


def add_sections(task, doc: Doc, facts: RunFacts) -> None:
    metrics = facts.metrics
    doc.heading("Test metrics")
    if not metrics:
        doc.missing("no metrics.json (the run stopped before the test evaluation)")
        return
    doc.table(
        ["target", "MAE", "RMSE", "R²", "Pearson r", "Spearman ρ", "mean", "std"],
        [
            [
                name,
                *(f"{m[k]:.4f}" for k in ("mae", "rmse", "r2", "pearson", "spearman")),
                f"{m['target_mean']:.3f}",
                f"{m['target_std']:.3f}",
            ]
            for name, m in metrics.get("per_target", {}).items()
        ],
    )
    doc.para(
        f"{metrics.get('num_examples', 0)} test examples. Predicting every test example's mean "
        "would score R² = 0 and an RMSE equal to the std column; Spearman's ρ compares the "
        "orders only (1 = the same ranking)."
    )
    _scatter(doc, facts)
    doc.heading("Largest errors")
    worst = metrics.get("largest_errors", [])[: facts.mistakes]
    if not worst:
        doc.missing("no test examples")
        return
    doc.table(
        ["text", "target", "predicted"],
        [
            [
                shown(w["text"])[:SNIPPET],
                ", ".join(f"{v:.2f}" for v in w["target"].values()),
                ", ".join(f"{v:.2f}" for v in w["predicted"].values()),
            ]
            for w in worst
        ],
    )


def _scatter(doc: Doc, facts: RunFacts) -> None:
    """Predicted against true values of the test split, one panel per target."""
    from ftk.plots import new_figure, save_png

    files = facts.files
    if not (files.outputs.is_file() and files.test_split.is_file()):
        return
    predicted = np.load(files.outputs, allow_pickle=False)
    true = np.asarray(read_json(files.test_split)["labels"], np.float32).reshape(predicted.shape)
    names = list(facts.metrics.get("per_target", {})) or [str(i) for i in range(true.shape[1])]
    fig = new_figure((4.0 * len(names), 4.0))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        ax.scatter(true[:, i], predicted[:, i], s=4, alpha=0.4)
        low = float(min(true[:, i].min(), predicted[:, i].min()))
        high = float(max(true[:, i].max(), predicted[:, i].max()))
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
    fig.tight_layout()
    save_png(fig, facts.out / "scatter.png")
    doc.heading("Predicted against true")
    doc.image(facts.run_dir, f"{REPORT_DIR}/scatter.png", "predicted against true values")
    doc.para("Test examples; the grey line is a perfect prediction.")
