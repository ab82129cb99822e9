"""`ftk.report` on run directories written by hand: image thumbnails, escaping of what came
from the data, and the report of a run that stopped early. (A real run's report is checked in
tests/integration/test_cli.py.)"""

import csv
import json
from pathlib import Path

import numpy as np
from helpers import png_size
from PIL import Image

from ftk.report import write_report
from ftk.tasks.classification.metrics import classification_report
from ftk.tasks.classification.report import (
    SECTIONS,
    THUMBNAIL,
    most_confident_mistakes,
)


def write_run(run_dir: Path, task: str, inputs: list[str], labels, probabilities) -> None:
    names = ["cat", "dog"]
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(f'[run]\ntask = "{task}"\n')
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "base_dir": str(run_dir),
                "task": task,
                "backend": "jax",
                "preset": {"name": "p", "source": "a test", "checksum": ""},
                "split_counts": {"train": {"cat": 3, "dog": 3}, "test": {"cat": 2, "dog": 2}},
            }
        )
    )
    probabilities = np.asarray(probabilities, dtype=np.float32)
    metrics = classification_report(np.array(labels), probabilities.argmax(-1), names)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "test_split.json").write_text(json.dumps({"inputs": inputs, "labels": labels}))
    np.save(run_dir / "test_probabilities.npy", probabilities, allow_pickle=False)
    (run_dir / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,0.7\n")


def test_image_mistakes_have_thumbnails_in_both_files(tmp_path):
    paths = []
    for i, size in enumerate([(28, 28), (300, 200), (64, 64), (50, 80)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((size[1], size[0], 3), 40 * i, np.uint8)).save(path)
        paths.append(str(path))
    paths[3] = str(tmp_path / "moved_away.png")  # gone since training: still listed
    probs = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.95, 0.05]]
    write_run(tmp_path / "run", "image_classification", paths, [1, 0, 0, 1], probs)
    assert most_confident_mistakes(np.array([1, 0, 0, 1]), np.array(probs), 10) == [3, 0, 1, 2]

    write_report(tmp_path / "run", mistakes=3)
    run = tmp_path / "run"
    markdown = (run / "report.md").read_text()
    page = (run / "report.html").read_text()
    assert "moved_away.png` (cannot be read now)" in markdown
    thumbs = sorted((run / "report" / "mistakes").iterdir())
    assert [p.name for p in thumbs] == ["002.png", "003.png"]
    # A 28x28 digit is enlarged 4x without smoothing; a large image shrinks to fit.
    assert png_size(thumbs[0]) == (112, 112)
    assert png_size(thumbs[1]) == (THUMBNAIL, round(THUMBNAIL * 200 / 300))
    assert "![img0.png](report/mistakes/002.png)" in markdown
    # curves + confusion + 2 thumbnails, all embedded
    assert page.count('src="data:image/png;base64,') == 4
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page
    assert "## Exports" in markdown and "nothing was exported" in markdown


def test_text_from_the_data_is_escaped(tmp_path):
    evil = "<script>alert(1)</script> | pipes | and\nnewlines " + "x" * 400
    write_run(tmp_path / "run", "text_classification", [evil, "fine"], [0, 1], [[0.1, 0.9], [0, 1]])
    write_report(tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<script>" not in markdown and "\\| pipes \\|" in markdown
    row = next(line for line in markdown.splitlines() if "alert(1)" in line)
    assert row.endswith("… |") and len(row) < 420  # a snippet, on one line


def test_a_run_that_stopped_early_still_gets_a_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"base_dir": str(tmp_path), "task": "text_classification"})
    )
    paths = write_report(run)
    markdown = Path(paths["markdown"]).read_text()
    for section in SECTIONS:
        assert f"## {section}" in markdown
    assert "the run did not finish" in markdown
    assert "no history.csv" in markdown and "no metrics.json" in markdown


def test_history_rows_of_a_resumed_epoch_keep_the_last(tmp_path):
    from ftk.report import read_history

    path = tmp_path / "history.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows(
            [["epoch", "loss"], [0, 1.0], [1, 0.9], ["epoch", "loss"], [1, 0.8], [2, 0.7]]
        )
    assert [(r["epoch"], r["loss"]) for r in read_history(path)] == [
        (0.0, 1.0),
        (1.0, 0.8),
        (2.0, 0.7),
    ]
