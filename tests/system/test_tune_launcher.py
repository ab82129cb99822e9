"""`ftk.tuning.distributed.launch`: a real KerasTuner distributed search (chief + workers on
127.0.0.1, a black-box objective, no training), crashed workers, a chief that never serves;
and the supervision rules with stand-in processes that start in milliseconds."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftk.tuning import distributed, processes
from ftk.tuning.distributed import free_port, launch

MAX_TRIALS = 6

# A KerasTuner search whose trials return a score computed from `x` (no model). Each trial
# leaves `done_<trial_id>_<tuner_id>`; a trial first waits until every worker is up, so each
# of them gets trials. With TEST_CRASH_TUNER set, that worker dies (exit 9) in its first trial,
# once: the file `crashed` records which trial.
SEARCH_SCRIPT = """
import os
import sys
import time
from pathlib import Path

import keras_tuner

root = Path(sys.argv[1])
tuner_id = os.environ["KERASTUNER_TUNER_ID"]
workers = int(os.environ["TEST_WORKERS"])
if tuner_id != "chief":
    (root / f"ready_{tuner_id}").touch()

if os.environ.get("TEST_FAST_CHIEF_EXIT"):
    # The chief re-checks for the end of the search every 20 s: 0.5 s here keeps tests short.
    from keras_tuner.src.distribute import oracle_chief

    class _FastTime:
        @staticmethod
        def sleep(seconds):
            time.sleep(min(seconds, 0.5))

    oracle_chief.time = _FastTime


def wait_for_workers():
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all((root / f"ready_tuner{i}").exists() for i in range(workers)):
            return
        time.sleep(0.05)


class Search(keras_tuner.engine.base_tuner.BaseTuner):
    def run_trial(self, trial):
        wait_for_workers()
        crashed = root / "crashed"
        if tuner_id == os.environ.get("TEST_CRASH_TUNER") and not crashed.exists():
            crashed.write_text(trial.trial_id)
            os._exit(9)
        time.sleep(0.2)
        (root / f"done_{trial.trial_id}_{tuner_id}").touch()
        return {"score": (trial.hyperparameters.get("x") - 1.0) ** 2}


# The space is declared up front: a worker asking for a trial while the oracle's space is
# still empty is told STOPPED and exits.
space = keras_tuner.HyperParameters()
space.Float("x", -2.0, 2.0)
oracle = keras_tuner.oracles.RandomSearchOracle(
    objective=keras_tuner.Objective("score", "min"),
    max_trials=int(os.environ["TEST_MAX_TRIALS"]),
    hyperparameters=space,
)
Search(oracle=oracle, directory=str(root), project_name="p", overwrite=False).search()
"""

# A stand-in for the search: the chief listens on the oracle port; every process sleeps
# TEST_<ROLE>_SLEEP seconds and exits with TEST_<ROLE>_CODE (and leaves its pid in
# TEST_PID_DIR/<tuner id> if set).
FAKE_SCRIPT = """
import os, socket, time
role = "CHIEF" if os.environ["KERASTUNER_TUNER_ID"] == "chief" else "WORKER"
if os.environ.get("TEST_PID_DIR"):
    pid_file = os.path.join(os.environ["TEST_PID_DIR"], os.environ["KERASTUNER_TUNER_ID"])
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
if role == "CHIEF":
    server = socket.socket()
    server.bind(("127.0.0.1", int(os.environ["KERASTUNER_ORACLE_PORT"])))
    server.listen()
time.sleep(float(os.environ["TEST_" + role + "_SLEEP"]))
raise SystemExit(int(os.environ["TEST_" + role + "_CODE"]))
"""


def _env(workers: int, **extra) -> dict:
    # The objective uses no Keras backend: with "numpy" importing keras_tuner does not import
    # TensorFlow, which saves ~3 s per process start (the file runs ~20 s faster).
    return {
        "KERAS_BACKEND": "numpy",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TEST_WORKERS": str(workers),
        "TEST_MAX_TRIALS": str(MAX_TRIALS),
        **extra,
    }


def _search(tmp_path: Path, **kwargs):
    """Run the KerasTuner search script under `launch` (chief + 2 workers)."""
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    root = tmp_path / "tuner"
    root.mkdir(exist_ok=True)
    start = time.monotonic()
    result = launch([sys.executable, str(script), str(root)], 2, tmp_path / "logs", **kwargs)
    return result, root, time.monotonic() - start


def _trial_statuses(root: Path) -> dict[str, str]:
    return {
        path.parent.name: json.loads(path.read_text())["status"]
        for path in (root / "p").glob("trial_*/trial.json")
    }


def _ran(root: Path, tuner_id: str) -> set[str]:
    """Trial ids that `tuner_id` completed."""
    return {path.name.split("_")[1] for path in root.glob(f"done_*_{tuner_id}")}


def _assert_no_child_left(result) -> None:
    pids = [pid for report in result.reports for pid in report.pids]
    assert pids
    for pid in pids:  # each child led its own process group
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def _reports(result) -> dict:
    return {report.tuner_id: report for report in result.reports}


def test_search_completes_with_two_workers(tmp_path):
    # The real chief: it exits up to ~20 s after the last trial, well within `grace`.
    result, root, seconds = _search(tmp_path, env=_env(2), timeout=75, grace=40)

    assert result.ok, result.message
    assert _trial_statuses(root) == {f"trial_{i}": "COMPLETED" for i in range(MAX_TRIALS)}
    assert _ran(root, "tuner0") and _ran(root, "tuner1")
    assert _ran(root, "tuner0") | _ran(root, "tuner1") == {str(i) for i in range(MAX_TRIALS)}
    reports = _reports(result)
    assert set(reports) == {"chief", "tuner0", "tuner1"}
    assert all(r.status == "ok" and r.returncode == 0 and r.restarts == 0 for r in reports.values())
    assert (tmp_path / "logs" / "tuner0.log").is_file()
    assert seconds < 75
    _assert_no_child_left(result)


def test_crashed_worker_is_restarted_and_retries_its_trial(tmp_path, caplog):
    env = _env(2, TEST_CRASH_TUNER="tuner1", TEST_FAST_CHIEF_EXIT="1")
    with caplog.at_level(logging.WARNING, logger="ftk"):
        result, root, _ = _search(tmp_path, env=env, timeout=75, grace=20)

    assert result.ok, result.message
    assert _trial_statuses(root) == {f"trial_{i}": "COMPLETED" for i in range(MAX_TRIALS)}
    crashed_trial = (root / "crashed").read_text()
    assert crashed_trial in _ran(root, "tuner1")  # handed back to the same tuner id
    reports = _reports(result)
    assert reports["tuner1"].restarts == 1 and reports["tuner1"].status == "ok"
    assert len(reports["tuner1"].pids) == 2
    assert reports["tuner0"].restarts == 0
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "tuner1" in warning and "exited with code 9" in warning and "tuner1.log" in warning
    log = (tmp_path / "logs" / "tuner1.log").read_text()
    assert log.count("===== ftk launch: tuner1") == 2
    _assert_no_child_left(result)


def test_crashed_worker_without_restarts_ends_the_search(tmp_path):
    # The chief would wait forever for the crashed worker's RUNNING trial.
    env = _env(2, TEST_CRASH_TUNER="tuner1")
    result, root, seconds = _search(tmp_path, env=env, timeout=75, worker_restarts=0, grace=3)

    assert not result.ok
    assert seconds < 60
    reports = _reports(result)
    assert reports["tuner1"].status == "failed" and reports["tuner1"].returncode == 9
    assert reports["tuner0"].status == "ok"
    assert reports["chief"].status == "killed"
    assert "tuner1" in result.message and "rerun the same command" in result.message
    assert list(_trial_statuses(root).values()).count("RUNNING") == 1
    _assert_no_child_left(result)


def test_chief_that_never_serves_fails_fast(tmp_path):
    command = [sys.executable, "-c", "import time; print('starting'); time.sleep(60)"]
    start = time.monotonic()
    result = launch(command, 2, tmp_path / "logs", chief_ready_timeout=3)

    assert time.monotonic() - start < 10
    assert not result.ok
    assert "chief" in result.message and "chief_ready_timeout=3" in result.message
    assert "starting" in result.message  # the tail of its log
    assert [(r.tuner_id, r.status) for r in result.reports] == [("chief", "not_ready")]
    _assert_no_child_left(result)


def test_chief_that_exits_before_serving(tmp_path):
    command = [sys.executable, "-c", "raise SystemExit('bad search script')"]
    result = launch(command, 1, tmp_path / "logs", chief_ready_timeout=30)

    assert not result.ok
    assert "exited with code 1 before it accepted connections" in result.message
    assert "bad search script" in result.message
    assert result.reports[0].status == "failed"


def _fake(tmp_path, *, chief_sleep, chief_code, worker_sleep, worker_code, **kwargs):
    script = tmp_path / "fake.py"
    script.write_text(FAKE_SCRIPT)
    env = {
        "TEST_CHIEF_SLEEP": str(chief_sleep),
        "TEST_CHIEF_CODE": str(chief_code),
        "TEST_WORKER_SLEEP": str(worker_sleep),
        "TEST_WORKER_CODE": str(worker_code),
    }
    start = time.monotonic()
    result = launch(
        [sys.executable, str(script)], 2, tmp_path / "logs", env=env, poll=0.1, **kwargs
    )
    return result, time.monotonic() - start


def test_failed_chief_stops_the_workers_at_once(tmp_path):
    result, seconds = _fake(
        tmp_path, chief_sleep=0.5, chief_code=3, worker_sleep=60, worker_code=0, grace=60
    )

    assert not result.ok and seconds < 10
    assert "oracle chief exited with code 3" in result.message
    assert [r.status for r in result.reports] == ["failed", "killed", "killed"]
    _assert_no_child_left(result)


def test_workers_left_after_the_chief_are_killed_after_grace(tmp_path):
    result, seconds = _fake(
        tmp_path, chief_sleep=0.5, chief_code=0, worker_sleep=60, worker_code=0, grace=1
    )

    assert not result.ok and seconds < 10
    assert [r.status for r in result.reports] == ["ok", "killed", "killed"]
    assert "Worker tuner0 was still running 1 s after the chief exited" in result.message
    _assert_no_child_left(result)


def test_worker_failing_after_the_chief_finished(tmp_path):
    result, seconds = _fake(
        tmp_path, chief_sleep=0.3, chief_code=0, worker_sleep=1, worker_code=1, grace=10
    )

    assert not result.ok and seconds < 10
    assert [(r.status, r.restarts) for r in result.reports] == [("ok", 0)] + [("failed", 0)] * 2
    assert "Worker tuner1 exited with code 1 after the chief had finished" in result.message


def test_fake_search_ok_and_exhausted_restarts(tmp_path):
    result, _ = _fake(tmp_path, chief_sleep=1.5, chief_code=0, worker_sleep=0.2, worker_code=0)
    assert result.ok, result.message
    assert [r.status for r in result.reports] == ["ok", "ok", "ok"]

    result, seconds = _fake(
        tmp_path,
        chief_sleep=60,
        chief_code=0,
        worker_sleep=0,
        worker_code=4,
        worker_restarts=2,
        grace=0.5,
    )
    assert not result.ok and seconds < 10
    reports = _reports(result)
    assert reports["tuner0"].restarts == 2 and len(reports["tuner0"].pids) == 3
    assert reports["tuner0"].status == "failed" and reports["tuner0"].returncode == 4
    assert "tuner0, tuner1" in result.message
    _assert_no_child_left(result)


def test_overall_timeout_terminates_everything(tmp_path):
    result, seconds = _fake(
        tmp_path, chief_sleep=60, chief_code=0, worker_sleep=60, worker_code=0, timeout=1.5
    )

    assert not result.ok and seconds < 10
    assert "did not finish within timeout=1.5 s" in result.message
    assert [r.status for r in result.reports] == ["timeout"] * 3
    _assert_no_child_left(result)


def test_interrupt_terminates_every_child(tmp_path, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        started.append(process.pid)
        return process

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(processes.subprocess, "Popen", popen)
    monkeypatch.setattr(distributed, "_supervise", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fake(tmp_path, chief_sleep=60, chief_code=0, worker_sleep=60, worker_code=0)
    assert len(started) == 3
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


# Runs `launch` with the stand-in in a process of its own, which the test then SIGTERMs.
LAUNCHER_SCRIPT = """
import sys
from pathlib import Path
from ftk.tuning.distributed import launch
launch([sys.executable, sys.argv[1]], 2, Path(sys.argv[2]))
"""


def test_sigterm_to_the_launcher_terminates_every_child(tmp_path):
    (tmp_path / "fake.py").write_text(FAKE_SCRIPT)
    (tmp_path / "launcher.py").write_text(LAUNCHER_SCRIPT)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {**os.environ, "TEST_PID_DIR": str(pid_dir), "TEST_CHIEF_SLEEP": "60"}
    env.update(TEST_CHIEF_CODE="0", TEST_WORKER_SLEEP="60", TEST_WORKER_CODE="0")
    env["PYTHONPATH"] = str(Path(distributed.__file__).parents[2])  # the repo, for `ftk`
    args = [tmp_path / "launcher.py", tmp_path / "fake.py", tmp_path / "logs"]
    launcher = subprocess.Popen([sys.executable, *map(str, args)], env=env)
    try:
        deadline = time.monotonic() + 30
        while len(list(pid_dir.glob("*[!p]"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [int(path.read_text()) for path in pid_dir.glob("*[!p]")]  # not *.tmp
        assert len(pids) == 3
        launcher.terminate()
        assert launcher.wait(timeout=15) == 143
    finally:
        launcher.kill()
        launcher.wait()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_busy_port_and_bad_arguments(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = launch([sys.executable, "-c", "pass"], 1, tmp_path / "logs", port=port)
    assert not result.ok and f"Port {port}" in result.message and result.reports == []

    with pytest.raises(TypeError, match="not a string"):
        launch("python search.py", 1, tmp_path)
    with pytest.raises(ValueError, match="`workers` must be an integer >= 1"):
        launch([sys.executable], 0, tmp_path)
    with pytest.raises(ValueError, match="`timeout` must be a positive number"):
        launch([sys.executable], 1, tmp_path, timeout=0)
    assert 0 < free_port() < 65536
