"""The classification sections of the run report: test metrics, per-class metrics, the
confusion matrix and the most confident mistakes (with image thumbnails for image tasks)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ftk.report.document import REPORT_DIR, Doc, RunFacts, img_tag, md_cell, read_optional

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


def add_sections(task, doc: Doc, facts: RunFacts) -> None:
    """What `ClassificationTask.report_sections` adds."""
    _metrics_sections(doc, facts)
    _mistakes_section(task, doc, facts)


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


def _metrics_sections(doc: Doc, facts: RunFacts) -> None:
    run_dir, metrics, out = facts.run_dir, facts.metrics, facts.out
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
    trained = (facts.run.get("split_counts") or {}).get("train") or {}
    weights = _class_weights(facts, [trained.get(name, 0) for name in per_class])
    rows = [
        [
            name,
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
            m["support"],
            trained.get(name, "?"),
            f"{w:.3g}",
        ]
        for (name, m), w in zip(per_class.items(), weights, strict=True)
    ]
    macro = [np.mean([m[k] for m in per_class.values()]) for k in ("precision", "recall", "f1")]
    total = sum(trained.values()) if trained else ""
    rows.append(["macro average", *(f"{v:.4f}" for v in macro), metrics["num_examples"], total, ""])
    headers = ["label", "precision", "recall", "F1", "support", "training examples", "loss weight"]
    doc.table(headers, rows)

    doc.heading("Confusion matrix")
    plot_confusion(metrics["confusion_matrix"], metrics["label_names"], out / "confusion.png")
    doc.image(run_dir, f"{REPORT_DIR}/confusion.png", "confusion matrix")
    doc.para("Rows: true label; columns: predicted label; cells: test examples.")


def _class_weights(facts: RunFacts, counts: list[int]) -> list[float]:
    """Each class's loss weight in training: 1, or `train.class_weight = "balanced"`'s."""
    from ftk.runs.dirs import load_run_config
    from ftk.tasks.classification.weights import balanced_weights

    try:
        balanced = load_run_config(facts.run_dir).train.class_weight == "balanced"
    except Exception:  # noqa: BLE001 (an old or partial run: report it unweighted)
        balanced = False
    if not balanced or not sum(counts):
        return [1.0] * len(counts)
    labels = np.repeat(np.arange(len(counts)), counts)
    return balanced_weights(labels, len(counts)).tolist()


def _mistakes_section(task, doc: Doc, facts: RunFacts) -> None:
    run_dir, metrics, count = facts.run_dir, facts.metrics, facts.mistakes
    doc.heading("Most confident mistakes")
    test = read_optional(run_dir, facts.files.test_split.name)
    path = facts.files.outputs
    if not metrics or test is None or not path.is_file():
        doc.missing(f"needs test_split.json and {path.name} (written after the test)")
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
    images = task.input_kind == "image"
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
                md_text = f"![{md_cell(Path(source).name)}]({thumb}) `{md_cell(source)}`"
                html_cell = (
                    f"{img_tag(run_dir / thumb, source)}<br><code>{html.escape(source)}</code>"
                )
            else:
                md_text = f"`{md_cell(source)}` (cannot be read now)"
                html_cell = f"<code>{html.escape(source)}</code> (cannot be read now)"
        else:
            md_text = md_cell(_snippet(source))
            html_cell = html.escape(_snippet(source))
        rendered.append((md_text, html_cell))
    doc.table(header, rows, rendered)
