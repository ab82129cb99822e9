"""Configuration: defaults -> file -> overrides, strict keys and types, validation, round trip."""

from pathlib import Path

import pytest

from ftk.config import Config, load_config, parse_override, replace, to_toml, valid_keys
from ftk.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file():
    config = load_config()
    assert config == Config(base_dir=config.base_dir)
    assert config.runtime.backend == "tensorflow"
    assert config.model.preset == "minilm_l6"


def test_file_then_overrides(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 7\nbatch_size = 4\n")
    config = load_config(path, ["train.epochs=2", "model.trainable=last_n:3"])
    assert config.train.epochs == 2  # override wins over the file
    assert config.train.batch_size == 4  # file wins over the default
    assert config.model.trainable == "last_n:3"
    assert config.train.learning_rate == 5e-5  # default
    assert config.base_dir == str(tmp_path.resolve())


def test_unknown_key_lists_valid_keys(tmp_path):
    path = write(tmp_path, "[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=r"Unknown config key `train.epoch`.*train.epochs"):
        load_config(path)


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown config section `\[trian\]`"):
        load_config(write(tmp_path, "[trian]\nepochs = 3\n"))


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.epochs=three",
            r"`train.epochs` must be an integer. Received: train.epochs='three'",
        ),
        ("train.epochs=2.5", r"`train.epochs` must be an integer"),
        ("train.learning_rate=true", r"`train.learning_rate` must be a number"),
        ("export.onnx=1", r"`export.onnx` must be true or false"),
        ("data.labels=a", r"`data.labels` must be a list of strings"),
        ("model.trainable=last_n:0", r"`model.trainable` must be 'head', 'all' or 'last_n:<k>'"),
        ("runtime.backend=mxnet", r"`runtime.backend` must be one of tensorflow, jax, torch"),
        ("data.format=parquet", r"`data.format` must be one of folder, csv, tfds"),
        ("data.test_split=1.5", r"`data.test_split` must be in \[0, 1\)"),
        ('data.labels=["a"]', r"`data.labels` must be empty"),
        ('data.labels=["a", "a"]', r"without duplicates"),
        ("train.batch_size=0", r"`train.batch_size` must be >= 1"),
        ('export.model_name="../up"', r"`export.model_name` must be letters"),
        ("train", r"must look like section.key=value"),
        ("epochs=3", r"must look like section.key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_int_accepted_for_float_and_bare_words_are_strings():
    config = load_config(None, ["model.dropout=0", "model.preset=./my preset dir"])
    assert config.model.dropout == 0.0 and isinstance(config.model.dropout, float)
    assert config.model.preset == "./my preset dir"


def test_parse_override_uses_toml_values():
    assert parse_override('data.labels=["x", "y"]') == ("data", "labels", ["x", "y"])
    assert parse_override("export.onnx=false") == ("export", "onnx", False)
    assert parse_override("train.learning_rate=3e-5") == ("train", "learning_rate", 3e-5)


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(AttributeError):
        config.train.epochs = 10


def test_toml_round_trip(tmp_path):
    config = load_config(None, ['data.labels=["b", "a"]', 'data.path=we "quote"'])
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    again = load_config(path, base_dir=config.base_dir)
    assert again == config


def test_every_key_listed():
    keys = valid_keys()
    assert "train.epochs" in keys and "export.tolerance" in keys and "data.decode_errors" in keys
    assert len(keys) == len(set(keys))


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = write(tmp_path, '[data]\npath = "data/train.csv"\n')
    config = load_config(path)
    assert config.resolve_path(config.data.path) == (tmp_path / "data/train.csv").resolve()
    assert config.resolve_path("/abs/x") == Path("/abs/x")


def test_replace_validates():
    config = load_config()
    assert replace(config, train={"epochs": 2}).train.epochs == 2
    with pytest.raises(ConfigError):
        replace(config, train={"epochs": 0})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[train\nepochs = 3"))


def test_task_picks_its_keys_and_defaults():
    config = load_config(None, ['run.task="image_classification"', "data.path=images"])
    assert config.model.preset == "efficientnet_lite0"
    assert config.export.model_name == "image_classifier"
    keys = valid_keys("image_classification")
    assert "augment.zoom" in keys and "model.image_size" in keys
    assert "model.sequence_length" not in keys and "data.text_column" not in keys
    assert "augment.zoom" not in valid_keys("text_classification")
    assert "[augment]" in to_toml(config) and "sequence_length" not in to_toml(config)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["model.image_size=96"], r"`model.image_size` is a setting of image_classification"),
        (['run.task="image_classification"', "data.path=x", "data.text_column=t"], "text_class"),
        (['run.task="video"'], r"`run.task` must be one of .*Received: run.task='video'"),
        (['run.task="image_classification"'], r"`data.path` must be a folder"),
    ],
)
def test_task_key_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, overrides)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("augment.rotation=-0.1", r"`augment.rotation` must be in \[0, 0.5\].*rotation=-0.1"),
        ("augment.zoom=1.5", r"augment.zoom=1.5"),
        ('augment.contrast="high"', r"`augment.contrast` must be a number"),
        ('augment.flip="yes"', r"`augment.flip` must be true or false"),
        ("model.image_size=8", r"`model.image_size` must be between 32 and 1024"),
        ("data.on_bad_images=ignore", r"`data.on_bad_images` must be 'error'"),
    ],
)
def test_image_key_validation(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, ['run.task="image_classification"', "data.path=x", override])


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path):
    from ftk.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_bytes('[run]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config.toml is not UTF-8 text \(byte 17"):
        load_config(path)
