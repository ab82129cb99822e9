"""A `model.preset` name that is no local folder and no keras-hub built-in name (a typo such as
`minilm_l12`) is an unknown name with close matches, said at once and before any download or
network probe. A known built-in name on an offline machine still gets "cannot be reached"
(test_presets.py). `_no_network` (conftest) fails any test that opens a connection.
"""

import time

import pytest

from ftk.cli.main import main
from ftk.errors import ConfigError, PresetError
from ftk.presets import resolve as presets
from ftk.presets.files import VENDOR_MANIFEST
from ftk.presets.resolve import close_matches, keras_hub_preset_names, resolve_preset


@pytest.fixture
def no_probe(monkeypatch):
    """A probe of the download host fails the test: an unknown name is refused before it."""

    def probe(*args, **kwargs):
        raise AssertionError("an unknown preset name must not probe the network")

    monkeypatch.setattr(presets, "host_reachable", probe)


def test_typo_is_an_unknown_name_with_close_matches(tmp_path, no_probe):
    start = time.monotonic()
    with pytest.raises(ConfigError) as error:
        resolve_preset("minilm_l12", base_dir=tmp_path)
    assert time.monotonic() - start < 2

    message = str(error.value)
    assert "\n" not in message
    assert "`model.preset` = 'minilm_l12'" in message
    assert "not a local preset folder" in message
    assert str(tmp_path / "minilm_l12") in message  # where a folder was looked for
    assert f"keras-hub's {len(keras_hub_preset_names())} built-in presets" in message
    assert "Close matches: 'minilm_l6', 'all_minilm_l12_v2_en'" in message
    assert "ftk presets list --builtin" in message
    assert "kaggle" not in message.lower() and "cannot be reached" not in message


def test_vendored_presets_are_suggested(tmp_path, no_probe):
    vendored = tmp_path / "presets" / "my_bert"
    vendored.mkdir(parents=True)
    (vendored / VENDOR_MANIFEST).write_text("{}", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"Close matches: 'presets/my_bert'"):
        resolve_preset("my_bert2", base_dir=tmp_path)


def test_no_close_match(tmp_path, no_probe):
    with pytest.raises(ConfigError, match=r"No close match\. \(`ftk presets list --builtin`"):
        resolve_preset("xyzzy", base_dir=tmp_path)


def test_known_names_still_resolve(tmp_path, no_probe):
    assert resolve_preset("bert_tiny_en_uncased", base_dir=tmp_path).kind == "online"
    assert resolve_preset("all_minilm_l12_v2_en", base_dir=tmp_path).kind == "online"
    assert resolve_preset("kaggle://k/minilm_l12/x/1", base_dir=tmp_path).kind == "online"
    assert resolve_preset("hf://org/minilm_l12", base_dir=tmp_path).kind == "online"
    (tmp_path / "minilm_l12").mkdir()  # a local folder of that name is not a typo
    with pytest.raises(PresetError, match="config.json"):
        resolve_preset("minilm_l12", base_dir=tmp_path)


def test_without_keras_hub_names_nothing_is_called_unknown(monkeypatch, tmp_path):
    monkeypatch.setattr(presets, "keras_hub_preset_names", frozenset)

    assert resolve_preset("minilm_l12", base_dir=tmp_path).kind == "online"


def test_close_matches_ignore_case_and_find_substrings():
    candidates = [("minilm_l6", "minilm_l6"), ("bert_tiny_en_uncased", "bert_tiny_en_uncased")]

    assert close_matches("MiniLM_L6", candidates) == ["minilm_l6"]
    assert close_matches("tiny", candidates) == ["bert_tiny_en_uncased"]
    assert close_matches("zz", candidates) == []


def test_names_cover_keras_hub_backbone_presets():
    """The names read from keras-hub's sources include every name keras-hub registers itself
    (the list `ftk presets list --builtin` prints): no valid name is ever refused."""
    from ftk.presets.vendor import builtin_preset_names

    assert set(builtin_preset_names()) <= keras_hub_preset_names()


# --------------------------------------------------------------------------------------------
# Through the CLI: one line, exit 2, nothing created
# --------------------------------------------------------------------------------------------


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ftk: error: "), lines
    return lines[0]


def test_cli_pull_of_a_typo(tmp_path, capsys, no_probe):
    line = one_line_error(capsys, ["presets", "pull", "minilm_l12", "--project", str(tmp_path)])

    assert "`model.preset` = 'minilm_l12'" in line and "'minilm_l6'" in line
    assert not (tmp_path / "presets").exists()


def test_cli_train_with_a_typo_creates_no_run_directory(tmp_path, tiny_csv, capsys, no_probe):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[run]\nrun_dir = "{tmp_path / "runs"}"\n[model]\npreset = "minilm_l12"\n'
        f'[data]\nformat = "csv"\npath = "{tiny_csv}"\n',
        encoding="utf-8",
    )

    line = one_line_error(capsys, ["train", "--config", str(config), "--quiet"])

    assert "`model.preset` = 'minilm_l12'" in line and "Close matches: 'minilm_l6'" in line
    assert not (tmp_path / "runs").exists()
