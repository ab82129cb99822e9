"""`ftk doctor`: what this machine is and what a run would choose on it; with `--probe`, which
backend and precision train this project fastest here, measured.

Without `--probe` it reads files only (no Keras import): the CPU and its instruction sets, the
GPUs, the installed backends, and for each backend the precision `runtime.precision = "auto"`
would pick for the project's task, and why. `--probe` runs `ftk.runtime.probe` once per backend
and precision (float32, and mixed_bfloat16 when the CPU has bfloat16 instructions), each in a
fresh process under a time limit, and prints them fastest first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ftk.config import BACKENDS
from ftk.errors import FtkError
from ftk.runtime.cluster import detect_cluster
from ftk.runtime.cpu import CpuInfo, cpu_info, cpu_precision
from ftk.runtime.parent import child_env
from ftk.runtime.probe import PREFIX

BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclass
class ProbeResult:
    backend: str
    precision: str
    record: dict | None = None  # PROBE's record
    error: str = ""

    @property
    def steps_s(self) -> float:
        return self.record["steps_s"] if self.record else 0.0


def installed_backends() -> dict[str, str]:
    """`{backend: version}` of the Keras backends installed here."""
    out = {}
    for backend in BACKENDS:
        try:
            out[backend] = version(BACKEND_PACKAGES[backend])
        except PackageNotFoundError:
            pass
    return out


def gpu_devices() -> list[str]:
    """NVIDIA device files (a cheap look: no driver or framework is loaded)."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))


def machine_lines(cpu: CpuInfo, task_name: str, compute: str, backends: dict[str, str]) -> list:
    gpus = gpu_devices()
    lines = [
        f"CPU:       {cpu.describe()}",
        f"GPU:       {', '.join(gpus) if gpus else 'none found'}",
        "backends:  "
        + (", ".join(f"{b} {v}" for b, v in backends.items()) or "none installed")
        + f"; missing: {', '.join(b for b in BACKENDS if b not in backends) or 'none'}",
        f"launcher:  {detect_cluster().found}",
        f"task:      {task_name} (a {compute}, for the CPU precision choice)",
        'runtime.precision = "auto" would train in:',
    ]
    for backend in backends:
        precision, why = cpu_precision(backend, compute, cpu)
        if gpus:
            why = "a GPU is present: the GPU decides (see docs/backends.md); on the CPU: " + why
        lines.append(f"  {backend:<10} {precision:<15} {why}")
    return lines


def run_probe(
    config_path: Path,
    backend: str,
    precision: str,
    overrides: list[str],
    steps: int,
    warmup: int,
    timeout: float,
) -> ProbeResult:
    """One probe in a fresh process (argument list, no shell) that dies with this one; its
    process group is killed when it runs out of time."""
    command = [
        sys.executable,
        "-m",
        "ftk.runtime.probe",
        f"--config={config_path}",
        f"--backend={backend}",
        f"--precision={precision}",
        f"--steps={steps}",
        f"--warmup={warmup}",
        *[f"--set={o}" for o in overrides],
    ]
    env = child_env({**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "FTK_PROGRESS": "0"})
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return ProbeResult(backend, precision, error=f"ran past {timeout:.0f} s")
    records = [
        json.loads(line[len(PREFIX) :]) for line in out.splitlines() if line.startswith(PREFIX)
    ]
    if process.returncode != 0 or not records:
        last = [line for line in err.strip().splitlines() if line.strip()]
        return ProbeResult(backend, precision, error=(last[-1] if last else "no output")[:200])
    return ProbeResult(backend, precision, records[-1])


def probe_lines(
    results: list[ProbeResult], current: tuple[str, str], auto: dict[str, str] | None = None
) -> list[str]:
    """The probes fastest first, each as a ratio of the config's own setting (`current`);
    `auto` is what `precision = "auto"` picks per backend (a faster bfloat16 it does not pick
    comes with a caution: the probe measures speed, not accuracy)."""
    done = sorted((r for r in results if r.record), key=lambda r: -r.steps_s)
    base = next((r for r in results if (r.backend, r.precision) == current and r.record), None)
    lines = [f"probe (training steps/s of the fine-tuning phase, batch {_batch(done)}):"]
    for r in done:
        ratio = f"  {r.steps_s / base.steps_s:.2f}x the config's setting" if base else ""
        first, peak = r.record["first_step_s"], r.record["peak_rss_mb"]
        lines.append(
            f"  {r.backend:<10} {r.precision:<15} {r.steps_s:6.3f} steps/s{ratio}"
            f"  (first step {first:.0f} s, peak {peak:.0f} MB)"
        )
    for r in results:
        if not r.record:
            lines.append(f"  {r.backend:<10} {r.precision:<15} failed: {r.error}")
    if done:
        best = done[0]
        line = (
            f"fastest here: runtime.backend = {best.backend!r}, runtime.precision = "
            f"{best.precision!r}"
        )
        if best.precision != "float32" and (auto or {}).get(best.backend) != best.precision:
            line += (
                " (not what 'auto' picks: the probe measures speed only, so compare a run's test "
                "metrics with float32 before keeping it)"
            )
        lines.append(line)
    return lines


def _batch(done: list[ProbeResult]) -> str:
    return str(done[0].record["batch_size"]) if done else "?"


def _probe_backends(args, config_path: Path | None, backends: dict[str, str]) -> list[str]:
    """The backends `--probe` will time (none without `--probe`); a wrong flag raises."""
    if not args.probe:
        return []
    if config_path is None:
        raise FtkError("--probe trains this project's model: run it where config.toml is.")
    chosen = [b.strip() for b in args.backends.split(",")] if args.backends else list(backends)
    unknown = [b for b in chosen if b not in backends]
    if unknown:
        raise FtkError(
            f"--backends: {', '.join(unknown)} not installed here. Installed: "
            f"{', '.join(backends) or 'none'}"
        )
    return chosen


def doctor(args) -> int:
    """The `ftk doctor` command."""
    from ftk.config import load_config
    from ftk.tasks.registry import get_task

    config_path = Path(args.config) if args.config else None
    if config_path is not None and not config_path.is_file():
        raise FtkError(f"--config {config_path}: no such file (run from a baked project).")
    config = load_config(config_path, args.overrides)
    task = get_task(config.run.task)
    cpu = cpu_info()
    backends = installed_backends()
    chosen = _probe_backends(args, config_path, backends)  # checked before anything is printed
    print("\n".join(machine_lines(cpu, task.name, task.cpu_compute, backends)))
    if not args.probe:
        print("(ftk doctor --probe times a few training steps of this project on each backend)")
        return 0
    precisions = ["float32"] + (["mixed_bfloat16"] if cpu.bfloat16 else [])
    results = []
    for backend in chosen:
        for precision in precisions:
            print(f"probing {backend} {precision} ...", flush=True)
            results.append(
                run_probe(
                    config_path,
                    backend,
                    precision,
                    args.overrides,
                    args.steps,
                    args.warmup,
                    args.timeout,
                )
            )
    auto = {b: cpu_precision(b, task.cpu_compute, cpu)[0] for b in backends}
    backend, precision = config.runtime.backend, config.runtime.precision
    current = (backend, auto.get(backend, "float32") if precision == "auto" else precision)
    print("\n".join(probe_lines(results, current, auto)))
    return 0 if any(r.record for r in results) else 1
