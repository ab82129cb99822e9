"""One run, for every task: data -> pretrained model -> fit -> evaluate -> export -> verify.

`run(config)` is what a baked project's `train.py` calls (through `ftk.cli.train_main`). The
Keras backend must already be set (`ftk.backend.set_backend`); `config.run.task` picks the
task (`ftk.tasks.get_task`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ftk.config import Config
from ftk.data.splits import Splits
from ftk.errors import ConfigError, ExportError
from ftk.runs import load_run_config, new_run_dir, read_json, save_run_config, write_json

logger = logging.getLogger("ftk")

LoadData = Callable[[Config], Splits]
REFERENCE_FILE = "verify_reference.json"
TEST_FILE = "test_split.json"
WEIGHTS_FILE = "model.weights.h5"


def predict_probabilities(model, dataset) -> np.ndarray:
    """Float32 softmax probabilities of `model` on the inputs of a `(inputs, labels)` dataset."""
    import keras

    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)), np.float32)


def _start(config: Config, resume: Path | None) -> Config:
    import keras

    if keras.backend.backend() != config.runtime.backend:
        raise ConfigError(
            f"Keras runs on {keras.backend.backend()!r} but runtime.backend="
            f"{config.runtime.backend!r}: set the backend before importing keras."
        )
    if resume is None:
        return config
    run_dir = Path(resume)
    config = load_run_config(run_dir)
    if (run_dir / WEIGHTS_FILE).exists():
        raise ConfigError(
            f"{run_dir} already finished training ({WEIGHTS_FILE} exists); start a new run."
        )
    logger.info("Resuming %s", run_dir)
    return config


def _log_data(splits: Splits) -> None:
    logger.info(
        "Data: %s examples, %d labels (%d exact duplicates dropped)",
        {k: sum(v.values()) for k, v in splits.counts().items()},
        len(splits.label_names),
        splits.duplicates_removed,
    )
    if splits.skipped:
        shown = "\n".join(f"  {s.path}: {s.reason}" for s in splits.skipped[:20])
        more = len(splits.skipped) - 20
        logger.warning(
            "Left out %d file(s):\n%s%s",
            len(splits.skipped),
            shown,
            f"\n  ... and {more} more (all in run.json)" if more > 0 else "",
        )


def run(
    config: Config,
    load_data: LoadData | None = None,
    resume: Path | None = None,
    verbose: str | int = "auto",
) -> dict:
    """Train, evaluate, export and verify. Returns a summary dict (also in `summary.json`)."""
    import keras

    from ftk.metrics import classification_report
    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy
    from ftk.presets import check_online, resolve_preset
    from ftk.tasks import get_task
    from ftk.training import compile_classifier, fit

    started = time.time()
    config = _start(config, resume)
    task = get_task(config.run.task)
    keras.utils.set_random_seed(config.run.seed)
    splits = (load_data or task.load_data)(config)
    labels = splits.label_names
    info = resolve_preset(config.model.preset, config.base_dir)
    check_online(info)
    # The run directory is made only once the data and the preset are known good.
    run_dir = Path(resume) if resume is not None else new_run_dir(config)
    logger.info("Run directory: %s", run_dir)
    save_run_config(
        run_dir,
        config,
        {
            "task": task.name,
            "backend": config.runtime.backend,
            "preset": {k: v for k, v in asdict(info).items() if k != "tokenizer_kwargs"},
            "data_fingerprint": splits.fingerprint,
            "split_counts": splits.counts(),
            "duplicates_removed": splits.duplicates_removed,
            "skipped": [asdict(s) for s in splits.skipped],
        },
    )
    write_json(run_dir / "labels.json", labels)
    _log_data(splits)

    model = task.build_model(info, config, len(labels))
    counts = apply_trainable_policy(model, TrainablePolicy.parse(config.model.trainable))
    compile_classifier(model, config.train)
    logger.info(
        "Backbone %s: %s trainable of %s parameters (policy %s)",
        info.source,
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        config.model.trainable,
    )

    train_ds = task.dataset(splits.train, config, True)
    val_ds = task.dataset(splits.validation, config, False) if len(splits.validation) else None
    history = fit(model, train_ds, val_ds, run_dir, config.train, verbose=verbose)
    model.save_weights(str(run_dir / WEIGHTS_FILE))

    logger.info("Evaluating on %d test examples", len(splits.test))
    probabilities = predict_probabilities(model, task.dataset(splits.test, config, False))
    metrics = classification_report(splits.test.labels, probabilities.argmax(-1), labels)
    metrics["parameters"] = counts
    metrics["epochs_trained"] = len(history.history.get("loss", []))
    write_json(run_dir / "metrics.json", metrics)
    write_json(
        run_dir / TEST_FILE,
        {"inputs": splits.test.inputs, "labels": splits.test.labels.astype(int).tolist()},
    )
    n = min(config.export.verify_examples, len(splits.test))
    write_json(
        run_dir / REFERENCE_FILE,
        {
            "inputs": splits.test.inputs[:n],
            "probabilities": probabilities[:n].astype(float).tolist(),
        },
    )

    exported = {}
    if config.export.export_dir:
        logger.info(
            "Exporting SavedModel%s, then verifying against Keras on up to %d test examples",
            " and ONNX" if config.export.onnx else "",
            n,
        )
        exported = export(run_dir, model)
    summary = {
        "run_dir": str(run_dir),
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "train_seconds": round(time.time() - started, 1),
        "export": exported,
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def export(run_dir: Path, model=None) -> dict:
    """Export in-process on TensorFlow; other backends re-load the weights in a TF subprocess."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from ftk.export.run import export_run

        return export_run(run_dir, model)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, "-m", "ftk.export", str(run_dir)]
    if not logger.isEnabledFor(logging.INFO):
        command.append("--quiet")
    logger.info("Exporting under the TensorFlow backend: %s", " ".join(command))
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise ExportError(f"Export of {run_dir} failed in the TensorFlow subprocess (see above).")
    return read_json(Path(run_dir) / "export.json")
