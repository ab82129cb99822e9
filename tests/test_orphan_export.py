"""`kill -9` of a JAX training process while its TensorFlow export subprocess runs: the child
dies with it and no version is ever published for the run (issue 19, item 2)."""

import os
import signal
import subprocess
import sys
import time

import psutil
from conftest import tiny_config_toml

from ftk.export.publish import versions


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
    config = tmp_path / "config.toml"
    config.write_text(tiny_config_toml(tiny_preset, tiny_csv, tmp_path, backend="jax"))
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
