"""The multi-label sections of the run report: the test metrics, each label's scores beside
its threshold and how often it occurs (a plot and a table), and the examples with the most
wrong labels."""

from __future__ import annotations

from ftk.report.document import REPORT_DIR, Doc, RunFacts
from ftk.tasks.text_regression.pairs import shown

SNIPPET = 200  # characters of a text shown beside its labels


def add_sections(task, doc: Doc, facts: RunFacts) -> None:
    metrics = facts.metrics
    doc.heading("Test metrics")
    if not metrics:
        doc.missing("no metrics.json (the run stopped before the test evaluation)")
        return
    keys = ("micro_f1", "macro_f1", "map", "exact_match", "hamming_loss")
    doc.table(["metric", "value"], [[task.metric_title(k), f"{metrics[k]:.4f}"] for k in keys])
    tuned = metrics.get("thresholds_tuned_on")
    doc.para(
        f"{metrics.get('num_examples', 0)} test examples with "
        f"{metrics.get('labels_per_example', 0):.2f} labels each on average; "
        f"{metrics.get('predicted_per_example', 0):.2f} predicted. "
        + (
            "Each label's threshold was tuned for F1 on the validation split."
            if tuned
            else "Every label used the fixed threshold (train.threshold)."
        )
        + " Mean average precision does not depend on the thresholds."
    )
    per_label = metrics.get("per_label", {})
    _plot(doc, facts, per_label)
    doc.heading("Per label")
    rows = sorted(per_label.items(), key=lambda item: -item[1]["support"])
    doc.table(
        ["label", "test examples", "predicted", "threshold", "precision", "recall", "F1", "AP"],
        [
            [
                name,
                str(m["support"]),
                str(m["predicted"]),
                f"{m['threshold']:.3f}",
                *(f"{m[k]:.3f}" for k in ("precision", "recall", "f1", "average_precision")),
            ]
            for name, m in rows
        ],
    )
    doc.heading("Most wrong labels")
    worst = metrics.get("worst", [])[: facts.mistakes]
    if not worst:
        doc.missing("no test example has a wrong label")
        return
    doc.table(
        ["text", "true labels", "predicted (probability)", "wrong"],
        [
            [
                shown(w["text"])[:SNIPPET],
                ", ".join(w["true"]) or "(none)",
                ", ".join(f"{k} {v:.2f}" for k, v in w["predicted"].items()) or "(none)",
                str(w["wrong"]),
            ]
            for w in worst
        ],
    )


def _plot(doc: Doc, facts: RunFacts, per_label: dict) -> None:
    """Each label's test F1 and average precision, labels by how often they occur."""
    from ftk.plots import new_figure, save_png

    if not per_label:
        return
    names = sorted(per_label, key=lambda n: -per_label[n]["support"])
    fig = new_figure((max(6.0, 0.45 * len(names) + 2), 4.0))
    ax = fig.add_subplot(1, 1, 1)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [per_label[n]["f1"] for n in names], 0.4, label="F1")
    ax.bar(
        [i + 0.2 for i in x],
        [per_label[n]["average_precision"] for n in names],
        0.4,
        label="average precision",
    )
    ax.set_xticks(list(x))
    ax.set_xticklabels(
        [f"{n} ({per_label[n]['support']})" for n in names], rotation=60, ha="right", fontsize=8
    )
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right")
    fig.tight_layout()
    save_png(fig, facts.out / "per_label.png")
    doc.heading("Labels")
    doc.image(facts.run_dir, f"{REPORT_DIR}/per_label.png", "F1 and average precision per label")
    doc.para("Test F1 and average precision per label; in brackets, the label's test examples.")
