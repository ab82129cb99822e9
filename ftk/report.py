"""The run report: `report.md` and a self-contained `report.html` in the run directory.

Built from the files a run leaves behind (`config.toml`, `run.json`, `history.csv`,
`metrics.json`, `test_split.json`, `test_probabilities.npy`, `summary.json`, `export.json`),
so `ftk report <run_dir>` rebuilds it at any time without Keras. A run that stopped early
gets a report of what it reached; each missing part says why it is missing.

Files written:

- `report.md`: Markdown, the images linked from `report/`.
- `report.html`: one file, the images embedded (send it, open it anywhere).
- `report/curves.png`, `report/confusion.png` and, for images, `report/mistakes/<n>.png`.

Example:

>>> write_report("runs/20261123-101500")["html"]
'runs/20261123-101500/report.html'
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftk.errors import ConfigError
from ftk.runs import CONFIG_FILE, RUN_FILE, read_json, write_atomic

REPORT_DIR = "report"
PROBABILITIES_FILE = "test_probabilities.npy"
CURVES_SIZE = (10.0, 4.0)  # inches at 100 dpi: 1000 x 400 pixels
THUMBNAIL = 128  # pixels, the longer side of an image mistake's thumbnail
SNIPPET = 300  # characters of a text mistake
SECTIONS = (
    "Summary",
    "Backbone",
    "Data",
    "Training curves",
    "Test metrics",
    "Per-class metrics",
    "Confusion matrix",
    "Most confident mistakes",
    "Exports",
    "Configuration",
)


def confusion_size(num_classes: int) -> tuple[float, float]:
    """The confusion matrix figure's size in inches (100 dpi): grows with the classes."""
    side = min(max(4.0 + 0.5 * num_classes, 6.0), 20.0)
    return (side + 1.0, side)


@dataclass
class _Doc:
    """The report as parallel Markdown and HTML."""

    md: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.md.append(f"\n## {text}\n")
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def para(self, text: str) -> None:
        self.md.append(text + "\n")
        self.html.append(f"<p>{_inline_html(text)}</p>")

    def missing(self, why: str) -> None:
        self.para(f"_Not available: {why}._")

    def table(self, header: list[str], rows: list[list], last: list[tuple[str, str]] = ()):
        """A table of plain cells (escaped here); `last`, if given, is each row's final cell
        already rendered, as (Markdown, HTML)."""
        last = list(last) or [None] * len(rows)
        self.md.append("| " + " | ".join(_md_cell(c) for c in header) + " |")
        self.md.append("|" + "|".join("---" for _ in header) + "|")
        for row, extra in zip(rows, last, strict=True):
            cells = [_md_cell(c) for c in row] + ([extra[0]] if extra else [])
            self.md.append("| " + " | ".join(cells) + " |")
        self.md.append("")
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
            + (f"<td>{extra[1]}</td>" if extra else "")
            + "</tr>"
            for row, extra in zip(rows, last, strict=True)
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def image(self, run_dir: Path, relative: str, alt: str, width: int | None = None) -> None:
        self.md.append(f"![{alt}]({relative})\n")
        self.html.append(_img_tag(run_dir / relative, alt, width))

    def code(self, text: str, language: str = "") -> None:
        self.md.append(f"```{language}\n{text.rstrip()}\n```\n")
        self.html.append(f"<pre>{html.escape(text.rstrip())}</pre>")


def _md_cell(value) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _inline_html(text: str) -> str:
    """Escaped HTML of a Markdown line that uses only `code` and _emphasis_."""
    out = []
    for i, part in enumerate(html.escape(text).split("`")):
        if i % 2:
            out.append(f"<code>{part}</code>")
        elif part.startswith("_") and part.endswith("_") and len(part) > 2:
            out.append(f"<em>{part[1:-1]}</em>")
        else:
            out.append(part)
    return "".join(out)


def _img_tag(path: Path, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{size}>'


def _read(run_dir: Path, name: str):
    path = run_dir / name
    return read_json(path) if path.is_file() else None


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of `history.csv` (Keras' CSVLogger), one per epoch: a resumed run's repeated epoch
    keeps its last row."""
    if not path.is_file():
        return []
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                values = {k: float(v) for k, v in row.items() if k and v not in (None, "")}
            except ValueError:
                continue
            if "epoch" in values:
                rows[int(values["epoch"])] = values
    return [rows[k] for k in sorted(rows)]


def plot_curves(history: list[dict], phases: list[dict], path: Path) -> Path:
    """Loss and accuracy per epoch, training and validation, with the recipe's phases shaded."""
    from ftk.plots import new_figure, save_png

    fig = new_figure(CURVES_SIZE)
    epochs = [int(row["epoch"]) + 1 for row in history]
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        series = ((metric, "o-", "training"), (f"val_{metric}", "s--", "validation"))
        for key, style, label in series:
            values = [row.get(key, math.nan) for row in history]
            if any(math.isfinite(v) for v in values):
                ax.plot(epochs, values, style, label=f"{label} {metric}")
        for j, phase in enumerate(phases):
            if j % 2:
                ax.axvspan(phase["first_epoch"] - 0.5, phase["last_epoch"] + 0.5, alpha=0.08)
            ax.text(
                (phase["first_epoch"] + phase["last_epoch"]) / 2,
                1.0,
                phase["name"],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize="small",
                color="dimgray",
            )
        ax.set_xlim(0.5, max(epochs) + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return save_png(fig, path)


def plot_confusion(confusion: np.ndarray, labels: list[str], path: Path) -> Path:
    """The confusion matrix: true labels down, predicted across, counts in the cells, colour =
    share of the true label's examples (so small classes show their errors too)."""
    from ftk.plots import new_figure, save_png

    confusion = np.asarray(confusion, dtype=np.int64)
    n = len(labels)
    fig = new_figure(confusion_size(n))
    ax = fig.add_subplot()
    totals = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    shown = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    font = "small" if n <= 12 else "x-small" if n <= 30 else 5
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.tick_params(labelsize=font)
    if n <= 30:
        for (i, j), count in np.ndenumerate(confusion):
            color = "white" if shares[i, j] > 0.6 else "black" if count else "silver"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=font)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix ({int(confusion.sum())} test examples)")
    fig.tight_layout()
    return save_png(fig, path)


def most_confident_mistakes(labels: np.ndarray, probabilities: np.ndarray, n: int) -> list[int]:
    """Indices of the `n` wrong predictions made with the highest probability."""
    predicted = probabilities.argmax(-1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return [int(i) for i in wrong[np.argsort(-confidence, kind="stable")][:n]]


def _thumbnail(source: str, target: Path) -> bool:
    """A PNG thumbnail of an image file (its first frame, RGB); False if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.seek(0)
            thumb = image.convert("RGB")
            thumb.thumbnail((THUMBNAIL, THUMBNAIL))
            # Small images (28x28 digits) are enlarged, without smoothing, to be seen.
            scale = max(1, THUMBNAIL // max(thumb.size))
            if scale > 1:
                thumb = thumb.resize((thumb.width * scale, thumb.height * scale), Image.NEAREST)
    except (OSError, UnidentifiedImageError, ValueError):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    thumb.save(target, format="PNG")
    return True


def _snippet(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _summary_section(doc: _Doc, run_dir: Path, run: dict, summary, metrics) -> None:
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
    if metrics:
        rows.append(["test accuracy", f"{metrics['accuracy']:.4f}"])
        rows.append(["test macro-F1", f"{metrics['macro_f1']:.4f}"])
        rows.append(["test examples", metrics["num_examples"]])
    if summary:
        seconds = float(summary.get("train_seconds", 0.0))
        rows.append(["wall time", f"{seconds:.0f} s ({seconds / 60:.1f} min), start to verified"])
    else:
        rows.append(["status", "the run did not finish (no summary.json)"])
    doc.table(["", "value"], rows)
    doc.para(f"TensorBoard: `tensorboard --logdir {run_dir / 'logs'}`")


def _backbone_section(doc: _Doc, run: dict, metrics) -> None:
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


def _data_section(doc: _Doc, run: dict) -> None:
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


def _curves_section(doc: _Doc, run_dir: Path, metrics, out: Path) -> None:
    doc.heading("Training curves")
    history = read_history(run_dir / "history.csv")
    if not history:
        doc.missing("no history.csv (no epoch finished)")
        _extra_plots(doc, run_dir)
        return
    plot_curves(history, (metrics or {}).get("phases") or [], out / "curves.png")
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


def _extra_plots(doc: _Doc, run_dir: Path) -> None:
    for name, title in (("interpolation.png", "WiSE-FT"), ("lr_find.png", "LR finder")):
        if (run_dir / name).is_file():
            doc.para(f"{title}:")
            doc.image(run_dir, name, title, width=640)


def _metrics_sections(doc: _Doc, run_dir: Path, metrics, out: Path) -> None:
    doc.heading("Test metrics")
    if not metrics:
        doc.missing("no metrics.json (the run stopped before the test evaluation)")
        for title in ("Per-class metrics", "Confusion matrix"):
            doc.heading(title)
            doc.missing("no metrics.json")
        return
    rows = [
        ["accuracy", f"{metrics['accuracy']:.4f}"],
        ["macro-F1", f"{metrics['macro_f1']:.4f}"],
        ["examples", metrics["num_examples"]],
    ]
    cv = metrics.get("cross_validation")
    if cv:
        rows.append(
            [
                f"cross-validation ({len(cv['folds'])} folds) accuracy",
                f"{cv['accuracy']['mean']:.4f} ± {cv['accuracy']['std']:.4f}",
            ]
        )
    interpolation = metrics.get("interpolation")
    if interpolation:
        rows.append(
            [
                "WiSE-FT alpha (best / kept)",
                f"{interpolation['best_alpha']:g} / {interpolation['kept_alpha']:g}",
            ]
        )
    doc.table(["metric", "value"], rows)

    doc.heading("Per-class metrics")
    per_class = metrics["per_class"]
    rows = [
        [name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"]]
        for name, m in per_class.items()
    ]
    macro = [np.mean([m[k] for m in per_class.values()]) for k in ("precision", "recall", "f1")]
    rows.append(["macro average", *(f"{v:.4f}" for v in macro), metrics["num_examples"]])
    doc.table(["label", "precision", "recall", "F1", "support"], rows)

    doc.heading("Confusion matrix")
    plot_confusion(metrics["confusion_matrix"], metrics["label_names"], out / "confusion.png")
    doc.image(run_dir, f"{REPORT_DIR}/confusion.png", "confusion matrix")
    doc.para("Rows: true label; columns: predicted label; cells: test examples.")


def _mistakes_section(doc: _Doc, run_dir: Path, run: dict, metrics, count: int) -> None:
    doc.heading("Most confident mistakes")
    test = _read(run_dir, "test_split.json")
    path = run_dir / PROBABILITIES_FILE
    if not metrics or test is None or not path.is_file():
        doc.missing(f"needs test_split.json and {PROBABILITIES_FILE} (written after the test)")
        return
    probabilities = np.load(path, allow_pickle=False)
    labels = np.asarray(test["labels"], dtype=np.int64)
    names = metrics["label_names"]
    chosen = most_confident_mistakes(labels, probabilities, count)
    wrong = int((probabilities.argmax(-1) != labels).sum())
    if not chosen:
        doc.para("No mistakes on the test split.")
        return
    doc.para(
        f"The {len(chosen)} wrong predictions made with the highest probability "
        f"(of {wrong} wrong of {len(labels)})."
    )
    images = run.get("task") == "image_classification"
    header = ["#", "true", "predicted", "p(predicted)", "p(true)", "image" if images else "text"]
    rows, rendered = [], []
    for rank, i in enumerate(chosen, 1):
        guess = int(probabilities[i].argmax())
        rows.append(
            [
                rank,
                names[labels[i]],
                names[guess],
                f"{probabilities[i, guess]:.3f}",
                f"{probabilities[i, labels[i]]:.3f}",
            ]
        )
        source = test["inputs"][i]
        if images:
            thumb = f"{REPORT_DIR}/mistakes/{rank:03d}.png"
            if _thumbnail(source, run_dir / thumb):
                md_cell = f"![{_md_cell(Path(source).name)}]({thumb}) `{_md_cell(source)}`"
                html_cell = (
                    f"{_img_tag(run_dir / thumb, source)}<br><code>{html.escape(source)}</code>"
                )
            else:
                md_cell = f"`{_md_cell(source)}` (cannot be read now)"
                html_cell = f"<code>{html.escape(source)}</code> (cannot be read now)"
        else:
            md_cell = _md_cell(_snippet(source))
            html_cell = html.escape(_snippet(source))
        rendered.append((md_cell, html_cell))
    doc.table(header, rows, rendered)


def _exports_section(doc: _Doc, run_dir: Path, summary) -> None:
    doc.heading("Exports")
    export = _read(run_dir, "export.json") or (summary or {}).get("export") or {}
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


def write_report(run_dir: Path, mistakes: int | None = None) -> dict[str, str]:
    """Write `report.md`, `report.html` and their PNGs for `run_dir`; returns their paths.

    `mistakes` (default: the run's `run.report_mistakes`) is how many of the most confident
    wrong test predictions are listed."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise ConfigError(f"{run_dir} is not an ftk run directory (no {RUN_FILE}).")
    run = read_json(run_dir / RUN_FILE)
    metrics = _read(run_dir, "metrics.json")
    summary = _read(run_dir, "summary.json")
    if mistakes is None:
        mistakes = _configured_mistakes(run_dir)
    out = run_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    doc = _Doc()
    title = f"Run report: {run_dir.name}"
    _summary_section(doc, run_dir, run, summary, metrics)
    _backbone_section(doc, run, metrics)
    _data_section(doc, run)
    _curves_section(doc, run_dir, metrics, out)
    _metrics_sections(doc, run_dir, metrics, out)
    _mistakes_section(doc, run_dir, run, metrics, mistakes)
    _exports_section(doc, run_dir, summary)
    doc.heading("Configuration")
    config = run_dir / CONFIG_FILE
    doc.code(config.read_text(encoding="utf-8") if config.is_file() else "(missing)", "toml")
    tuned = run.get("tuned")
    if tuned:
        doc.para(
            f"Tuned: best trial {tuned['best']['trial']} of {tuned['trials']} "
            f"({tuned['objective']} {tuned['best']['score']:.4f}); trials: `{tuned['table']}`"
        )
    markdown = f"# {title}\n" + "\n".join(doc.md) + "\n"
    page = _HTML.format(title=html.escape(title), body="\n".join(doc.html))
    write_atomic(run_dir / "report.md", markdown)
    write_atomic(run_dir / "report.html", page)
    return {"markdown": str(run_dir / "report.md"), "html": str(run_dir / "report.html")}


def _configured_mistakes(run_dir: Path) -> int:
    """The run's `run.report_mistakes`, or its default when the run's config cannot be read."""
    from ftk.config import RunConfig
    from ftk.runs import load_run_config

    try:
        return load_run_config(run_dir).run.report_mistakes
    except (ConfigError, OSError, json.JSONDecodeError):
        return RunConfig.report_mistakes


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td {{ max-width: 640px; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
img {{ max-width: 100%; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""
