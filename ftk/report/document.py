"""The run report's building blocks: `Doc` (parallel Markdown and HTML), `RunFacts` (what a
run left in its directory), the history reader and the curves plot. No Keras."""

from __future__ import annotations

import base64
import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk.files import read_json
from ftk.runs.files import RunFiles

REPORT_DIR = "report"
CURVES_SIZE = (10.0, 4.0)  # inches at 100 dpi: 1000 x 400 pixels


@dataclass
class RunFacts:
    """What the sections read: the run's files and the JSON already loaded (None if absent)."""

    files: RunFiles
    task: Any  # the run's `ftk.tasks.base.Task`
    run: dict
    metrics: dict | None
    summary: dict | None
    mistakes: int  # how many of the most confident wrong predictions to list
    history: list[dict[str, float]] = field(default_factory=list)  # `read_history`'s rows

    @property
    def run_dir(self) -> Path:
        return self.files.root

    @property
    def out(self) -> Path:
        """Where the report's images go."""
        return self.files.report_dir


@dataclass
class Doc:
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
        self.md.append("| " + " | ".join(md_cell(c) for c in header) + " |")
        self.md.append("|" + "|".join("---" for _ in header) + "|")
        for row, extra in zip(rows, last, strict=True):
            cells = [md_cell(c) for c in row] + ([extra[0]] if extra else [])
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
        self.html.append(img_tag(run_dir / relative, alt, width))

    def code(self, text: str, language: str = "") -> None:
        self.md.append(f"```{language}\n{text.rstrip()}\n```\n")
        self.html.append(f"<pre>{html.escape(text.rstrip())}</pre>")


def md_cell(value) -> str:
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


def img_tag(path: Path, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{size}>'


def read_optional(run_dir: Path, name: str):
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


def plot_curves(
    history: list[dict], phases: list[dict], path: Path, metrics=("loss", "accuracy")
) -> Path:
    """`metrics` per epoch (one panel each), training and validation, with the recipe's
    phases shaded."""
    from ftk.plots import new_figure, save_png

    fig = new_figure(CURVES_SIZE)
    epochs = [int(row["epoch"]) + 1 for row in history]
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
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
