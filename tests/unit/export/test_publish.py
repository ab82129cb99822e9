"""`ftk.export.publish`: versions are published atomically and never overwritten, across
filesystems through a hidden staging folder, the destination probed without a trace, and nothing
published once the training process is gone."""

import os
from pathlib import Path

import pytest

from ftk.errors import ExportError, VerificationError
from ftk.export.publish import publish, versions


def test_publish_is_atomic_and_never_overwrites(tmp_path):
    root = tmp_path / "saved_models" / "model"
    runs = tmp_path / "run"
    (root / "1").mkdir(parents=True)
    (root / "1" / "saved_model.pb").write_text("v1")

    def write(path):
        (path / "saved_model.pb").write_text("new")

    published = publish(root, write, lambda path: None, staging_root=runs)
    assert published == root / "2"
    assert (root / "1" / "saved_model.pb").read_text() == "v1"
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]  # staged elsewhere

    def bad_verify(path):
        raise VerificationError("ONNX does not match the Keras model.")

    with pytest.raises(VerificationError, match=r"Partial files kept in .*export-failed-"):
        publish(root, write, bad_verify, staging_root=runs)
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]  # nothing new in saved_models
    assert [p.name for p in runs.iterdir() if p.name.startswith("export-failed-")]

    def crash(path):
        raise RuntimeError("disk full")

    with pytest.raises(ExportError, match="disk full"):
        publish(root, crash, lambda path: None, staging_root=runs)
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]
    assert not [p for p in runs.iterdir() if p.name.startswith("export-staging")]


def test_publish_across_filesystems_goes_through_a_hidden_staging_dir(tmp_path, monkeypatch):
    import errno
    import os

    from ftk.export import publish as publish_module

    root = tmp_path / "saved_models" / "model"
    real_rename = os.rename
    renames = []

    def rename(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        if Path(src).name.startswith("export-staging-"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(publish_module.os, "rename", rename)
    published = publish(root, lambda p: (p / "x").write_text("x"), lambda p: None, tmp_path / "r")
    assert published == root / "1" and (published / "x").read_text() == "x"
    assert renames[-1][0].startswith(".staging-") and renames[-1][1] == "1"
    assert sorted(p.name for p in root.iterdir()) == ["1"]


def test_writable_check_leaves_no_trace(tmp_path):
    from ftk.export.publish import check_writable

    check_writable(tmp_path / "saved_models" / "news")
    assert list(tmp_path.iterdir()) == []  # the folders it made to probe are gone again
    (tmp_path / "kept").mkdir()
    check_writable(tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []


def test_an_export_whose_parent_is_gone_does_not_publish(tmp_path, monkeypatch):
    # This process pretends to be a child of a training process that has died.
    monkeypatch.setenv("FTK_PARENT_PID", str(os.getppid() + 1_000_000))
    root = tmp_path / "saved" / "m"
    with pytest.raises(ExportError, match="training process .* is gone; not publishing"):
        publish(root, lambda p: (p / "x").write_text("x"), lambda p: None, tmp_path / "run")
    assert versions(root) == []
