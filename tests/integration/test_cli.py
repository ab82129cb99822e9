"""The `ftk` command on a tiny baked project: every verb, the run report of a real (tiny) run,
and one-line errors (`--help` and errors before a run: tests/unit/cli/test_commands.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cookiecutter_config, png_size

from ftk.cli.main import main
from ftk.report import CURVES_SIZE
from ftk.tasks.classification.report import SECTIONS, confusion_size


def one_line_error(capsys, code: int, argv: list[str]) -> str:
    try:
        got = main(argv)
    except SystemExit as e:  # argparse
        got = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code, (argv, got, err)
    assert len(lines) == 1 and lines[0].startswith("ftk"), err
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_preset, tiny_csv) -> Path:
    """`ftk new` with non-default answers: the tiny BERT on a CSV of toy topics."""
    root = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COOKIECUTTER_CONFIG", str(cookiecutter_config(root / "cc")))
        code = main(
            [
                "new",
                "text-classification",
                "--no-input",
                "-o",
                str(root),
                "--set",
                "project_name=Tiny Topics",
                "--set",
                f"preset={tiny_preset}",
                "--set",
                "format=csv",
                "--set",
                f"path={tiny_csv}",
                "--set",
                "sequence_length=16",
                "--set",
                "recipe=two_phase",
            ]
        )
    assert code == 0
    return root / "tiny_topics"


TRAIN = [
    "--set",
    "train.epochs=3",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.learning_rate=3e-3",
    "--set",
    "train.early_stopping_patience=0",
    "--set",
    "export.verify_examples=8",
    "--quiet",
]


@pytest.fixture(scope="module")
def trained(project) -> Path:
    """`ftk train` in the project (its data.py, its config.toml): the run directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        assert main(["train", "--set", "run.report_mistakes=5", *TRAIN]) == 0
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def test_new_bakes_the_answers(project):
    config = (project / "config.toml").read_text()
    assert 'format = "csv"' in config and "sequence_length = 16" in config
    assert (project / "train.py").is_file() and (project / "data.py").is_file()


def test_train_writes_a_report_with_every_section(trained, capsys):
    markdown = (trained / "report.md").read_text()
    page = (trained / "report.html").read_text()
    for section in SECTIONS:
        assert f"\n## {section}\n" in markdown, section
        assert f"<h2>{section}</h2>" in page, section
    assert "Not available" not in markdown
    # Self-contained: every image is embedded, none is linked.
    assert page.count('src="data:image/png;base64,') == 2 and 'src="report/' not in page
    assert "![training and validation curves](report/curves.png)" in markdown
    assert png_size(trained / "report" / "curves.png") == tuple(int(100 * v) for v in CURVES_SIZE)
    labels = json.loads((trained / "labels.json").read_text())
    assert png_size(trained / "report" / "confusion.png") == tuple(
        int(100 * v) for v in confusion_size(len(labels))
    )
    # The recipe's two phases are in the backbone section; the tensorboard command is given.
    assert "| head |" in markdown and "| finetune |" in markdown
    assert f"tensorboard --logdir {trained / 'logs'}" in markdown
    assert 'task = "text_classification"' in markdown  # the resolved config
    # The machine and the speed: the CPU's instruction sets, why this precision, steps/s.
    assert "| CPU |" in markdown and "| precision chosen because |" in markdown
    assert "| training speed (last epoch) |" in markdown and "examples/s" in markdown
    header = (trained / "history.csv").read_text().splitlines()[0].split(",")
    assert "steps_per_second" in header


def test_doctor_probe_times_the_project(project, capsys, monkeypatch):
    """`ftk doctor --probe`: real training steps of the project in a fresh process per
    precision (two on a CPU with bfloat16 instructions), ranked."""
    from ftk.runtime.cpu import cpu_info

    monkeypatch.chdir(project)
    argv = ["doctor", "--probe", "--backends", "tensorflow", "--steps", "2", "--warmup", "1"]
    assert main([*argv, "--set", "train.batch_size=8", "--timeout", "300"]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("CPU:")
        and "probe (training steps/s of the fine-tuning phase, batch 8)" in out
    )
    ranked = [
        line for line in out.splitlines() if line.startswith("  tensorflow ") and "steps/s" in line
    ]
    assert len(ranked) == (2 if cpu_info().bfloat16 else 1), out
    assert "fastest here: runtime.backend = 'tensorflow'" in out


def test_confusion_matrix_counts_are_the_test_predictions(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    test = json.loads((trained / "test_split.json").read_text())
    probabilities = np.load(trained / "test_probabilities.npy", allow_pickle=False)
    labels = np.array(test["labels"])
    assert probabilities.shape == (len(labels), len(metrics["label_names"]))
    expected = np.zeros((len(metrics["label_names"]),) * 2, dtype=int)
    np.add.at(expected, (labels, probabilities.argmax(-1)), 1)
    assert np.array_equal(np.array(metrics["confusion_matrix"]), expected)
    markdown = (trained / "report.md").read_text()
    for name, row in zip(metrics["label_names"], metrics["per_class"].values(), strict=True):
        assert f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} |" in markdown


def test_report_lists_the_most_confident_mistakes(trained, capsys):
    test = json.loads((trained / "test_split.json").read_text())
    probabilities = np.load(trained / "test_probabilities.npy", allow_pickle=False)
    labels = np.array(test["labels"])
    wrong = np.flatnonzero(probabilities.argmax(-1) != labels)
    assert main(["report", str(trained), "--mistakes", "3"]) == 0
    assert "report.html" in capsys.readouterr().out
    markdown = (trained / "report.md").read_text()
    section = markdown.split("## Most confident mistakes")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + min(3, len(wrong))  # the header and the mistakes
    confidences = [float(row.split(" | ")[3]) for row in rows[1:]]
    assert confidences == sorted(confidences, reverse=True)
    if len(wrong):
        top = wrong[np.argmax(probabilities[wrong].max(-1))]
        assert f"{probabilities[top].max():.3f}" == rows[1].split(" | ")[3]


def test_export_and_verify_verbs(trained, capsys):
    assert main(["export", str(trained), "--quiet"]) == 0
    out = capsys.readouterr().out
    version = Path(out.split("SavedModel: ")[1].split()[0])
    assert version.name == "2" and (version / "saved_model.pb").is_file()
    assert main(["verify", str(version)]) == 0
    assert f"OK: {version} matches its Keras model" in capsys.readouterr().out


def test_lr_find_and_tune_verbs(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["lr-find", "--lr-find-steps", "12", "--quiet", *TRAIN[:6]]) == 0
    out = capsys.readouterr().out
    assert "suggested train.learning_rate = " in out
    # Its run directory gets a report too: the sweep's plot, the rest marked as not available.
    sweep_dir = Path(out.split("plot: ")[1].split()[0]).parent
    assert main(["report", str(sweep_dir)]) == 0
    markdown = (sweep_dir / "report.md").read_text()
    assert "![LR finder](lr_find.png)" in markdown and "Not available" in markdown
    search = [
        "--search-only",
        "--set",
        "model.trainable=head",
        "--set",
        "tune.max_trials=2",
        "--set",
        "tune.epochs=1",
        *TRAIN,
    ]
    assert main(["tune", *search]) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "best config:" in out


def test_presets_verbs(project, tiny_preset, capsys):
    assert main(["presets", "list", "--project", str(project)]) == 0
    assert "minilm_l6" in capsys.readouterr().out
    dest = project / "presets" / "tiny"
    assert main(["presets", "pull", str(tiny_preset), "--dest", str(dest)]) == 0
    assert f"vendored {tiny_preset}" in capsys.readouterr().out
    manifest = json.loads((dest / "ftk-preset.json").read_text())
    assert manifest["files"] and all(v.startswith("sha256:") for v in manifest["files"].values())
    assert main(["presets", "list", "--project", str(project)]) == 0
    assert "presets/tiny" in capsys.readouterr().out


def test_wrong_arguments_exit_with_one_line(project, trained, tmp_path, capsys, monkeypatch):
    line = one_line_error(capsys, 2, ["bogus"])
    assert "invalid choice: 'bogus'" in line and "ftk --help" in line
    line = one_line_error(capsys, 2, ["export"])
    assert "run_dir" in line and "ftk export --help" in line
    assert "pull needs a NAME" in one_line_error(capsys, 2, ["presets", "pull"])
    line = one_line_error(capsys, 2, ["report", str(tmp_path / "nowhere")])
    assert "is not an ftk run directory" in line
    assert "--mistakes" in one_line_error(capsys, 2, ["report", str(trained), "--mistakes", "-1"])
    line = one_line_error(capsys, 2, ["new", "audio-classification", "--no-input"])
    assert "Unknown template 'audio-classification'" in line and "text-classification" in line
    line = one_line_error(capsys, 2, ["new", "text-classification", "--set", "colour=blue"])
    assert "no question 'colour'" in line
    line = one_line_error(capsys, 2, ["verify", str(tmp_path)])
    assert str(tmp_path) in line
    monkeypatch.chdir(project)
    line = one_line_error(capsys, 2, ["train", "--set", "train.epochs=0"])
    assert "train.epochs" in line and "Received" in line
    line = one_line_error(capsys, 2, ["train", "--set", "run.report_mistakes=500"])
    assert "run.report_mistakes" in line
