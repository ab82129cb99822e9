"""`make bench`: run each benchmark row in its own subprocesses, print a Markdown table of ratios
(median over repetitions, with their min-max spread) and write it, with the machine, the
versions, the git commit and every raw per-repetition number, to bench/results/<date>.md.

    python -m bench.run                  # every row (estimated 25 min on 2 idle CPU cores)
    python -m bench.run --quick          # 1 repetition, tiny step counts: a smoke test (~15 min)
    python -m bench.run --rows 1,3,5     # some rows (9-10: the causal LM)
    python -m bench.run --repeats 5      # more repetitions
    python -m bench.run --export-dir saved_models/bbc_news/1   # row 5 on an existing export

Each ratio is measured back to back in one run. A row whose subprocess fails or runs out of
time prints `failed: <one line>` in the table and the run continues.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.common import PREFIX, REPO, WORK, bake_projects
from ftk.runtime.cpu import cpu_info

RESULTS = REPO / "bench" / "results"
LOGS = WORK / "logs"
BACKENDS = ("tensorflow", "jax", "torch")
STDOUT_MARK = "\n--- stdout ---\n"  # a worker's log: its stderr, then this, then its stdout


@dataclass(frozen=True)
class Profile:
    """Step counts and time limits (seconds) of a run."""

    repeats: int = 3
    warmup: int = 2
    text_steps: int = 5  # timed steps per repetition, text (batch 16, 128 tokens)
    image_steps: int = 6  # image (batch 32, 96 px) on TF and torch
    jax_image_steps: int = 1  # JAX's CPU convolutions take ~9 s a step (docs/backends.md)
    jax_image_warmup: int = 1
    pipeline_steps: int = 5
    train_examples: int = 480  # row 2: one epoch over these
    test_limit: int = 0  # row 2: 0 = the whole test split (425 articles)
    serving_calls1: int = 20
    serving_calls32: int = 4
    tune_trials: int = 3
    tune_train_examples: int = 160
    tune_validation_split: float = 0.05
    scaling_sizes: tuple[int, ...] = (32, 128, 512)
    scaling_sequence_length: int = 64
    lm_warmup: int = 1  # rows 9-10: SmolLM2-135M, batch 4, 128 tokens (~2 s a step, TF)
    lm_steps: int = 3  # timed training steps per repetition
    lm_generate_calls: int = 3  # timed generate calls (after one warm-up call)
    timeout: int = 900  # one subprocess
    jax_image_timeout: int = 1200


FULL = Profile()
QUICK = Profile(
    repeats=1,
    warmup=1,
    text_steps=2,
    image_steps=2,
    jax_image_steps=1,
    pipeline_steps=2,
    train_examples=48,
    test_limit=64,
    serving_calls1=5,
    serving_calls32=1,
    tune_trials=1,
    tune_train_examples=32,
    tune_validation_split=0.02,
    scaling_sizes=(16, 64, 256),
    lm_steps=2,
    lm_generate_calls=1,
    timeout=600,
    jax_image_timeout=900,
)


class RowFailed(Exception):
    pass


@dataclass
class Line:
    """One line of the table."""

    row: int
    name: str
    values: list[float] = field(default_factory=list)  # one per repetition
    fmt: str = "ratio"  # "ratio" (0.97x), "percent" or "text"
    goal: str = ""
    met: bool | None = None
    details: str = ""
    status: str = ""  # "failed: ..." / "skipped: ..." replaces the value

    def cells(self) -> list[str]:
        if self.status:
            return [str(self.row), self.name, self.status, "", "", self.goal, "", self.details]
        values = self.values
        med = statistics.median(values)
        spread = f"{fmt(min(values), self.fmt)}–{fmt(max(values), self.fmt)}"
        met = {True: "yes", False: "**no**", None: ""}[self.met]
        return [
            str(self.row),
            self.name,
            f"**{fmt(med, self.fmt)}**",
            spread if len(values) > 1 else "",
            str(len(values)),
            self.goal,
            met,
            self.details,
        ]


def fmt(value: float, kind: str) -> str:
    if kind == "percent":
        return f"{100 * value:.1f}%"
    if kind == "ratio":
        return f"{value:.2f}x" if value < 100 else f"{value:.0f}x"
    return f"{value:.3g}"


def med(values) -> float:
    return statistics.median(values)


def paired(a: list[float], b: list[float], fn) -> list[float]:
    return [fn(x, y) for x, y in zip(a, b, strict=False)]


class Bench:
    def __init__(self, args, profile: Profile):
        self.args = args
        self.p = profile
        self.raw: dict[str, list[dict]] = {}
        self.lines: list[Line] = []
        self.text_rates: dict[str, float] = {}  # row 3's medians, for row 2's best backend
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.worker_seconds: dict[str, float] = {}

    # --- subprocesses ----------------------------------------------------------------------

    def worker(self, key: str, module: str, argv: list[str], timeout: int) -> list[dict]:
        """Run `python -m bench.<module> argv`; return its BENCH records (also kept in raw)."""
        LOGS.mkdir(parents=True, exist_ok=True)
        log_path = LOGS / f"{self.stamp}-{key}.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "FTK_PROGRESS": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "KAGGLE_OFFLINE": "1",
        }
        command = [sys.executable, "-m", f"bench.{module}", *argv]
        began = time.perf_counter()
        print(f"  {key}: {' '.join(command[2:])}", file=sys.stderr, flush=True)
        with log_path.open("w") as log:
            log.write(" ".join(command) + "\n")
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
            try:
                out, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the worker and its own children
                process.communicate()
                raise RowFailed(f"{key} timed out after {timeout} s (log {log_path})") from None
            log.write(STDOUT_MARK + out)
        seconds = time.perf_counter() - began
        self.worker_seconds[key] = round(seconds, 1)
        records = [
            json.loads(line[len(PREFIX) :]) for line in out.splitlines() if line.startswith(PREFIX)
        ]
        self.raw[key] = records
        if process.returncode != 0:
            raise RowFailed(f"{key}: {last_error(log_path)} (log {log_path})")
        print(f"  {key}: done in {seconds:.0f} s", file=sys.stderr, flush=True)
        return records

    # --- rows ------------------------------------------------------------------------------

    def row1(self) -> None:
        p = self.p
        recs = self.worker(
            "1-overhead",
            "steps",
            ["overhead", *self.counts(p.warmup, p.text_steps)],
            p.timeout,
        )
        reps = [r for r in recs if "rep" in r]
        ftk, raw = [r["ftk_steps_s"] for r in reps], [r["raw_steps_s"] for r in reps]
        ratios = paired(ftk, raw, lambda a, b: a / b)
        self.lines.append(
            Line(
                1,
                "ftk overhead: ftk ÷ plain keras-hub, training steps/s (TF, MiniLM-L6, batch 16, "
                "128 tokens, all weights)",
                ratios,
                goal="≥ 0.97",
                met=med(ratios) >= 0.97,
                details=f"ftk {med(ftk):.3f} steps/s, keras-hub {med(raw):.3f} steps/s "
                f"({p.text_steps} steps per repetition, alternating)",
            )
        )

    def row2(self) -> None:
        """HF Transformers + PyTorch against ftk, float32 against float32 and, on a CPU with
        bfloat16 instructions, mixed_bfloat16 (torch.autocast) against mixed_bfloat16."""
        backend = max(self.text_rates, key=self.text_rates.get) if self.text_rates else "tensorflow"
        why = (
            "fastest in row 3 (float32)"
            if self.text_rates
            else "row 3 not run: TF, fastest on this CPU per docs/performance.md"
        )
        for precision in self.precisions():
            if not self.row2_precision(backend, why, precision):
                return

    def row2_precision(self, backend: str, why: str, precision: str) -> bool:
        p = self.p
        common = [
            f"--train-examples={p.train_examples}",
            f"--test-limit={p.test_limit}",
            f"--warmup={p.warmup}",
            f"--repeats={p.repeats}",
            f"--precision={precision}",
        ]
        hf = self.worker(f"2-hf-torch-{precision}", "hf_torch", common, p.timeout)
        skipped = [r["skipped"] for r in hf if "skipped" in r]
        if skipped:
            self.lines.append(
                Line(2, "Hugging Face Transformers + PyTorch", status=f"skipped: {skipped[0]}")
            )
            return False
        ftk = self.worker(
            f"2-ftk-{backend}-{precision}",
            "steps",
            ["accuracy", f"--backend={backend}", *common],
            p.timeout,
        )
        hf_rates = [r["steps_s"] for r in hf if "rep" in r]
        ftk_rates = [r["steps_s"] for r in ftk if "rep" in r]
        hf_sum = next(r for r in hf if r.get("summary"))
        ftk_sum = next(r for r in ftk if r.get("summary"))
        ratios = paired(ftk_rates, hf_rates, lambda a, b: a / b)
        hf_side = "torch.autocast bfloat16" if precision != "float32" else "float32"
        self.lines.append(
            Line(
                2,
                f"ftk ({backend}, {precision}) ÷ HF Transformers + PyTorch ({hf_side}), training "
                "steps/s (same MiniLM-L6 directory, batch 16, 128 tokens, AdamW)",
                ratios,
                goal="≥ 1.0",
                met=med(ratios) >= 1.0,
                details=f"ftk {med(ftk_rates):.3f} steps/s, HF {med(hf_rates):.3f} steps/s "
                f"({hf_sum.get('torch_threads')} torch threads, attention "
                f"{hf_sum.get('attention')}); ftk backend: {why}; blocks of one epoch over "
                f"{ftk_sum['train_examples']} articles",
            )
        )
        diff = ftk_sum["accuracy"] - hf_sum["accuracy"]
        self.lines.append(
            Line(
                2,
                f"{precision}: test accuracy after {ftk_sum['steps']} steps (1 epoch, "
                f"{ftk_sum['train_examples']} articles): ftk − HF, points",
                [100 * diff],
                fmt="text",
                details=f"ftk {ftk_sum['accuracy']:.4f}, HF {hf_sum['accuracy']:.4f} on "
                f"{ftk_sum['test_examples']} test articles (one run each)",
            )
        )
        return True

    def row3(self) -> None:
        p = self.p
        for task in ("text", "image"):
            rates: dict[str, list[float]] = {}
            errors: dict[str, str] = {}
            for backend in BACKENDS:
                jax_image = task == "image" and backend == "jax"
                steps = p.text_steps if task == "text" else p.image_steps
                warmup = p.warmup
                if jax_image:
                    steps, warmup = p.jax_image_steps, p.jax_image_warmup
                try:
                    recs = self.worker(
                        f"3-{task}-{backend}",
                        "steps",
                        [
                            "backend",
                            f"--task={task}",
                            f"--backend={backend}",
                            *self.counts(warmup, steps),
                        ],
                        p.jax_image_timeout if jax_image else p.timeout,
                    )
                    rates[backend] = [r["steps_s"] for r in recs if "rep" in r]
                except RowFailed as e:
                    errors[backend] = str(e)
            if task == "text":
                self.text_rates = {b: med(v) for b, v in rates.items()}
            setting = "batch 16, 128 tokens" if task == "text" else "batch 32, 96 px"
            base = rates.get("tensorflow")
            for backend in BACKENDS[1:]:
                name = f"backends, {task} ({setting}): {backend} ÷ tensorflow, steps/s"
                if backend in errors or base is None:
                    reason = errors.get(backend) or errors.get("tensorflow")
                    self.lines.append(Line(3, name, status=f"failed: {reason}"))
                    continue
                self.lines.append(
                    Line(
                        3,
                        name,
                        paired(rates[backend], base, lambda a, b: a / b),
                        details=f"{backend} {med(rates[backend]):.3f} steps/s, tensorflow "
                        f"{med(base):.3f} steps/s",
                    )
                )

    def row4(self) -> None:
        p = self.p
        for task in ("text", "image"):
            name = f"input pipeline share, {task}: 1 − cached ÷ tf.data step time (TF)"
            try:
                recs = self.worker(
                    f"4-pipeline-{task}",
                    "steps",
                    ["pipeline", f"--task={task}", *self.counts(p.warmup, p.pipeline_steps)],
                    p.timeout,
                )
            except RowFailed as e:
                self.lines.append(Line(4, name, status=f"failed: {e}", goal="≤ 5%"))
                continue
            reps = [r for r in recs if "rep" in r]
            pipe = [r["pipeline_s_step"] for r in reps]
            cached = [r["cached_s_step"] for r in reps]
            shares = paired(cached, pipe, lambda c, q: 1 - c / q)
            self.lines.append(
                Line(
                    4,
                    name,
                    shares,
                    fmt="percent",
                    goal="≤ 5%",
                    met=med(shares) <= 0.05,
                    details=f"tf.data {med(pipe):.3f} s/step, cached in memory "
                    f"{med(cached):.3f} s/step",
                )
            )

    def row5(self) -> None:
        p = self.p
        exports: dict[str, Path] = {}
        if self.args.export_dir:
            given = Path(self.args.export_dir).resolve()
            exports[export_task(given)] = given
        tasks = ["text", "image"] if not self.args.export_dir else list(exports)
        for task in tasks:
            try:
                if task not in exports:
                    out = WORK / "serving" / task
                    self.worker(
                        f"5-export-{task}",
                        "serving",
                        ["build", f"--task={task}", f"--out={out}"],
                        p.timeout,
                    )
                    exports[task] = out
                recs = self.worker(
                    f"5-latency-{task}",
                    "serving",
                    [
                        "measure",
                        f"--task={task}",
                        f"--export-dir={exports[task]}",
                        f"--repeats={p.repeats}",
                        f"--calls1={p.serving_calls1}",
                        f"--calls32={p.serving_calls32}",
                    ],
                    p.timeout,
                )
            except RowFailed as e:
                self.lines.append(Line(5, f"serving latency, {task}", status=f"failed: {e}"))
                continue
            finally:
                built = WORK / "serving" / task
                shutil.rmtree(built.with_name(f"{task}.partial"), ignore_errors=True)
                if not self.args.keep_exports and exports.get(task) == built:
                    shutil.rmtree(built, ignore_errors=True)  # ~260 MB for the text model
            for batch in (1, 32):
                self.serving_lines(task, batch, [r for r in recs if r.get("batch") == batch])

    def serving_lines(self, task: str, batch: int, reps: list[dict]) -> None:
        sm = [r["savedmodel_s"] for r in reps]
        where = "SavedModel serving_default (text in)" if task == "text" else "serving_pixels"
        candidates = {
            "ONNX Runtime float": [r["onnx_s"] for r in reps],
            "ONNX Runtime int8": [r["onnx_int8_s"] for r in reps],
        }
        note = ""
        if task == "text":
            tokenize = [r["tokenize_s"] for r in reps]
            candidates["ONNX Runtime float + client tokenization"] = paired(
                candidates["ONNX Runtime float"], tokenize, lambda a, b: a + b
            )
            note = f"; client tokenization alone {med(tokenize) * 1e3:.1f} ms"
        for label, times in candidates.items():
            ratios = paired(times, sm, lambda a, b: a / b)
            goal = "≤ 0.75" if batch == 1 and "int8" not in label else ""
            self.lines.append(
                Line(
                    5,
                    f"serving latency, {task}, batch {batch}: {label} ÷ {where}",
                    ratios,
                    goal=goal,
                    met=(med(ratios) <= 0.75) if goal else None,
                    details=f"{med(times) * 1e3:.1f} ms vs {med(sm) * 1e3:.1f} ms"
                    + (note if "tokenization" in label else ""),
                )
            )

    def row6(self) -> None:
        p = self.p
        recs = self.worker(
            "6-tuning",
            "tuning",
            [
                f"--trials={p.tune_trials}",
                f"--train-examples={p.tune_train_examples}",
                f"--validation-split={p.tune_validation_split}",
            ],
            2 * p.timeout,
        )
        trials = {
            path: [r for r in recs if r.get("path") == path and "rep" in r]
            for path in ("cached", "full")
        }
        walls = {r["path"]: r["wall_s"] for r in recs if r.get("summary") and "path" in r}
        cached = [t["seconds"] for t in trials["cached"]]
        full = [t["seconds"] for t in trials["full"]]
        ratios = paired(full, cached, lambda f, c: f / c)
        one_time = walls["cached"] - sum(cached)
        amortised = med(full) / (med(cached) + one_time / len(cached))
        self.lines.append(
            Line(
                6,
                "tuning: seconds per trial, full forward ÷ cached features (head-only search, "
                "MiniLM-L6, ftk_trial.json)",
                ratios,
                goal="≥ 10",
                met=med(ratios) >= 10,
                details=f"full {med(full):.1f} s, cached {med(cached):.2f} s per trial "
                f"({p.tune_train_examples} articles, 1 epoch a trial); cached path's one-time "
                f"cost {one_time:.1f} s: spread over these {len(cached)} trial(s) the ratio is "
                f"{amortised:.1f}x",
            )
        )

    def row7(self) -> None:
        p = self.p
        results = {}
        for size in p.scaling_sizes:
            recs = self.worker(
                f"7-scaling-{size}",
                "scaling",
                [
                    f"--examples={size}",
                    f"--sequence-length={p.scaling_sequence_length}",
                    f"--epochs={p.repeats}",
                ],
                p.timeout,
            )
            summary = next(r for r in recs if r.get("summary"))
            results[size] = ([r["epoch_s"] for r in recs if "rep" in r], summary["peak_rss_mb"])
        small = p.scaling_sizes[0]
        base_t, base_m = results[small]
        setting = f"MiniLM-L6, {p.scaling_sequence_length} tokens, TF, fresh process per size"
        for size in p.scaling_sizes[1:]:
            factor = size // small
            ratios = paired(results[size][0], base_t, lambda a, b: a / b)
            self.lines.append(
                Line(
                    7,
                    f"scaling: epoch time at {factor}x the data ÷ 1x ({size} vs {small} articles; "
                    f"{setting})",
                    ratios,
                    goal=f"≤ {factor} (at most linear)",
                    met=med(ratios) <= 1.1 * factor,
                    details=f"{med(results[size][0]):.1f} s vs {med(base_t):.1f} s per epoch",
                )
            )
        big = p.scaling_sizes[-1]
        factor = big // small
        self.lines.append(
            Line(
                7,
                f"scaling: peak RSS at {factor}x the data ÷ 1x ({setting})",
                [results[big][1] / base_m],
                goal="≈ 1 (flat), ≤ 1.10",
                met=results[big][1] / base_m <= 1.10,
                details=", ".join(f"{s}: {results[s][1]:.0f} MB" for s in p.scaling_sizes)
                + " (one process per size)",
            )
        )

    def row8(self) -> None:
        if gpu_present():
            status = "skipped: a GPU is present, but the GPU rows are not written yet"
        else:
            status = "skipped: no GPU lent to this task"
        self.lines.append(Line(8, "GPU: rows 1-4 on a GPU (JAX / torch)", status=status))

    def row9(self) -> None:
        for precision in self.precisions():
            self.row9_precision(precision)

    def row9_precision(self, precision: str) -> None:
        p = self.p
        argv = [f"--warmup={p.lm_warmup}", f"--steps={p.lm_steps}", f"--repeats={p.repeats}"]
        name = (
            "LoRA steps/s, causal LM: ftk (TF) ÷ HF PEFT + Transformers (torch) (SmolLM2-135M, "
            f"rank 4 on query/value, batch 4, 128 tokens, AdamW, {precision})"
        )
        sides = self.lm_sides(9, "train", argv, precision, "steps_s", name, goal="≥ 1.0")
        if sides is None:
            return
        a, b, fs, hs, ratios = sides
        self.lines.append(
            Line(
                9,
                name,
                ratios,
                goal="≥ 1.0",
                met=med(ratios) >= 1.0,
                details=f"ftk {med(a):.4f} steps/s, HF {med(b):.4f} steps/s "
                f"({hs['torch_threads']} torch threads, attention {hs['attention']}); peak RSS "
                f"ftk {fs['peak_rss_mb']:.0f} MB, HF {hs['peak_rss_mb']:.0f} MB (own processes); "
                f"trainable ftk {fs['trainable_params']}, HF {hs['trainable_params']}; "
                f"{p.lm_steps} steps per repetition after {p.lm_warmup} warm-up",
            )
        )

    def row10(self) -> None:
        for precision in self.precisions():
            self.row10_precision(precision)

    def row10_precision(self, precision: str) -> None:
        argv = [f"--repeats={self.p.lm_generate_calls}", "--max-new-tokens=32"]
        name = (
            "generation tokens/s, causal LM: ftk generate_ids (TF) ÷ transformers generate "
            f"(torch) (SmolLM2-135M, greedy, 4 prompts, 32 new tokens, {precision})"
        )
        sides = self.lm_sides(10, "generate", argv, precision, "tokens_s", name)
        if sides is None:
            return
        a, b, fs, hs, ratios = sides
        self.lines.append(
            Line(
                10,
                name,
                ratios,
                details=f"ftk {med(a):.1f} tokens/s, HF {med(b):.1f} tokens/s; new tokens "
                f"ftk {fs['new_tokens']}, HF {hs['new_tokens']} (before the end token); ftk's "
                f"warm-up call {fs['warmup_s']:.0f} s; peak RSS ftk {fs['peak_rss_mb']:.0f} MB, "
                f"HF {hs['peak_rss_mb']:.0f} MB; {len(a)} timed call(s) after 1 warm-up",
            )
        )

    def row11(self) -> None:
        p = self.p
        argv = [f"--warmup={p.lm_warmup}", f"--steps={p.lm_steps}", f"--repeats={p.repeats}"]
        runs = {
            layout: self.worker(f"11-parallel-{layout}", "parallel", [layout, *argv], p.timeout)
            for layout in ("one", "data2", "model3")
        }
        rates = {k: [r["steps_s"] for r in v if "rep" in r] for k, v in runs.items()}
        summary = {k: next(r for r in v if r.get("summary")) for k, v in runs.items()}
        for layout, what in (("data2", "data parallel on 2"), ("model3", "model parallel on 3")):
            # step time ÷ one device's = one device's steps/s ÷ this layout's
            ratios = paired(rates["one"], rates[layout], lambda one, other: one / other)
            mb = summary[layout]["weights_mb_per_device"]
            self.lines.append(
                Line(
                    11,
                    f"JAX {what} host CPU devices ÷ 1 device: step time, same global batch "
                    "(SmolLM2-135M, LoRA rank 4, batch 4, 128 tokens, float32; on a CPU the "
                    "devices share the cores: overhead, not speed-up)",
                    ratios,
                    details=f"1 device {med(rates['one']):.3f} steps/s, {layout} "
                    f"{med(rates[layout]):.3f} steps/s"
                    + (f"; weights per device (MB): {mb}" if mb else "")
                    + f"; peak RSS {summary[layout]['peak_rss_mb']:.0f} MB vs "
                    f"{summary['one']['peak_rss_mb']:.0f} MB",
                )
            )

    def lm_sides(self, row: int, mode: str, argv, precision: str, metric: str, name, goal=""):
        """Row `row`'s two `bench.causal_lm` workers, `<mode>-ftk` then `<mode>-hf`, with the
        same `argv` at `precision`: (ftk's `metric` per repetition, HF's, ftk's summary, HF's,
        ftk ÷ HF per repetition); None, after a skipped line, when HF is not installed."""
        argv = [*argv, f"--precision={precision}"]
        ftk, hf = (
            self.worker(
                f"{row}-lm-{mode}-{side}-{precision}",
                "causal_lm",
                [f"{mode}-{side}", *argv],
                self.p.timeout,
            )
            for side in ("ftk", "hf")
        )
        skipped = [r["skipped"] for r in hf if "skipped" in r]
        if skipped:
            self.lines.append(Line(row, name, status=f"skipped: {skipped[0]}", goal=goal))
            return None
        a = [r[metric] for r in ftk if "rep" in r]
        b = [r[metric] for r in hf if "rep" in r]
        summaries = [next(r for r in side if r.get("summary")) for side in (ftk, hf)]
        return a, b, *summaries, paired(a, b, lambda x, y: x / y)

    # --- helpers ---------------------------------------------------------------------------

    def precisions(self) -> list[str]:
        """float32, and mixed_bfloat16 on a CPU with bfloat16 instructions (like with like)."""
        return ["float32"] + (["mixed_bfloat16"] if cpu_info().bfloat16 else [])

    def counts(self, warmup: int, steps: int) -> list[str]:
        return [f"--warmup={warmup}", f"--steps={steps}", f"--repeats={self.p.repeats}"]


ALL_ROWS = list(range(1, 12))


def export_task(path: Path) -> str:
    meta = path / "assets.extra" / "ftk_export.json"
    if meta.exists():
        task = json.loads(meta.read_text()).get("task", "")
        return "image" if task.startswith("image") else "text"
    return "text" if (path / "onnx" / "preprocessor").is_dir() else "image"


def gpu_present() -> bool:
    return (
        bool(shutil.which("nvidia-smi"))
        or Path("/dev/nvidia0").exists()
        or Path("/dev/kfd").exists()
    )


def last_error(log_path: Path) -> str:
    """The last line of a failed worker's log that says something (a traceback's last line)."""
    stderr = log_path.read_text(errors="replace").split(STDOUT_MARK)[0]
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("[bench", "W0000", "I0000", "E0000", "WARNING")):
            return line[:300]
    return "no output"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in (
        "tensorflow",
        "keras",
        "keras-hub",
        "jax",
        "torch",
        "onnxruntime",
        "tf2onnx",
        "keras-tuner",
        "transformers",
        "tokenizers",
        "peft",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state() -> str:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


HEADER = ["#", "benchmark", "median", "spread (min–max)", "n", "goal", "met", "details"]


def table(lines: list[Line]) -> str:
    rows = [HEADER, ["---"] * len(HEADER)] + [line.cells() for line in lines]
    return "\n".join("| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows)


def report(bench: Bench, started: float, load_before, profile_name: str) -> str:
    cpu = cpu_info()
    machine = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "mode": profile_name,
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "cpu": f"{cpu.model}, {os.cpu_count()} logical CPUs ({cpu.cores} usable)",
        "cpu instruction sets": ", ".join(cpu.to_json()["instruction_sets"]) or "none listed",
        "gpu": "present" if gpu_present() else "none",
        "platform": platform.platform(),
        "git": git_state(),
        "load average (1 min) before / after": f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
        "wall time": f"{(time.perf_counter() - started) / 60:.1f} min",
        **{f"version: {k}": v for k, v in package_versions().items()},
    }
    parts = [
        f"# ftk benchmarks, {time.strftime('%Y-%m-%d')}",
        "",
        "Each line is a ratio measured back to back in this run: the median over the repetitions "
        "(n) and their spread. Made by `make bench` (`python -m bench.run`); see bench/README.md "
        "for what each row measures.",
        "",
        table(bench.lines),
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in machine.items()],
        "",
        "## Subprocess wall times (s)",
        "",
        "```json",
        json.dumps(bench.worker_seconds, indent=1),
        "```",
        "",
        "## Raw numbers (every BENCH record of every subprocess)",
        "",
        "```json",
        json.dumps(bench.raw, indent=1),
        "```",
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, tiny step counts")
    parser.add_argument(
        "--rows", default=",".join(map(str, ALL_ROWS)), help="comma-separated (default all)"
    )
    parser.add_argument("--repeats", type=int, help="repetitions per measurement (default 3)")
    parser.add_argument("--export-dir", help="row 5: time this export instead of building one")
    parser.add_argument(
        "--keep-exports", action="store_true", help="row 5: keep the exports it builds"
    )
    parser.add_argument("--out", type=Path, help="the results file (default bench/results/...)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.repeats:
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        profile = Profile(**{**profile.__dict__, "repeats": args.repeats})
    try:
        rows = sorted({int(r) for r in args.rows.split(",") if r.strip()})
    except ValueError:
        parser.error(f"--rows takes numbers 1-{ALL_ROWS[-1]}. Received: {args.rows!r}")
    if not rows or any(r not in ALL_ROWS for r in rows):
        parser.error(f"--rows takes numbers 1-{ALL_ROWS[-1]}. Received: {args.rows!r}")

    started, load_before = time.perf_counter(), os.getloadavg()[0]
    bake_projects()
    bench = Bench(args, profile)
    # Row 3 first when both run: row 2 compares with ftk's fastest text backend.
    order = [3, *[r for r in rows if r != 3]] if 3 in rows else rows
    for row in order:
        print(f"row {row}", file=sys.stderr, flush=True)
        count = len(bench.lines)
        try:
            getattr(bench, f"row{row}")()
        except Exception as e:  # noqa: BLE001 (one failed row must not stop the others)
            message = str(e) if isinstance(e, RowFailed) else f"{type(e).__name__}: {e}"
            del bench.lines[count:]
            bench.lines.append(Line(row, f"row {row}", status=f"failed: {message.splitlines()[0]}"))
    bench.lines.sort(key=lambda line: line.row)

    name = time.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    if rows != ALL_ROWS:
        name += "-rows" + "-".join(map(str, rows))
    out = args.out or RESULTS / f"{name}.md"
    text = report(bench, started, load_before, "quick" if args.quick else "full")
    print(table(bench.lines))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"\nCould not write {out}: {e}. The whole report follows.\n\n{text}")
        return 1
    print(f"\nWritten to {out} ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
