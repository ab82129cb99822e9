"""Recovering from a failed or killed export, and what `--resume` accepts (issue 19, items 2-5):
the advice names `ftk export RUN_DIR`, which takes `--set export.*`; a resume of a directory that
is not a stopped training run is a one-line error; leftover staging folders are removed. (An
export whose training process is gone: tests/unit/export/test_publish.py.)"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_tiny_config

from ftk.cli.main import main as ftk_main
from ftk.config import load_config
from ftk.errors import ConfigError, ExportError
from ftk.export.publish import publish, versions
from ftk.runs import pipeline as runner
from ftk.runs.dirs import save_run_config
from ftk.runs.files import RunFiles


@pytest.fixture(scope="module")
def trained_run(tiny_preset, tiny_csv, tmp_path_factory):
    """A run that finished training but was not exported (export.export_dir = "")."""
    tmp = tmp_path_factory.mktemp("recovery")
    path = write_tiny_config(tmp, tiny_preset, tiny_csv)
    config = load_config(path, ['export.export_dir=""', "train.epochs=1", "export.onnx=false"])
    summary = runner.run(config, verbose=0)
    return tmp, Path(summary["run_dir"])


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def test_resume_of_a_finished_run_points_at_ftk_export(trained_run, tmp_path):
    _, run_dir = trained_run
    copy = _copy(run_dir, tmp_path)
    with pytest.raises(ConfigError, match=rf"this run finished.*ftk export {copy}"):
        runner.run(load_config(), resume=copy)
    RunFiles(copy).summary.unlink()  # trained, but the export was killed before the summary
    with pytest.raises(ConfigError) as error:
        runner.run(load_config(), resume=copy)
    message = str(error.value)
    assert f"publish it with: ftk export {copy}" in message and "export.export_dir" in message
    assert "\n" not in message


def test_resume_of_an_lr_find_directory_says_what_it_is(trained_run, tmp_path, capsys):
    tmp, run_dir = trained_run
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    config = load_config(tmp / "config.toml")
    save_run_config(lr_dir, config, {"task": "text_classification", "kind": "lr_find"})
    with pytest.raises(ConfigError, match="learning-rate finder run.*nothing to resume"):
        runner.run(config, resume=lr_dir)
    # Through the command line: one line, exit 2, and nothing trained or published.
    assert ftk_main(["train", "--resume", str(lr_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ftk: error: --resume") and "\n" not in err
    assert sorted(p.name for p in lr_dir.iterdir()) == ["config.toml", "run.json"]


def test_ftk_export_takes_export_keys_and_refuses_others(trained_run, tmp_path, capsys):
    _, run_dir = trained_run
    copy = _copy(run_dir, tmp_path)
    # The run's own config has no destination: the error says how to give one.
    assert ftk_main(["export", str(copy)]) == 2
    assert f"ftk export {copy} --set export.export_dir=DIR" in capsys.readouterr().err
    assert ftk_main(["export", str(copy), "--set", "train.epochs=3"]) == 2
    assert "[export] keys only" in capsys.readouterr().err
    target = tmp_path / "served"
    argv = ["export", str(copy), "--set", f"export.export_dir={target}"]
    assert ftk_main([*argv, "--set", "export.onnx=false", "--set", "export.model_name=m"]) == 0
    assert versions(target / "m") == [1]
    assert not (target / "m" / "1" / "onnx").exists()
    metadata = json.loads((target / "m" / "1" / "assets.extra" / "ftk_export.json").read_text())
    assert metadata["config"]["export"]["export_dir"] == str(target)


def test_the_next_export_removes_what_earlier_ones_left(tmp_path):
    runs, root = tmp_path / "run", tmp_path / "saved" / "m"
    runs.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leftovers = {
            "export-staging-0123456789ab": False,  # the old name (no pid): stale
            "export-staging-999999999-0123456789ab": False,  # a process that is gone
            f"export-staging-{sleeper.pid}-0123456789ab": True,  # an export still running
            "export-failed-20261201-101500-0123456789ab": False,  # superseded
        }
        for name in leftovers:
            (runs / name).mkdir()
            (runs / name / "saved_model.pb").write_bytes(b"x" * 1000)
        publish(root, lambda p: (p / "saved_model.pb").write_text("v"), lambda p: None, runs)
        assert sorted(p.name for p in runs.iterdir()) == sorted(
            k for k, v in leftovers.items() if v
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert versions(root) == [1]

    def bad(path):
        raise ExportError("ONNX does not match.")

    with pytest.raises(ExportError, match="export-failed-"):
        publish(root, lambda p: None, bad, runs)
    (failed,) = [p.name for p in runs.iterdir() if p.name.startswith("export-failed-")]
    publish(root, lambda p: None, lambda p: None, runs)  # the next one removes it
    assert failed not in [p.name for p in runs.iterdir()] and versions(root) == [1, 2]
