"""TensorFlow's start-up notices (oneDNN, cuInit on a CPU-only machine) stay out of a run's
log unless --debug; anything else written to fd 2 meanwhile is kept."""

import subprocess
import sys

from ftk.runtime.native_logs import keep, quiet_startup

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
    assert "oneDNN custom operations" in stderr("debug")  # --debug shows everything


def test_other_lines_written_meanwhile_are_kept(capfd):
    import os

    with quiet_startup():
        os.write(2, b"I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on. x\n")
        os.write(2, b"a real warning\n")
    assert capfd.readouterr().err == "a real warning\n"


def test_lines_are_replayed_when_the_block_raises(capfd):
    import os

    try:
        with quiet_startup():
            os.write(2, b"why it failed\n")
            raise ValueError("boom")
    except ValueError:
        pass
    assert capfd.readouterr().err == "why it failed\n"


def test_known_notices():
    assert not keep("E0000 00:00:1 3 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    assert not keep("WARNING: All log messages before absl::InitializeLog() is called are ...\n")
    assert keep("E0000 00:00:1 3 some_op.cc:1] Out of memory\n")
