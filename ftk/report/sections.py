"""The sections every run report has, whatever the task: summary, backbone, data, training
curves, exports. A task adds its own between the curves and the exports
(`Task.report_sections`)."""

from __future__ import annotations

from pathlib import Path

from ftk.report.document import (
    REPORT_DIR,
    Doc,
    RunFacts,
    plot_curves,
    read_optional,
)
from ftk.runs.files import RunFiles


def summary_section(doc: Doc, facts: RunFacts) -> None:
    run_dir, run, summary = facts.run_dir, facts.run, facts.summary
    doc.heading("Summary")
    rows = [["run directory", str(run_dir)], ["task", run.get("task", "?")]]
    runtime = run.get("runtime") or {}
    rows.append(
        [
            "backend / devices",
            f"{run.get('backend', '?')}; distribution {runtime.get('distribution', 'none')}, "
            f"{runtime.get('replicas', 1)} replica(s), precision {runtime.get('precision', '?')}",
        ]
    )
    if runtime.get("precision_reason"):
        rows.append(["precision chosen because", runtime["precision_reason"]])
    cpu = runtime.get("cpu")
    if cpu:
        sets = ", ".join(cpu.get("instruction_sets") or []) or "none listed"
        rows.append(["CPU", f"{cpu.get('model', '?')}, {cpu.get('cores', '?')} cores; {sets}"])
    if facts.metrics:
        for name in facts.task.headline_metrics:
            rows.append([f"test {facts.task.metric_title(name)}", f"{facts.metrics[name]:.4f}"])
        rows.append(["test examples", facts.metrics.get("num_examples", "—")])
    speed = [row["steps_per_second"] for row in facts.history if "steps_per_second" in row]
    if speed:
        batch = runtime.get("global_batch_size") or 0
        per_example = f" x batch {batch} = {speed[-1] * batch:.1f} examples/s" if batch else ""
        rows.append(["training speed (last epoch)", f"{speed[-1]:.3f} steps/s{per_example}"])
    if summary:
        seconds = float(summary.get("train_seconds", 0.0))
        rows.append(["wall time", f"{seconds:.0f} s ({seconds / 60:.1f} min), start to verified"])
    else:
        rows.append(["status", "the run did not finish (no summary.json)"])
    doc.table(["", "value"], rows)
    doc.para(f"TensorBoard: `tensorboard --logdir {facts.files.logs}`")


def backbone_section(doc: Doc, facts: RunFacts) -> None:
    run, metrics = facts.run, facts.metrics
    doc.heading("Backbone")
    preset = run.get("preset") or {}
    rows = [
        ["preset", preset.get("name", "?")],
        ["source", preset.get("source", "?")],
        ["weights checksum", preset.get("checksum") or "-"],
    ]
    if metrics and "parameters" in metrics:
        counts = metrics["parameters"]
        share = counts["trainable"] / counts["total"] if counts["total"] else 0.0
        rows.append(
            [
                "trainable / total parameters (last phase)",
                f"{counts['trainable']:,} / {counts['total']:,} ({share:.1%})",
            ]
        )
    doc.table(["", "value"], rows)
    phases = (metrics or {}).get("phases") or []
    if phases:
        doc.table(
            ["phase", "trainable", "epochs", "learning rate", "trainable parameters"],
            [
                [
                    p["name"],
                    p["trainable"],
                    str(p["first_epoch"])
                    if p["first_epoch"] == p["last_epoch"]
                    else f"{p['first_epoch']}-{p['last_epoch']}",
                    f"{p['learning_rate']:g}",
                    "-"
                    if p.get("trainable_parameters") is None
                    else f"{p['trainable_parameters']:,}",
                ]
                for p in phases
            ],
        )


def data_section(doc: Doc, facts: RunFacts) -> None:
    run = facts.run
    doc.heading("Data")
    counts = run.get("split_counts")
    if not counts:
        doc.missing("run.json has no split counts")
        return
    splits = list(counts)
    labels = list(dict.fromkeys(label for split in splits for label in counts[split]))
    rows = [[label, *(counts[s].get(label, 0) for s in splits)] for label in labels]
    rows.append(["all", *(sum(counts[s].values()) for s in splits)])
    doc.table(["label", *splits], rows)
    skipped = run.get("skipped") or []
    doc.para(
        f"{run.get('duplicates_removed', 0)} exact duplicate(s) dropped; "
        f"{len(skipped)} file(s) left out. Data fingerprint: `{run.get('data_fingerprint', '?')}`"
    )
    if skipped:
        doc.table(["left out", "why"], [[s["path"], s["reason"]] for s in skipped[:20]])
    _conflicts(doc, run.get("conflicting_labels") or {})


def _conflicts(doc: Doc, record: dict) -> None:
    """The examples found under more than one label (`data.conflicting_labels`)."""
    if not record.get("count"):
        return
    policy, ties = record.get("policy", "?"), record.get("ties", 0)
    done = (
        f"kept with the most frequent label, {ties} tie(s) left out"
        if policy == "majority"
        else "every copy left out"
    )
    doc.para(
        f"{record['count']} example(s) appear under more than one label "
        f'(`data.conflicting_labels = "{policy}"`): {done}; '
        f"{record.get('rows_removed', 0)} row(s) left out in all."
    )
    examples = record.get("examples") or []
    doc.table(
        ["example", "labels", "where", "kept"],
        [
            [
                e["input"],
                ", ".join(f"{label}: {n}" for label, n in e["labels"].items()),
                ", ".join(e["origins"]),
                "-" if e["kept"] is None else e["kept"],
            ]
            for e in examples
        ],
    )


def curves_section(doc: Doc, facts: RunFacts, metric: str) -> None:
    run_dir, metrics, out = facts.run_dir, facts.metrics, facts.out
    doc.heading("Training curves")
    history = facts.history
    if not history:
        doc.missing("no history.csv (no epoch finished)")
        _extra_plots(doc, run_dir)
        return
    metric_names = ("loss",) if metric == "loss" else ("loss", metric)
    plot_curves(history, (metrics or {}).get("phases") or [], out / "curves.png", metric_names)
    doc.image(run_dir, f"{REPORT_DIR}/curves.png", "training and validation curves")
    last = history[-1]
    doc.para(
        f"{len(history)} epoch(s); last epoch: "
        + ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "epoch")
        + ". Training values are averages over the epoch, with dropout (and image augmentation) on "
        "and the weights still moving; validation values are measured at the epoch's end, so they "
        "can be the better ones."
    )
    _extra_plots(doc, run_dir)


def _extra_plots(doc: Doc, run_dir: Path) -> None:
    files = RunFiles(run_dir)
    for path, title in ((files.interpolation_plot, "WiSE-FT"), (files.lr_find_plot, "LR finder")):
        if path.is_file():
            doc.para(f"{title}:")
            doc.image(run_dir, path.name, title, width=640)


def exports_section(doc: Doc, facts: RunFacts) -> None:
    run_dir, summary = facts.run_dir, facts.summary
    doc.heading("Exports")
    export = read_optional(run_dir, facts.files.export.name) or (summary or {}).get("export") or {}
    if not export:
        doc.missing(
            "nothing was exported (export.export_dir is empty, or the run stopped before); "
            f"`ftk export {run_dir}` exports this run"
        )
        return
    rows = [["SavedModel (TF Serving)", export["version_dir"]]]
    checks = [
        (_CHECKS.get(k, k[: -len("_max_abs_diff")]), v)
        for k, v in export.items()
        if k.endswith("_max_abs_diff")
    ]
    if "onnx" in export:
        rows.append(["ONNX", export["onnx"]])
    if "litert" in export:
        rows.append(["LiteRT", str(export["litert"])])
    if "onnx_int8" in export:
        q = export["onnx_int8"]
        rows.append(
            [
                "ONNX int8",
                f"{q['file']} (test accuracy {q['accuracy_float']:.4f} -> "
                f"{q['accuracy_int8']:.4f})",
            ]
        )
    doc.table(["export", "where"], rows)
    doc.table(
        ["verified against Keras", "max |difference| of probabilities"],
        [[name, f"{value:.2e}"] for name, value in checks],
    )
    doc.para(f"Verified on {export.get('examples', '?')} test examples before publishing.")


_CHECKS = {
    "savedmodel_max_abs_diff": "SavedModel serving_default",
    "savedmodel_pixels_max_abs_diff": "SavedModel serving_pixels",
    "onnx_max_abs_diff": "ONNX Runtime",
    "litert_max_abs_diff": "LiteRT interpreter",
    "rest_row_max_abs_diff": "TF Serving-style REST body, row JSON",
    "rest_columnar_max_abs_diff": "TF Serving-style REST body, columnar JSON",
    "grpc_max_abs_diff": "TF Serving-style gRPC PredictRequest",
}
