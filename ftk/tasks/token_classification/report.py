"""The token-classification sections of the run report: entity scores, per-type scores (with
the training entities of each type) and the most confident wrong spans."""

from __future__ import annotations

from ftk.report.document import Doc, RunFacts

SNIPPET = 200  # characters of a sentence shown beside a wrong span


def add_sections(task, doc: Doc, facts: RunFacts) -> None:
    metrics = facts.metrics
    doc.heading("Test metrics")
    if not metrics:
        doc.missing("no metrics.json (the run stopped before the test evaluation)")
        return
    rows = [
        [task.metric_title(name), f"{metrics[name]:.4f}"]
        for name in ("entity_f1", "entity_precision", "entity_recall", "entity_macro_f1")
        + ("word_accuracy",)
        if name in metrics
    ]
    doc.table(["metric", "test"], rows)
    doc.para(
        f"{metrics.get('entities', 0)} gold entities in the test sentences. An entity counts "
        "only when its type and both boundaries are right (CoNLL rules, computed by seqeval); "
        "each word is predicted on its first word piece."
    )
    doc.heading("Per entity type")
    trained = (facts.run.get("split_counts") or {}).get("train") or {}
    doc.table(
        ["type", "precision", "recall", "F1", "test entities", "training entities"],
        [
            [
                name,
                f"{v['precision']:.3f}",
                f"{v['recall']:.3f}",
                f"{v['f1']:.3f}",
                v["support"],
                trained.get(name, "—"),
            ]
            for name, v in sorted(metrics.get("per_type", {}).items())
        ],
    )
    doc.heading("Most confident wrong spans")
    wrong = metrics.get("wrong_spans", [])[: facts.mistakes]
    if not wrong:
        doc.missing("no wrong spans among the predicted entities")
        return
    doc.table(
        ["span", "predicted", "gold tags", "score", "sentence"],
        [
            [w["span"], w["predicted"], w["gold"], f"{w['score']:.3f}", w["sentence"][:SNIPPET]]
            for w in wrong
        ],
    )
