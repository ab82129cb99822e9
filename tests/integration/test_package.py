"""Checks of the package that need another process: fresh interpreters (what `import ftk`
imports, keras-hub's preset names read without importing keras-hub, TensorFlow's start-up
notices kept out of the log) and git (no package file ignored)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO

ROOT = REPO
PACKAGE = REPO / "ftk"

SCRIPT = """
import os, sys
from ftk.runtime.backend import set_backend
from ftk.runtime.native_logs import quiet_env, start_tensorflow
quiet_env(debug=sys.argv[1] == "debug")
set_backend("tensorflow")
start_tensorflow(debug=sys.argv[1] == "debug")
import tensorflow as tf
tf.constant(1) + 1
list(tf.data.Dataset.range(4).map(lambda x: x * 2).batch(2))  # TF's int64 notice on some CPUs
os.write(2, b"after start\\n")
"""


def test_start_up_notices_are_hidden_unless_debug():
    def stderr(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        return done.stderr

    quiet = stderr("quiet")
    assert "oneDNN" not in quiet and "cuInit" not in quiet and "I0000" not in quiet, quiet
    assert "E0000" not in quiet and "after start" in quiet
    debug = stderr("debug")  # --debug shows everything; which notices depends on the CPU and GPU
    notices = ("oneDNN custom operations", "cuInit", "absl::InitializeLog")
    assert any(notice in debug for notice in notices), debug


def test_import_ftk_and_its_config_do_not_import_keras():
    code = (
        "import sys, ftk, ftk.config, ftk.tasks; ftk.config.load_config(); "
        "ftk.tasks.task_names(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', "
        "'jax', 'torch', 'keras_hub', 'numpy'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_package_file_is_ignored_by_git():
    """A `.gitignore` rule must never hide a module (a `runs/` rule once hid `ftk/runs/`)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.split() == []


def test_names_are_read_without_importing_keras_hub():
    code = (
        "import sys; from ftk.presets.resolve import keras_hub_preset_names as n; "
        "names = n(); assert 'bert_tiny_en_uncased' in names and len(names) > 100, len(names); "
        "assert 'keras_hub' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
