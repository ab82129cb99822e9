"""What can be checked before the run directory is made is checked before it (issue 19, item
7); a run that still fails before its first batch leaves no empty run directory behind."""

import json
import shutil

import pytest
from conftest import tiny_config_toml

from ftk.cli.main import main as ftk_main
from ftk.config import load_config
from ftk.runs import pipeline as runner


def _config(tmp_path, preset, data):
    path = tmp_path / "config.toml"
    path.write_text(tiny_config_toml(preset, data, tmp_path), encoding="utf-8")
    return path


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


def test_a_timm_checkpoint_folder_is_a_model(tmp_path):
    from ftk.presets.resolve import resolve_preset

    folder = tmp_path / "timm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "efficientnet_lite0"}))
    (folder / "model.safetensors").write_bytes(b"")
    assert resolve_preset(str(folder)).kind == "local"


def test_too_many_blocks_fails_before_the_head_phase_trains(tiny_preset, tiny_csv, tmp_path):
    from ftk.errors import ConfigError

    config = load_config(
        _config(tmp_path, tiny_preset, tiny_csv),
        ["model.trainable=last_n:5", "recipe.name=two_phase"],
    )
    with pytest.raises(ConfigError, match="asks for the last 5 blocks, but the backbone has 2"):
        runner.run(config, verbose=0)
    assert list((tmp_path / "runs").iterdir()) == []  # nothing trained, nothing left


def test_a_refused_template_answer_is_one_line_naming_it(tmp_path, capfd):
    argv = ["new", "text-classification", "-o", str(tmp_path), "--no-input"]
    assert ftk_main([*argv, "--set", "trainable=some"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("ftk: error: The template refused an answer: `trainable` must be")
    assert "\n" not in err and "Traceback" not in err and "trainable='some'" in err
    assert list(tmp_path.iterdir()) == []


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path):
    from ftk.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_bytes('[run]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config.toml is not UTF-8 text \(byte 17"):
        load_config(path)
