"""TensorFlow's start-up notices (oneDNN, cuInit on a CPU-only machine) stay out of a run's
log unless --debug; anything else written to fd 2 meanwhile is kept. (In a fresh interpreter:
tests/integration/test_package.py.)"""

from ftk.runtime.native_logs import keep, quiet_startup


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
