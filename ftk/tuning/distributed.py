"""Launch and supervise a KerasTuner search in distributed mode on this machine.

KerasTuner's distributed mode runs the same search script in several processes that share the
tuner `directory` (with `overwrite=False`) and differ only in their environment:
`KERASTUNER_TUNER_ID` (`chief`, `tuner0`, `tuner1`, ...), `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT`. The chief's `search()` only serves the oracle over gRPC; the workers
run the trials. Left alone it fails in ways that never end:

- the chief exits only once every worker has asked for a trial after the last one, and it
  checks for that every 20 s, so its exit lags the last trial by up to ~20 s;
- a worker that dies mid-trial leaves its trial RUNNING and the chief waits for it forever
  (a worker restarted with the same tuner id is handed that trial back, so it is retried);
- a worker whose chief is gone waits for it for up to 60 minutes, and one that first asks for
  a trial after the others ran all of them may find the chief exiting (gRPC UNAVAILABLE).

`launch` starts the chief, waits until it accepts connections, starts the workers, restarts a
worker that crashes (same tuner id) up to `worker_restarts` times, and bounds every wait.
Whatever happens (an error, Ctrl-C, SIGTERM) no child process outlives it. POSIX only;
standard library only.

Typical use:

>>> result = launch([sys.executable, "search.py"], workers=2, log_dir=Path("logs"))
>>> result.ok, result.message
>>> [(r.tuner_id, r.status, r.restarts) for r in result.reports]
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ftk.tuning.processes import (  # each process of the search: start, signal, terminate
    HOST,
    KILL_WAIT,  # noqa: F401  (re-exported)
    LOG_TAIL_LINES,  # noqa: F401  (re-exported)
    WorkerReport,
    _accepts_connections,
    _Child,
    _describe_exit,
    _sigterm_raises_system_exit,
    _terminate,
    free_port,
)

logger = logging.getLogger("ftk")


@dataclass
class LaunchResult:
    """`ok` is True only if the chief and every worker exited 0. `message` has one line per
    problem (a summary line when there is none)."""

    ok: bool
    reports: list[WorkerReport]
    message: str


def launch(
    command: Sequence[str],
    workers: int,
    log_dir: Path,
    *,
    env: dict | None = None,
    port: int | None = None,
    chief_ready_timeout: float = 120,
    timeout: float | None = None,
    worker_restarts: int = 1,
    grace: float = 60,
    poll: float = 0.5,
) -> LaunchResult:
    """Run `command` as a KerasTuner chief plus `workers` workers on 127.0.0.1 and supervise them.

    Args:
        command: The search program and its arguments (no shell), e.g.
            `[sys.executable, "search.py"]`. Every process runs it; only the env differs.
        workers: Number of worker processes (`tuner0` ... `tuner{workers-1}`).
        log_dir: Folder for `<tuner_id>.log` (stdout and stderr; appended to, one separator
            line per start).
        env: Variables added to (overriding) a copy of `os.environ`.
        port: The oracle's port; None picks a free one.
        chief_ready_timeout: Seconds the chief has to accept connections.
        timeout: Seconds for the whole search (None: no limit); then everything is terminated.
        worker_restarts: How often each worker is restarted (same tuner id, so its interrupted
            trial is retried) after it exits non-zero or dies from a signal.
        grace: Seconds the workers may run on after the chief exited, and the chief after
            every worker ended. KerasTuner's chief checks for the end every 20 s: keep >= 25.
        poll: Seconds between checks of the processes.

    Returns:
        A `LaunchResult`; never raises for a failed search. Errors in the arguments raise
        `TypeError`/`ValueError`; an exception or KeyboardInterrupt inside terminates every
        child process before it propagates.
    """
    _check_arguments(
        command, workers, port, chief_ready_timeout, timeout, worker_restarts, grace, poll
    )
    port = free_port() if port is None else port
    if _accepts_connections(port):
        busy = (
            f"Port {port} on {HOST} already accepts connections, so a chief started there "
            "could not be told apart from whatever listens on it. Pass another `port`, or "
            "`port=None` for a free one."
        )
        return LaunchResult(False, [], busy)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    base_env = {
        **os.environ,
        **(env or {}),
        "KERASTUNER_ORACLE_IP": HOST,
        "KERASTUNER_ORACLE_PORT": str(port),
    }
    command = [os.fspath(arg) for arg in command]
    chief = _Child("chief", command, base_env, log_dir)
    workers_ = [_Child(f"tuner{i}", command, base_env, log_dir) for i in range(workers)]
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    limits = _Limits(port, chief_ready_timeout, timeout, deadline, worker_restarts, grace, poll)
    with _sigterm_raises_system_exit():
        try:
            return _run(chief, workers_, limits)
        finally:
            # Only what is still running: nothing after a normal return.
            _terminate([chief, *workers_], "killed")


@dataclass
class _Limits:
    port: int
    chief_ready_timeout: float
    timeout: float | None
    deadline: float
    worker_restarts: int
    grace: float
    poll: float


def _run(chief: _Child, workers: list[_Child], limits: _Limits) -> LaunchResult:
    """Start the chief, wait until it serves, start the workers and supervise them."""
    chief.start()
    problem = _wait_for_chief(chief, limits)
    if problem:
        tail = chief.log_tail()
        return LaunchResult(False, [chief.report()], problem + (f"\n{tail}" if tail else " (none)"))
    for worker in workers:
        worker.start()
    problems = _supervise(chief, workers, limits)
    everyone = [chief, *workers]
    ok = not problems and all(child.status == "ok" for child in everyone)
    if ok:
        message = f"Search finished: the chief and {len(workers)} worker(s) exited 0."
    else:
        message = "\n".join(problems) or "The search did not finish cleanly; see the reports."
    return LaunchResult(ok, [child.report() for child in everyone], message)


def _wait_for_chief(chief: _Child, limits: _Limits) -> str | None:
    """None once the chief accepts connections; otherwise what went wrong (chief terminated)."""
    ready_by = min(time.monotonic() + limits.chief_ready_timeout, limits.deadline)
    address = f"{HOST}:{limits.port}"
    while True:
        if _accepts_connections(limits.port):
            return None
        if chief.exited():
            code = _describe_exit(chief.reap())
            chief.status = "failed"
            return (
                f"The oracle chief {code} before it accepted connections on {address}. "
                f"Fix the search script (its log is {chief.log}); last lines:"
            )
        if time.monotonic() >= ready_by:
            timed_out = ready_by >= limits.deadline
            _terminate([chief], "timeout" if timed_out else "not_ready")
            if timed_out:
                return (
                    f"The search did not finish within timeout={limits.timeout:g} s: the "
                    f"oracle chief was still not accepting connections on {address}. Raise "
                    f"`timeout` or see its log {chief.log}; last lines:"
                )
            return (
                f"The oracle chief did not accept connections on {address} within "
                f"chief_ready_timeout={limits.chief_ready_timeout:g} s and was terminated. "
                "Check that the command runs `tuner.search()` and that its tuner sees the "
                "KERASTUNER_* variables, or raise `chief_ready_timeout` if it starts "
                f"slowly (its log is {chief.log}); last lines:"
            )
        time.sleep(min(limits.poll, 0.25))


def _supervise(chief: _Child, workers: list[_Child], limits: _Limits) -> list[str]:
    """Watch the processes until the search ends one way or another; return the problems."""
    problems: list[str] = []
    chief_ended_at = workers_ended_at = None
    while True:
        now = time.monotonic()
        if now >= limits.deadline:
            running = [child.tuner_id for child in (chief, *workers) if child.alive]
            _terminate([chief, *workers], "timeout")
            problems.append(
                f"The search did not finish within timeout={limits.timeout:g} s; terminated "
                f"{', '.join(running) or 'nothing'}. Rerun the same command to resume the search "
                "(KerasTuner reloads it from its directory), or raise `timeout`."
            )
            return problems
        chief_code = chief.reap() if chief.alive and chief.exited() else None
        if chief_code is not None:
            chief_ended_at = now
            chief.status = "ok" if chief_code == 0 else "failed"
        for worker in workers:  # after the chief: no restart once it has exited
            if worker.alive and worker.exited():
                _worker_exited(worker, chief, limits, problems)
        if chief_code not in (None, 0):
            _terminate(workers, "killed")
            problems.append(
                f"The oracle chief {_describe_exit(chief_code)}, so the workers were stopped. "
                f"See its log {chief.log}; last lines:\n{chief.log_tail()}"
            )
            return problems
        if not chief.alive:
            late = [worker for worker in workers if worker.alive]
            if not late:
                return problems
            if now - chief_ended_at >= limits.grace:
                _terminate(late, "killed")
                problems.extend(
                    f"Worker {worker.tuner_id} was still running {limits.grace:g} s after the "
                    f"chief exited and was terminated; see {worker.log}."
                    for worker in late
                )
                return problems
        elif not any(worker.alive for worker in workers):
            workers_ended_at = workers_ended_at or now
            if now - workers_ended_at >= limits.grace:
                _terminate([chief], "killed")
                problems.append(_stuck_chief_problem(chief, workers, limits.grace))
                return problems
        time.sleep(max(0.0, min(limits.poll, limits.deadline - time.monotonic())))


def _worker_exited(worker: _Child, chief: _Child, limits: _Limits, problems: list[str]) -> None:
    """Record a worker's exit; restart it (same tuner id) if it crashed, may be restarted and
    the chief still serves."""
    code = worker.reap()
    if code == 0:
        worker.status = "ok"
        logger.info("Worker %s finished (exit code 0).", worker.tuner_id)
        return
    how = _describe_exit(code)
    if chief.alive and worker.restarts < limits.worker_restarts:
        worker.restarts += 1
        logger.warning(
            "Worker %s %s (log %s). Restarting it with the same tuner id (restart %d of %d), "
            "so the oracle hands it its interrupted trial again.",
            worker.tuner_id,
            how,
            worker.log,
            worker.restarts,
            limits.worker_restarts,
        )
        worker.start()
        return
    worker.status = "failed"
    if chief.alive:
        why = f"no restart left (worker_restarts={limits.worker_restarts})"
    else:
        why = "the chief has exited"
    logger.warning(
        "Worker %s %s (log %s); %s, so it is marked failed.", worker.tuner_id, how, worker.log, why
    )
    if chief.status == "ok":
        # KerasTuner's chief exits once the workers it has heard from are done: a worker that
        # asks for its first trial only then finds no oracle (gRPC UNAVAILABLE).
        problems.append(
            f"Worker {worker.tuner_id} {how} after the chief had finished the search (exit "
            "code 0); a worker that first asks for a trial after the others ran all of them "
            f"fails this way. See its log {worker.log}."
        )
        return
    problems.append(
        f"Worker {worker.tuner_id} {how} after {worker.restarts} restart(s) and is marked "
        f"failed; see its log {worker.log}."
    )


def _stuck_chief_problem(chief: _Child, workers: list[_Child], grace: float) -> str:
    """The message for a chief still serving `grace` s after every worker had ended."""
    failed = [worker.tuner_id for worker in workers if worker.status != "ok"]
    if failed:
        return (
            f"The oracle chief was still running {grace:g} s after every worker had ended and "
            f"was terminated: the failed worker(s) {', '.join(failed)} left their trial RUNNING "
            "and KerasTuner's chief waits for it forever. Fix the cause (see their logs) and "
            "rerun the same command: the search resumes from its directory and the interrupted "
            "trial(s) are retried."
        )
    return (
        f"The oracle chief was still running {grace:g} s after every worker had exited 0 and "
        "was terminated (the trials are complete; its log is "
        f"{chief.log}). KerasTuner's chief checks for the end of the search only every 20 s: "
        "use grace >= 25."
    )


def _check_arguments(
    command, workers, port, chief_ready_timeout, timeout, worker_restarts, grace, poll
) -> None:
    """Raise TypeError/ValueError, saying what is expected, for invalid `launch` arguments."""
    if os.name != "posix":
        raise OSError(
            "ftk.tuning.distributed.launch needs a POSIX system (process groups); "
            f"this is os.name={os.name!r}. Start the KerasTuner processes yourself."
        )
    if isinstance(command, str | bytes):
        raise TypeError(
            "`command` must be a list of arguments, not a string (no shell is used). "
            f"Received {command!r}; pass e.g. shlex.split(...) or [sys.executable, 'search.py']."
        )
    if not command or not all(isinstance(arg, str | os.PathLike) for arg in command):
        raise TypeError(
            "`command` must be a non-empty list of strings, e.g. "
            f"[sys.executable, 'search.py']. Received {command!r}."
        )
    _check_int("workers", workers, 1)
    _check_int("worker_restarts", worker_restarts, 0)
    if port is not None:
        _check_int("port", port, 1)
        if port > 65535:
            raise ValueError(f"`port` must be a TCP port (1-65535) or None; received {port}.")
    for name, value, allow_zero in (
        ("chief_ready_timeout", chief_ready_timeout, False),
        ("timeout", timeout, False),
        ("grace", grace, True),
        ("poll", poll, False),
    ):
        if name == "timeout" and value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
            or (value == 0 and not allow_zero)
        ):
            expected = "a number >= 0" if allow_zero else "a positive number"
            none = " or None" if name == "timeout" else ""
            raise ValueError(f"`{name}` must be {expected} of seconds{none}; received {value!r}.")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {value!r}.")
