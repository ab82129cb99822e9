"""Row 11: JAX data and model parallelism against one device, the same global batch.

`python -m bench.parallel LAYOUT ...` trains ftk's causal-LM path (SmolLM2-135M-Instruct, LoRA
rank 4, batch 4, 128 tokens, float32) on the JAX backend for a few steps, built and trained the
way a run does it (`setup_runtime`, the runtime's scope and its `train_data`):

- `one`: one device (`runtime.distribution = "none"`);
- `data2`: `DataParallel` over 2 host devices (`runtime.cpu_devices = 2`);
- `model3`: `ModelParallel` with the Llama layout map over 3 host devices (SmolLM2-135M's 9
  attention heads and 3 KV heads split in 3, not in 2).

On a CPU the "devices" share the same cores, so the ratios show the overhead of splitting, not a
speed-up; on a GPU machine they measure the real thing.
"""

from __future__ import annotations

import argparse
import time
import warnings

from bench.causal_lm import OVERRIDES
from bench.common import block_rates, emit, peak_rss_mb, quiet_logs

LAYOUTS = {
    "one": ["runtime.distribution=none"],
    "data2": ["runtime.distribution=data_parallel", "runtime.cpu_devices=2"],
    # SmolLM2-135M's 9 attention heads (3 KV heads) split in 3, not in 2.
    "model3": ["runtime.distribution=model_parallel", "runtime.cpu_devices=3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layout", choices=sorted(LAYOUTS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    from ftk.config import load_config
    from ftk.runtime.backend import set_backend

    overrides = [*OVERRIDES, "runtime.backend=jax", "runtime.precision=float32"]
    config = load_config(None, [*overrides, *LAYOUTS[args.layout]])
    set_backend("jax", config.runtime.cpu_devices)  # host devices: before JAX starts
    from bench.common import step_timer
    from ftk.presets.resolve import resolve_preset
    from ftk.runs.model import build_model
    from ftk.runtime.distribute import setup_runtime
    from ftk.tasks import get_task
    from ftk.training.fit import compile_model

    runtime, config = setup_runtime(config)
    task = get_task("causal_lm")
    splits = task.load_data(config)
    info = resolve_preset(config.model.preset, config.base_dir)
    began = time.perf_counter()
    with runtime.scope(info.location):
        model = build_model(task, info, config, [])
        compile_model(model, config.train, task.loss(config), [])
        ds = runtime.train_data(task.dataset(splits.train, config, True), len(splits.train))
        timer = step_timer()
        steps = args.warmup + args.repeats * args.steps
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
            model.fit(ds.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    for i, value in enumerate(block_rates(timer.ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    placement = {}
    if runtime.mesh is not None:
        from ftk.runtime.model_parallel import bytes_per_device

        placement = bytes_per_device(model)
    emit(
        summary=True,
        layout=args.layout,
        devices=runtime.replicas if runtime.mesh is None else int(runtime.mesh.devices.size),
        global_batch=runtime.global_batch_size,
        weights_mb_per_device={d: round(b / 1e6, 1) for d, b in placement.items()},
        warmup_s=timer.ends[args.warmup - 1] - began,
        peak_rss_mb=peak_rss_mb(),
    )


if __name__ == "__main__":
    main()
