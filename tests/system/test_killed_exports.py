"""Exports killed with SIGKILL: a JAX training process killed while its TensorFlow export
subprocess runs (the child dies with it and no version is ever published for the run, issue 19
item 2), and an export killed mid-write (`saved_models/` is left exactly as it was)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from helpers import image_run_config, write_tiny_config

from ftk.export.publish import versions
from ftk.export.run import export_run
from ftk.runs import pipeline as runner


def _export_child(parent: psutil.Process, log, deadline: float) -> psutil.Process:
    while time.time() < deadline:
        for child in parent.children(recursive=True):
            try:
                if "ftk.export" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        if parent.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.2)
    log.seek(0)
    raise AssertionError(f"no export subprocess started:\n{log.read().decode()[-3000:]}")


def test_killing_the_parent_kills_the_export_child_and_nothing_is_published(
    tiny_preset, tiny_csv, tmp_path
):
    config = write_tiny_config(tmp_path, tiny_preset, tiny_csv, backend="jax")
    command = [sys.executable, "-m", "ftk.cli.main", "train", "--config", str(config)]
    command += ["--set", "train.epochs=1", "--set", "export.onnx=false"]
    with (tmp_path / "train.log").open("w+b") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        try:
            parent = psutil.Process(proc.pid)
            child = _export_child(parent, log, time.time() + 300)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            gone, alive = psutil.wait_procs([child], timeout=60)
            assert not alive, "the export subprocess outlived its training process"
            time.sleep(2)  # nothing is left that could publish; check the tree once more
            assert versions(tmp_path / "saved_models" / "tiny") == []
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def snapshot(root: Path) -> dict:
    """Every file's size and mtime, and every folder (a folder's own mtime is left out: the
    export's destination probe creates and removes a file in `<model_name>/` first)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def test_killing_an_export_mid_write_leaves_saved_models_as_it_was(
    tmp_path, resnet_preset, image_folder
):
    # No ONNX: what is checked is the SavedModel publish, and each export here is then quicker.
    config = image_run_config(
        tmp_path, resnet_preset, image_folder, "data.on_bad_images=skip", "export.onnx=false"
    )
    run_dir = Path(runner.run(config, verbose=0)["run_dir"])
    exports = tmp_path / "saved_models"
    before = snapshot(exports)

    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ftk.export", str(run_dir), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # kill once the SavedModel is being written
            staged = list(run_dir.glob("export-staging-*/variables"))
            if staged or process.poll() is not None:
                break
            time.sleep(0.05)
        assert staged, "the export finished or never started writing"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)

    assert snapshot(exports) == before  # not a file added, changed or removed
    assert [p.name for p in (exports / "colours").iterdir()] == ["1"]
    again = export_run(run_dir)  # the next export still works and takes the next number
    assert again["version"] == 2
