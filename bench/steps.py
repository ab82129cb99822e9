"""Training steps/s through ftk's own path, in one process on one backend.

ftk's path is what a baked project's `train.py` runs for a phase that trains every weight:
`load_task` -> `build_model` -> `compile_classifier` -> the task's `dataset(...)` -> `fit`.
Times come from a callback at the end of each batch; the first steps of a process (tracing,
compilation) are warm-up and never timed.

Modes (`python -m bench.steps MODE ...`):

- `backend`: steps/s of `--task` on `--backend` (row 3).
- `overhead`: ftk's path against a minimal hand-written keras-hub script on the same preset,
  texts, batch, sequence length and optimizer, alternating in one process (row 1).
- `pipeline`: the task's tf.data pipeline against the same batches preprocessed and cached in
  memory, alternating in one process (row 4).
- `accuracy`: one epoch of fine-tuning, steps/s in blocks, then test accuracy (row 2's ftk side).
"""

from __future__ import annotations

import argparse
import time
import warnings

from bench.common import (
    block_rates,
    emit,
    log,
    peak_rss_mb,
    set_backend,
    set_precision,
    spread_subset,
    step_timer,
    task_config,
)


def ftk_model(config):
    """The baked project's model, compiled as ftk compiles a phase that trains every weight."""
    from ftk.runs.model import build_model, load_task
    from ftk.tasks.classification.losses import compile_classifier
    from ftk.training.fit import build_from_spec

    task, splits, info = load_task(config, None)
    model = build_model(task, info, config, splits.label_names)
    compile_classifier(model, config.train)
    train = task.dataset(splits.train, config, True)
    build_from_spec(model, train)
    return task, splits, info, model, train


def fit_steps(model, dataset, steps: int, timer, fit=None) -> list[float]:
    """`fit` for `steps` batches of an endless dataset; returns each batch's end time."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        (fit or model.fit)(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return list(timer.ends)


def rate(ends: list[float]) -> float:
    """Steps/s over every step but the first (which includes the new iterator's start)."""
    return (len(ends) - 1) / (ends[-1] - ends[0])


def backend_mode(args) -> None:
    config = task_config(args.task, args.backend)
    began = time.perf_counter()
    _, _, _, model, train = ftk_model(config)
    built = time.perf_counter()
    timer = step_timer()
    ends = fit_steps(model, train.repeat(), args.warmup + args.repeats * args.steps, timer)
    compile_s = ends[args.warmup - 1] - built
    for i, value in enumerate(block_rates(ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    emit(
        summary=True,
        batch=config.train.batch_size,
        setup_s=built - began,
        warmup_s=compile_s,
        peak_rss_mb=peak_rss_mb(),
    )


def alternating(entries, steps: int, repeats: int, timer):
    """Per repetition, `{name: step end times}` of `steps` timed steps of each `(name, model,
    dataset, fit)`, the order reversed every other repetition; each fit runs one step longer
    than timed (its first step starts an iterator)."""
    for i in range(repeats):
        order = entries if i % 2 == 0 else entries[::-1]
        yield (
            i,
            {
                name: fit_steps(m, data.repeat(), steps + 1, timer, fit)
                for name, m, data, fit in order
            },
        )


def minimal_keras_hub(config, texts, labels, num_classes):
    """What a user writes with keras-hub alone: `TextClassifier.from_preset` on the same
    directory, AdamW at the same rate, the same batch, sequence length and shuffle buffer."""
    import keras
    import keras_hub
    import tensorflow as tf

    from ftk.presets.resolve import resolve_preset

    location = resolve_preset(config.model.preset, config.base_dir).location
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        location, sequence_length=config.model.sequence_length
    )
    model = keras_hub.models.TextClassifier.from_preset(
        location, num_classes=num_classes, preprocessor=preprocessor
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config.train.learning_rate, weight_decay=config.train.weight_decay
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    data = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .shuffle(len(texts), seed=config.run.seed)
        .batch(config.train.batch_size)
    )
    return model, data


def overhead_mode(args) -> None:
    config = task_config("text", args.backend)
    task, splits, _, model, train = ftk_model(config)
    raw, raw_data = minimal_keras_hub(
        config, splits.train.inputs, splits.train.labels, len(splits.label_names)
    )
    timer = step_timer()
    log("warm-up: ftk, then keras-hub")
    fit_steps(model, train.repeat(), args.warmup, timer)
    fit_steps(raw, raw_data.repeat(), args.warmup, timer)
    entries = [("ftk", model, train, None), ("raw", raw, raw_data, None)]
    for i, ends in alternating(entries, args.steps, args.repeats, timer):
        out = {name: rate(e) for name, e in ends.items()}
        emit(rep=i, ftk_steps_s=out["ftk"], raw_steps_s=out["raw"])
        log(f"rep {i}: ftk {out['ftk']:.3f} steps/s, keras-hub {out['raw']:.3f} steps/s")
    emit(summary=True, batch=config.train.batch_size, peak_rss_mb=peak_rss_mb())


def pipeline_mode(args) -> None:
    """The real pipeline vs the same batches already preprocessed (tokenised, or decoded and
    augmented) and held in memory. On TensorFlow, keras-hub maps its preprocessor over the
    dataset inside `fit`; the cached batches skip that by calling `keras.Model.fit`."""
    import keras
    import tensorflow as tf

    config = task_config(args.task, args.backend)
    task, splits, _, model, train = ftk_model(config)
    batches = max(args.steps + 1, 8)
    size = config.train.batch_size
    full = train.repeat().filter(lambda x, y: tf.shape(y)[0] == size)  # stackable batches
    preprocessed = full.map(model.preprocess_samples).take(batches)
    cached = tf.data.Dataset.from_tensor_slices(
        tf.nest.map_structure(lambda *t: tf.stack(t), *list(preprocessed))
    ).cache()
    for _ in cached:  # fill the cache
        pass

    def plain_fit(*a, **k):
        return keras.Model.fit(model, *a, **k)

    timer = step_timer()
    fit_steps(model, train.repeat(), args.warmup, timer)
    fit_steps(model, cached.repeat(), args.warmup, timer, plain_fit)
    entries = [("pipeline", model, train, None), ("cached", model, cached, plain_fit)]
    for i, ends in alternating(entries, args.steps, args.repeats, timer):
        out = {name: 1.0 / rate(e) for name, e in ends.items()}
        emit(rep=i, pipeline_s_step=out["pipeline"], cached_s_step=out["cached"])
        log(f"rep {i}: pipeline {out['pipeline']:.3f} s/step, cached {out['cached']:.3f} s/step")
    emit(summary=True, batch=config.train.batch_size, cached_batches=batches)


def accuracy_mode(args) -> None:
    import numpy as np

    from ftk.data.splits import Examples

    extra = [f"data.max_train_examples={args.train_examples}"]
    config = task_config("text", args.backend, extra)
    task, splits, _, model, train = ftk_model(config)
    timer = step_timer()
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        model.fit(train, epochs=args.epochs, verbose=0, callbacks=[timer])
    train_s = time.perf_counter() - began
    keep = spread_subset(len(splits.test), args.test_limit)
    test = Examples([splits.test.inputs[i] for i in keep], splits.test.labels[keep])
    probabilities = task.predict(model, task.dataset(test, config, False))
    accuracy = float(np.mean(probabilities.argmax(-1) == test.labels))
    for i, value in enumerate(block_rates(timer.ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    emit(
        summary=True,
        accuracy=accuracy,
        test_examples=len(test),
        train_examples=len(splits.train),
        steps=len(timer.ends),
        train_s=train_s,
        batch=config.train.batch_size,
        precision=args.precision,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["backend", "overhead", "pipeline", "accuracy"])
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--task", choices=["text", "image"], default="text")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-examples", type=int, default=480, help="accuracy mode")
    parser.add_argument("--epochs", type=int, default=1, help="accuracy mode")
    parser.add_argument("--test-limit", type=int, default=0, help="accuracy mode; 0 = all")
    parser.add_argument(
        "--precision", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16"
    )
    args = parser.parse_args()
    set_backend(args.backend)
    set_precision(args.precision)
    {
        "backend": backend_mode,
        "overhead": overhead_mode,
        "pipeline": pipeline_mode,
        "accuracy": accuracy_mode,
    }[args.mode](args)


if __name__ == "__main__":
    main()
