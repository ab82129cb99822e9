"""Print what a causal-LM run changed: held-out perplexity and ROUGE-L before -> after, and
sample answers side by side (`make demo-lm` ends with it).

    python -m ftk.tasks.causal_lm.show RUN_DIR_OR_PROJECT [--samples N]

Given a project (a folder with `runs/`), the latest run is shown.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ftk.files import read_json


def latest_run(path: Path) -> Path:
    if (path / "metrics.json").is_file():
        return path
    runs = sorted(p for p in (path / "runs").glob("2*") if (p / "metrics.json").is_file())
    if not runs:
        raise SystemExit(f"ftk: error: no finished run (metrics.json) under {path}")
    return runs[-1]


def _num(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def show(run_dir: Path, samples: int = 2) -> str:
    metrics = read_json(run_dir / "metrics.json")
    before, after = metrics.get("before", {}), metrics.get("after", {})
    lines = [
        f"run: {run_dir}",
        f"held-out perplexity: {before.get('perplexity', float('nan')):.2f} -> "
        f"{metrics['perplexity']:.2f}  (loss {before.get('loss', float('nan')):.3f} -> "
        f"{metrics['loss']:.3f} nats per response token, {metrics['examples']} conversations)",
        f"ROUGE-L: {_num(before.get('rouge_l'))} -> {_num(after.get('rouge_l'))}"
        f"  ({after.get('rouge_l_examples', 0)} held-out prompts)",
    ]
    answers_before = {s["prompt"]: s["answer"] for s in before.get("samples", [])}
    for s in after.get("samples", [])[:samples]:
        lines += [
            "",
            f"prompt:    {s['prompt']}",
            f"reference: {s['reference']}",
            f"before:    {textwrap.shorten(answers_before.get(s['prompt'], ''), 200)}",
            f"after:     {textwrap.shorten(s['answer'], 200)}",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftk.tasks.causal_lm.show")
    parser.add_argument("path", type=Path)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args(argv)
    print(show(latest_run(args.path), args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
