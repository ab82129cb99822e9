"""The CPU this process runs on: its model, cores and the instruction sets that decide which
kernels win (AVX-512, AVX512-BF16, AMX, AVX-VNNI), and whether bfloat16 training is measured
to be faster on it for a kind of model. Standard library only.

`runtime.precision = "auto"` on a machine without a GPU or TPU asks `cpu_precision`: it picks
`mixed_bfloat16` only where `MEASURED` has a speed-up of at least `MIN_SPEEDUP` for this backend,
this CPU's bfloat16 instructions and the task's kind of model (`Task.cpu_compute`); a kind is
listed once a demo of it kept its test accuracy within half a point of float32 in bfloat16
(docs/cpu.md says which were checked). Everything else is float32, and the reason says which
measurement is missing, so a user can try `mixed_bfloat16` by hand.

Example:

>>> info = cpu_info()
>>> info.describe()  # e.g. 'AMD EPYC, 2 cores; AVX2, AVX-512, AVX512-BF16, AVX-VNNI'
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# /proc/cpuinfo flag -> how people write it, in the order they are listed.
FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "avx512_fp16": "AVX512-FP16",
    "avx_vnni": "AVX-VNNI",
    "amx_tile": "AMX-TILE",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "amx_fp16": "AMX-FP16",
    "bf16": "BF16 (Arm)",  # aarch64 Features
    "sve": "SVE (Arm)",
}

MIN_SPEEDUP = 1.1  # bfloat16 steps/s over float32 that makes "auto" choose it

# Training steps/s, mixed_bfloat16 / float32, measured with `python -m bench.steps backend
# --precision ...` (same model, batch and data), keyed by (backend, bfloat16 instructions,
# Task.cpu_compute). Where a results file is named, the accuracy check is there too.
MEASURED: dict[tuple[str, str, str], tuple[float, str]] = {
    # Intel Xeon with AMX (../shared/FINDINGS.md, 2026-12-02): plain keras-hub MiniLM-L6 loop.
    ("tensorflow", "amx_bf16", "text_encoder"): (1.49, "Intel Xeon with AMX-BF16, MiniLM-L6"),
    ("torch", "amx_bf16", "text_encoder"): (1.51, "Intel Xeon with AMX-BF16, MiniLM-L6"),
    # AMD EPYC (Zen 5) with AVX512-BF16, no AMX: docs/results/2026-12-03-cpu-bfloat16.md.
    ("tensorflow", "avx512_bf16", "text_encoder"): (1.22, "AMD EPYC with AVX512-BF16, MiniLM-L6"),
    ("torch", "avx512_bf16", "text_encoder"): (1.73, "AMD EPYC with AVX512-BF16, MiniLM-L6"),
    ("jax", "avx512_bf16", "text_encoder"): (1.06, "AMD EPYC with AVX512-BF16, MiniLM-L6"),
    ("tensorflow", "avx512_bf16", "convnet"): (
        0.49,
        "AMD EPYC with AVX512-BF16, EfficientNet-Lite0",
    ),
    ("torch", "avx512_bf16", "convnet"): (0.70, "AMD EPYC with AVX512-BF16, EfficientNet-Lite0"),
    # Bench row 9's ftk side (SmolLM2-135M, LoRA rank 4, batch 4 x 128); `make demo-lm` in
    # bfloat16: held-out perplexity 8.727 against 8.722 in float32.
    ("tensorflow", "avx512_bf16", "decoder"): (1.24, "AMD EPYC with AVX512-BF16, SmolLM2-135M"),
}


@dataclass(frozen=True)
class CpuInfo:
    """What `cpu_info` found."""

    model: str
    cores: int  # usable by this process (its affinity mask)
    flags: tuple[str, ...]  # the keys of FLAGS this CPU has

    @property
    def bfloat16(self) -> str | None:
        """The CPU's best bfloat16 matrix instructions: "amx_bf16", "avx512_bf16" or None."""
        for flag in ("amx_bf16", "avx512_bf16"):
            if flag in self.flags:
                return flag
        return None

    def describe(self) -> str:
        names = ", ".join(FLAGS[f] for f in FLAGS if f in self.flags) or "none of " + ", ".join(
            FLAGS[f] for f in ("avx512f", "avx512_bf16", "amx_bf16")
        )
        return f"{self.model}, {self.cores} core{'s' if self.cores != 1 else ''}; {names}"

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "cores": self.cores,
            "instruction_sets": [FLAGS[f] for f in FLAGS if f in self.flags],
        }


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """The model name and the flags of the first processor in a /proc/cpuinfo text."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return model, flags


@functools.lru_cache(maxsize=1)
def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    """This machine's CPU (Linux reads /proc/cpuinfo; elsewhere the model only)."""
    try:
        model, flags = parse_cpuinfo(Path(path).read_text(errors="replace"))
    except OSError:
        model, flags = "", set()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return CpuInfo(
        model=model or platform.processor() or platform.machine() or "unknown CPU",
        cores=cores,
        flags=tuple(f for f in FLAGS if f in flags),
    )


def cpu_precision(backend: str, compute: str, cpu: CpuInfo) -> tuple[str, str]:
    """`runtime.precision = "auto"` on this CPU, and why (pure: tested with made-up CPUs).

    `compute` is the task's kind of model (`Task.cpu_compute`: "text_encoder", "convnet",
    "decoder", ...)."""
    instructions = cpu.bfloat16
    if instructions is None:
        return "float32", f"no GPU or TPU, and the CPU ({cpu.model}) has no bfloat16 instructions"
    name = FLAGS[instructions]
    measured = MEASURED.get((backend, instructions, compute))
    if measured is None:
        return "float32", (
            f"the CPU has {name}, but bfloat16 training of a {compute} on {backend} is not "
            "measured on such CPUs (try runtime.precision = 'mixed_bfloat16')"
        )
    speedup, where = measured
    if speedup < MIN_SPEEDUP:
        return "float32", (
            f"the CPU has {name}, but bfloat16 training of a {compute} on {backend} measured "
            f"{speedup:.2f}x float32 ({where})"
        )
    return "mixed_bfloat16", (
        f"the CPU has {name}: bfloat16 training of a {compute} on {backend} measured "
        f"{speedup:.2f}x float32 ({where})"
    )
