"""A short timed training probe: the project's own model and data, on one backend and precision,
in this process. `ftk doctor --probe` runs one per backend and precision, each in a fresh
process (the backend is chosen before Keras is imported), and compares them.

    python -m ftk.runtime.probe --config config.toml --backend torch --precision mixed_bfloat16

prints one line `PROBE {json}`: training steps/s of the fine-tuning phase (the recipe's last
phase: its trainable weights, optimizer and batch) after `--warmup` untimed steps, the time
to the first step, and peak memory. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from ftk.runtime.parent import die_with_parent

PREFIX = "PROBE "


def probe(config, load_data, warmup: int, steps: int) -> dict:
    """Steps/s of the last recipe phase of `config` (backend and precision already set)."""
    import keras

    from ftk.models.trainable import TrainablePolicy, check_policy
    from ftk.runs.model import build_model, load_task
    from ftk.training.recipes import compile_phase, plan_phases

    began = time.perf_counter()
    task, splits, info = load_task(config, load_data)
    keras.config.set_dtype_policy(config.runtime.precision)
    model = build_model(task, info, config, splits.label_names)
    blocks = check_policy(TrainablePolicy.parse(config.model.trainable), model.backbone)
    phase = plan_phases(config, len(blocks))[-1]
    compile_phase(model, config, phase, steps=warmup + steps)
    data = task.dataset(splits.train, config, True).repeat()
    ends: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    built = time.perf_counter()
    model.fit(data, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[Timer()])
    return {
        "steps_s": steps / (ends[-1] - ends[warmup - 1]),
        "batch_size": config.train.batch_size,
        "phase": phase.name,
        "first_step_s": ends[0] - built,
        "setup_s": built - began,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--precision", required=True)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    die_with_parent()  # `ftk doctor --probe` interrupted: no probe lives on

    from ftk.config import load_config
    from ftk.runs.model import project_load_data
    from ftk.runtime.backend import set_backend

    overrides = [
        *args.overrides,
        f"runtime.backend={args.backend}",
        f"runtime.precision={args.precision}",
    ]
    config = load_config(args.config, overrides)
    set_backend(config.runtime.backend)
    record = probe(config, project_load_data(config), args.warmup, args.steps)
    print(PREFIX + json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
