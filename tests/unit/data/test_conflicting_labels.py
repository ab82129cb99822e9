"""`data.conflicting_labels`: an example found under more than one label stops the run (the
default), or is dropped, or keeps its most frequent label; what was found is in the log,
run.json and the report's data section."""

import json
import logging
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from helpers import write_csv

from ftk.config import DataConfig, load_config
from ftk.data.splits import Row, build_splits
from ftk.data.text import load_text_splits
from ftk.errors import ConfigError, DataError
from ftk.report import write_report
from ftk.runs.pipeline import Run, _log_data, open_run_directory

LONG = "a long example text that goes on and on " * 5


def rows_with_conflicts() -> list[Row]:
    """40 clean rows (a/b alternating), 2 exact repeats, and three conflicting inputs:
    LONG (a, b, a: majority a), "tied" (a, b: a tie) and "spam" (b, a, b, b: majority b)."""
    rows = [Row(f"text number {i}", "a" if i % 2 else "b", f"f.csv:{i + 2}") for i in range(40)]
    rows += [Row("text number 1", "a", "f.csv:50"), Row("text number 2", "b", "f.csv:51")]
    extra = [(LONG, "a"), ("tied", "a"), (LONG, "b"), ("spam", "b"), ("tied", "b")]
    extra += [("spam", "a"), (LONG, "a"), ("spam", "b"), ("spam", "b")]
    rows += [Row(text, label, f"f.csv:{60 + i}") for i, (text, label) in enumerate(extra)]
    return rows


def split(rows, policy=None):
    config = DataConfig(path="f.csv", **({"conflicting_labels": policy} if policy else {}))
    return build_splits(rows, None, None, config, seed=0)


def all_rows(splits) -> list[tuple[str, str]]:
    return [
        (text, splits.label_names[label])
        for part in (splits.train, splits.validation, splits.test)
        for text, label in zip(part.inputs, part.labels.tolist(), strict=True)
    ]


def test_default_stops_and_names_the_option(tmp_path):
    rows = [(f"text number {i}", "a" if i % 2 else "b") for i in range(20)]
    rows += [("text number 1", "b"), ("text number 2", "a")]
    path = write_csv(tmp_path / "conflict.csv", rows)
    with pytest.raises(DataError) as caught:
        load_text_splits(DataConfig(format="csv", path=str(path)))
    message = str(caught.value)
    assert "two labels: 'a' at" in message and "conflict.csv:3" in message
    assert "2 example(s) have more than one label" in message
    assert 'data.conflicting_labels = "drop" or "majority"' in message
    with pytest.raises(DataError, match="conflicting_labels"):
        split(rows_with_conflicts(), "error")


def test_drop_leaves_out_every_copy():
    splits = split(rows_with_conflicts(), "drop")
    kept = all_rows(splits)
    assert sorted(kept) == sorted({(r.input, r.label) for r in rows_with_conflicts()[:40]})
    assert splits.duplicates_removed == 2
    conflicts = splits.conflicts
    assert (conflicts.policy, conflicts.count, conflicts.rows_removed) == ("drop", 3, 9)
    first = conflicts.examples[0]
    assert first.input.startswith("a long example") and len(first.input) == 60
    assert first.labels == {"a": 2, "b": 1} and first.kept is None
    assert first.origins == ["f.csv:60", "f.csv:62", "f.csv:66"]


def test_majority_keeps_the_most_frequent_label_and_drops_ties():
    splits = split(rows_with_conflicts(), "majority")
    kept = all_rows(splits)
    assert (LONG, "a") in kept and ("spam", "b") in kept
    assert not any(text == "tied" for text, _ in kept)
    assert len(kept) == len(set(kept)) == 42
    conflicts = splits.conflicts
    assert (conflicts.count, conflicts.ties, conflicts.rows_removed) == (3, 1, 9 - 2)
    assert [e.kept for e in conflicts.examples] == ["a", None, "b"]
    assert conflicts.examples[2].labels == {"b": 3, "a": 1}
    line = conflicts.summary()
    assert "3 example(s) appear under more than one label" in line
    assert "left out 1 tie(s)" in line and "'tied' a: 1, b: 1 (f.csv:61, f.csv:64)" in line
    assert "\n" not in line


def test_conflicts_shown_are_capped_at_five():
    rows = [Row(f"t{i}", "ab"[i % 2], f"x:{i}") for i in range(20)]
    rows += [Row(f"t{i}", "ab"[(i + 1) % 2], f"y:{i}") for i in range(8)]
    splits = split(rows, "drop")
    assert splits.conflicts.count == 8 and len(splits.conflicts.examples) == 5
    assert splits.conflicts.summary().endswith("; and 3 more")


@pytest.mark.parametrize("value", ["vote", "Drop", ""])
def test_a_bad_value_names_the_key(value):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [f'data.conflicting_labels="{value}"'])
    message = str(caught.value)
    assert "`data.conflicting_labels` must be one of 'error', 'drop', 'majority'" in message
    assert f"Received: data.conflicting_labels={value!r}" in message


@dataclass
class _Info:
    name: str = "p"
    source: str = "a test"
    checksum: str = ""


def test_log_run_json_and_report(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("ftk"), "propagate", True)  # off after a CLI test
    config = load_config(
        None,
        [f'run.run_dir="{tmp_path}"', 'export.export_dir=""', 'data.conflicting_labels="drop"'],
    )
    state = Run(config=config, user_config=config, resume=None, verbose=0)
    state.runtime = SimpleNamespace(is_chief=True, to_json=lambda: {})
    state.task, state.info = SimpleNamespace(name="text_classification"), _Info()
    state.splits = split(rows_with_conflicts(), "drop")
    with caplog.at_level(logging.WARNING, logger="ftk"):
        open_run_directory(state, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("3 example(s) appear under more than one label" in w for w in warnings)
    run = json.loads(state.files.run.read_text())
    record = run["conflicting_labels"]
    assert (record["count"], record["policy"], record["rows_removed"]) == (3, "drop", 9)
    assert record["examples"][1] == {
        "input": "tied",
        "labels": {"a": 1, "b": 1},
        "origins": ["f.csv:61", "f.csv:64"],
        "kept": None,
    }
    write_report(state.files.root)
    markdown = (state.files.root / "report.md").read_text()
    data = markdown.split("## Data")[1].split("\n## ")[0]
    assert "3 example(s) appear under more than one label" in data
    assert '`data.conflicting_labels = "drop"`' in data and "9 row(s) left out" in data
    assert "| tied | a: 1, b: 1 | f.csv:61, f.csv:64 | - |" in data


def test_no_conflicts_no_warning(caplog):
    splits = split(rows_with_conflicts()[:42])
    assert splits.conflicts.count == 0 and splits.duplicates_removed == 2
    with caplog.at_level(logging.WARNING, logger="ftk"):
        _log_data(splits)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
