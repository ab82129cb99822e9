"""What can be checked before the run directory is made is checked before it (issue 19, item
7); a run that still fails before its first batch leaves no empty run directory behind."""

import json
import shutil

import pytest
from helpers import write_tiny_config

from ftk.cli.main import main as ftk_main
from ftk.config import load_config
from ftk.runs import pipeline as runner


def _config(tmp_path, preset, data):
    return write_tiny_config(tmp_path, preset, data)


def test_a_preset_config_without_a_class_name_fails_before_the_run_directory(
    tiny_preset, tiny_csv, tmp_path, capsys
):
    broken = shutil.copytree(tiny_preset, tmp_path / "broken")
    config = json.loads((broken / "config.json").read_text())
    del config["class_name"]
    (broken / "config.json").write_text(json.dumps(config))
    assert ftk_main(["train", "--config", str(_config(tmp_path, broken, tiny_csv))]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ftk: error:")]
    assert len(errors) == 1 and "names no model" in errors[0] and "class_name" in errors[0]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_run_that_fails_before_its_first_batch_removes_its_directory(
    tiny_preset, tiny_csv, tmp_path, monkeypatch
):
    from ftk.runs import model as run_model

    def broken_build(*args, **kwargs):
        raise ValueError("this backbone does not fit the task")

    monkeypatch.setattr(runner, "build_model", broken_build)
    config = load_config(_config(tmp_path, tiny_preset, tiny_csv))
    with pytest.raises(ValueError, match="does not fit"):
        runner.run(config, verbose=0)
    assert list((tmp_path / "runs").iterdir()) == []
    assert run_model.build_model is not broken_build


def test_too_many_blocks_fails_before_the_head_phase_trains(tiny_preset, tiny_csv, tmp_path):
    from ftk.errors import ConfigError

    config = load_config(
        _config(tmp_path, tiny_preset, tiny_csv),
        ["model.trainable=last_n:5", "recipe.name=two_phase"],
    )
    with pytest.raises(ConfigError, match="asks for the last 5 blocks, but the backbone has 2"):
        runner.run(config, verbose=0)
    assert list((tmp_path / "runs").iterdir()) == []  # nothing trained, nothing left
