"""The processes of a distributed search on this machine (`ftk.tuning.distributed`): the chief
and each worker in a process group of its own, restartable, with its log; and how they are
signalled, terminated, reaped and reported.

A child is never reaped before its whole process group has been killed, so signalling the
group stays safe until then. POSIX only; standard library only.

Example:

>>> child = _Child("tuner0", [sys.executable, "search.py"], env, Path("logs"))
>>> child.start()
>>> _terminate([child], "killed")
>>> child.report()        # WorkerReport(tuner_id="tuner0", ..., status="killed")
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("ftk")

HOST = "127.0.0.1"
# Seconds between SIGTERM and SIGKILL when terminating a process group.
KILL_WAIT = 5.0
# Lines of the chief's log quoted when it fails.
LOG_TAIL_LINES = 15


@dataclass
class WorkerReport:
    """What became of one process of the search (the chief included).

    `status` is one of: "ok" (exited 0), "failed" (exited non-zero or died from a signal, with
    no restart left), "killed" (terminated by the launcher: see `LaunchResult.message`),
    "timeout" (terminated when the overall timeout passed), "not_ready" (the chief never
    accepted connections), "not_started". `pids` lists one process id per start.
    """

    tuner_id: str
    returncode: int | None
    restarts: int
    status: str
    log: Path
    pids: list[int] = field(default_factory=list)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class _Child:
    """One process of the search (restartable), in its own process group."""

    def __init__(self, tuner_id: str, command: list[str], env: dict, log_dir: Path):
        self.tuner_id = tuner_id
        self.command = command
        self.env = {**env, "KERASTUNER_TUNER_ID": tuner_id}
        self.log = log_dir / f"{tuner_id}.log"
        self.popen: subprocess.Popen | None = None
        self.restarts = 0
        self.status = "not_started"
        self.returncode: int | None = None
        self.pids: list[int] = []
        self.log_offset = 0

    @property
    def alive(self) -> bool:
        """Started and not reaped yet."""
        return self.popen is not None and self.popen.returncode is None

    def start(self) -> None:
        """Start (or restart) the process, appending to its log after a separator line."""
        starts = len(self.pids)
        what = "start" if starts == 0 else f"restart {starts}"
        with self.log.open("ab") as log:
            self.log_offset = log.tell()
            log.write(
                f"===== ftk launch: {self.tuner_id} {what} at {time.strftime('%Y-%m-%d %H:%M:%S')}"
                f": {shlex.join(self.command)} =====\n".encode()
            )
            log.flush()
            self.popen = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.popen.pid)
        self.status, self.returncode = "running", None
        logger.info("Started %s (pid %d), log %s", self.tuner_id, self.popen.pid, self.log)

    def exited(self) -> bool:
        """Whether the process has exited, without reaping it: until it is reaped its process
        group id cannot be reused, so signalling the group stays safe."""
        if not self.alive:
            return True
        if not hasattr(os, "waitid"):  # macOS: reaping here is the only portable check
            return self.popen.poll() is not None
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.popen.pid, flags) is not None
        except ChildProcessError:
            return True

    def reap(self) -> int:
        """Kill whatever is left in the exited process's group, reap it, return its code."""
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.returncode = self.popen.wait()
        return self.returncode

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines its latest start wrote, indented."""
        try:
            with self.log.open("rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])

    def report(self) -> WorkerReport:
        return WorkerReport(
            self.tuner_id, self.returncode, self.restarts, self.status, self.log, list(self.pids)
        )


def _terminate(children: list[_Child], status: str) -> None:
    """SIGTERM the process groups of the live `children`, SIGKILL them after `KILL_WAIT`
    seconds, and reap them; give each the `status`."""
    live = [child for child in children if child.alive]
    for child in live:
        _signal_group(child.popen.pid, signal.SIGTERM)
    give_up = time.monotonic() + KILL_WAIT
    while time.monotonic() < give_up and not all(child.exited() for child in live):
        time.sleep(0.05)
    for child in live:
        _signal_group(child.popen.pid, signal.SIGKILL)  # stragglers too: the group is ours
        try:
            child.returncode = child.popen.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:  # stuck in the kernel; reported as not reaped
            child.returncode = None
        child.status = status
        logger.info("Terminated %s (%s).", child.tuner_id, status)


def _signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the process group led by `pid` (a child started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _accepts_connections(port: int, timeout: float = 0.25) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            return sock.connect_ex((HOST, port)) == 0
        except OSError:
            return False


def _describe_exit(code: int | None) -> str:
    """'exited with code 3' / 'was killed by signal SIGKILL'."""
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


@contextlib.contextmanager
def _sigterm_raises_system_exit():
    """While active (main thread, default SIGTERM handling only), SIGTERM raises SystemExit so
    the children are terminated too, instead of the launcher dying and orphaning them."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
