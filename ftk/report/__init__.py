"""The run report: `report.md` and a self-contained `report.html` in the run directory.

Built from the files a run leaves behind (`config.toml`, `run.json`, `history.csv`,
`metrics.json`, `test_split.json`, the test outputs, `summary.json`, `export.json`), so
`ftk report <run_dir>` rebuilds it at any time without Keras. A run that stopped early
gets a report of what it reached; each missing part says why it is missing.

The shared sections are in `ftk.report.sections`; the task adds its own
(`Task.report_sections`: for classification, per-class metrics, the confusion matrix and
the most confident mistakes).

Files written:

- `report.md`: Markdown, the images linked from `report/`.
- `report.html`: one file, the images embedded (send it, open it anywhere).
- `report/curves.png` and the task's images (`report/confusion.png`, `report/mistakes/<n>.png`).

Example:

>>> write_report("runs/20261123-101500")["html"]
'runs/20261123-101500/report.html'
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ftk.config.schema import RunConfig
from ftk.errors import ConfigError
from ftk.files import read_json, write_atomic
from ftk.report import sections
from ftk.report.document import _HTML, CURVES_SIZE, Doc, RunFacts, read_history, read_optional
from ftk.runs.files import RunFiles
from ftk.tasks.registry import get_task

__all__ = ["CURVES_SIZE", "read_history", "write_report"]


def write_report(run_dir: Path, mistakes: int | None = None) -> dict[str, str]:
    """Write `report.md`, `report.html` and their PNGs for `run_dir`; returns their paths.

    `mistakes` (default: the run's `run.report_mistakes`) is how many of the most confident
    wrong test predictions are listed."""
    files = RunFiles(run_dir)
    if not files.run.is_file():
        raise ConfigError(f"{files.root} is not an ftk run directory (no {files.run.name}).")
    run = read_json(files.run)
    facts = RunFacts(
        files=files,
        task=get_task(run.get("task", RunConfig.task)),
        run=run,
        metrics=read_optional(files.root, files.metrics.name),
        summary=read_optional(files.root, files.summary.name),
        mistakes=_configured_mistakes(files.root) if mistakes is None else mistakes,
        history=read_history(files.history),
    )
    facts.out.mkdir(exist_ok=True)
    doc = Doc()
    title = f"Run report: {files.root.name}"
    sections.summary_section(doc, facts)
    sections.backbone_section(doc, facts)
    sections.data_section(doc, facts)
    sections.curves_section(doc, facts, facts.task.interpolation_metric)
    facts.task.report_sections(doc, facts)
    sections.exports_section(doc, facts)
    _configuration_section(doc, facts)
    markdown = f"# {title}\n" + "\n".join(doc.md) + "\n"
    page = _HTML.format(title=html.escape(title), body="\n".join(doc.html))
    write_atomic(files.report_md, markdown)
    write_atomic(files.report_html, page)
    return {"markdown": str(files.report_md), "html": str(files.report_html)}


def _configuration_section(doc: Doc, facts: RunFacts) -> None:
    doc.heading("Configuration")
    config = facts.files.config
    doc.code(config.read_text(encoding="utf-8") if config.is_file() else "(missing)", "toml")
    tuned = facts.run.get("tuned")
    if tuned:
        doc.para(
            f"Tuned: best trial {tuned['best']['trial']} of {tuned['trials']} "
            f"({tuned['objective']} {tuned['best']['score']:.4f}); trials: `{tuned['table']}`"
        )


def _configured_mistakes(run_dir: Path) -> int:
    """The run's `run.report_mistakes`, or its default when the run's config cannot be read."""
    from ftk.runs.dirs import load_run_config

    try:
        return load_run_config(run_dir).run.report_mistakes
    except (ConfigError, OSError, json.JSONDecodeError):
        return RunConfig.report_mistakes
