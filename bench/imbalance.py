"""Imbalanced data: `train.class_weight` and `train.loss = "focal"` on an imbalanced BBC News
split, each against the plain run (not a ratio of speeds: a table of test macro-F1).

    .venv/bin/python -m bench.imbalance [--runs none,balanced,focal,focal_balanced]

The split: per topic, 80 articles held out for test and 40 for validation (balanced, the
same for every run); of the rest, 120 training articles for three topics and only `--rare`
(12) for business and tech. The text template is baked once into build/bench/projects/
(MiniLM-L6, recipe `two_phase`, its defaults); the runs differ only in the keys named, each
its own `train.py` process, seed 42, no export. Prints the table and writes
docs/results/<date>-imbalance.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import time

from bench.common import PROJECTS, REPO, WORK

RARE = ("business", "tech")
RUNS = {
    "none": [],
    "balanced": ["train.class_weight=balanced"],
    "focal": ["train.loss=focal"],
    "focal_balanced": ["train.loss=focal", "train.class_weight=balanced"],
}
PROJECT = PROJECTS / "imbalance"
DATA = WORK / "imbalance"


def write_split(rare: int, seed: int = 42) -> dict[str, dict[str, int]]:
    """train/validation/test CSVs of BBC News; returns the counts per split and topic."""
    from ftk.data.text import example_dataset_path

    root = example_dataset_path("bbc_news")
    rng = random.Random(seed)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        texts = sorted(
            {f.read_text(encoding="utf-8", errors="replace") for f in topic_dir.glob("*.txt")}
        )
        rng.shuffle(texts)
        keep = rare if topic_dir.name in RARE else 120
        parts = {"test": texts[:80], "validation": texts[80:120], "train": texts[120 : 120 + keep]}
        for name, part in parts.items():
            splits[name] += [(t, topic_dir.name) for t in part]
    DATA.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in splits.items():
        with (DATA / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        counts[name] = {label: sum(1 for _, lb in rows if lb == label) for _, label in rows}
    return counts


def run(name: str, overrides: list[str]) -> dict:
    command = [sys.executable, str(PROJECT / "train.py"), "--quiet"]
    for override in [
        "data.format=csv",
        f"data.path={DATA / 'train.csv'}",
        f"data.validation_path={DATA / 'validation.csv'}",
        f"data.test_path={DATA / 'test.csv'}",
        'export.export_dir=""',
        f"run.run_dir={WORK / 'imbalance-runs' / name}",
        *overrides,
    ]:
        command += ["--set", override]
    started = time.time()
    subprocess.run(command, check=True, timeout=3600)
    (run_dir,) = sorted((WORK / "imbalance-runs" / name).iterdir())[-1:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"metrics": metrics, "seconds": time.time() - started, "run_dir": str(run_dir)}


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|" + " --- |" * (len(names) + 1)]
    first = results[names[0]]["metrics"]
    rows = [("test accuracy", "accuracy"), ("**test macro-F1**", "macro_f1")]
    for label, key in rows:
        lines.append(
            f"| {label} | "
            + " | ".join(f"{r['metrics'][key]:.4f}" for r in results.values())
            + " |"
        )
    for topic in first["per_class"]:
        note = " (rare)" if topic in RARE else ""
        scores = [r["metrics"]["per_class"][topic] for r in results.values()]
        cells = [f"{s['f1']:.3f} (recall {s['recall']:.3f})" for s in scores]
        lines.append(f"| {topic} F1{note} | " + " | ".join(cells) + " |")
    lines.append(
        "| minutes | " + " | ".join(f"{r['seconds'] / 60:.1f}" for r in results.values()) + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--rare", type=int, default=12)
    args = parser.parse_args(argv)
    from ftk.cli.new import bake

    PROJECTS.mkdir(parents=True, exist_ok=True)
    if not PROJECT.exists():
        bake("text-classification", PROJECTS, True, ["project_name=Imbalance"])
    counts = write_split(args.rare)
    results = {name: run(name, RUNS[name]) for name in args.runs.split(",")}
    text = table(results)
    print(text)
    out = REPO / "docs" / "results" / f"{time.strftime('%Y-%m-%d')}-imbalance.md"
    out.write_text(
        f"# Imbalanced BBC News: class weights and focal loss ({time.strftime('%Y-%m-%d')})\n\n"
        f"`python -m bench.imbalance --runs {args.runs} --rare {args.rare}` "
        f"(bench/imbalance.py). Training articles per topic: {counts['train']}; "
        f"validation {sum(counts['validation'].values())}, test "
        f"{sum(counts['test'].values())} (balanced).\n\n{text}\n",
        encoding="utf-8",
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
