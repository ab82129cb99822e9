"""The `ftk` command and a project's `train.py` before any run starts: every verb's `--help`,
flags that do not go together, and the `lr-find` printout (the sweep itself replaced).
The verbs on a real project are in tests/integration/test_cli.py."""

import pytest
from helpers import write_tiny_config

from ftk.cli.main import main


@pytest.mark.parametrize(
    "verb", ["new", "presets", "train", "lr-find", "tune", "export", "verify", "doctor"]
)
def test_each_verb_has_useful_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ftk {verb}") and "example" in out


def test_cli_errors_are_one_line(tmp_path, tiny_preset, tiny_csv, capsys):
    from ftk.cli.main import train_main

    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    for argv, message in [
        (["--workers", "2"], "--workers N (N >= 1) goes with --tune"),
        (["--search-only"], "--search-only goes with --tune"),
        (["--tune", "--lr-find"], "one at a time"),
        (["--tune", "--resume", str(tmp_path)], "rerunning the same --tune command"),
    ]:
        assert train_main(["--config", str(path), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ftk: error: ") and message in err and "\n" not in err


def test_lr_find_command_prints_a_sweep_without_a_steepest_point(
    tmp_path, tiny_preset, tiny_csv, capsys, monkeypatch
):
    """A sweep whose loss never falls has no steepest point (`null` in lr_find.json): the
    command still prints its suggestion (minimum/10) and says 'none' for the steepest."""
    from ftk.cli.main import main as ftk_main
    from ftk.runs import find_lr

    def no_descent(config, load_data, **kwargs):
        return {
            "key": "train.learning_rate",
            "suggestion": 1e-6,
            "rule": "minimum_tenth",
            "steepest": None,
            "minimum_tenth": 1e-6,
            "plot": str(tmp_path / "lr_find.png"),
        }

    monkeypatch.setattr(find_lr, "find_learning_rate", no_descent)
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv, recipe="two_phase")
    assert ftk_main(["lr-find", "--config", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "suggested train.learning_rate = 1e-06" in out
    assert "steepest none, minimum/10 1e-06" in out


def test_lr_find_command_errors(tmp_path, tiny_preset, tiny_csv, capsys):
    from ftk.cli.main import main as ftk_main
    from ftk.cli.main import train_main

    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv, recipe="two_phase")
    assert train_main(["--config", str(path), "--apply"]) == 2
    assert "--apply goes with --lr-find" in capsys.readouterr().err
    assert ftk_main(["lr-find", "--config", str(path), "--lr-find-steps", "3"]) == 2
    assert "--lr-find-steps must be >= 10. Received: 3" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
