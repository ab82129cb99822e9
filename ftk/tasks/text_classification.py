"""Text classification end to end: data -> pretrained model -> fit -> evaluate -> export -> verify.

`run(config)` is what a baked project's `train.py` calls (through `ftk.cli.train_main`). The
Keras backend must already be set (`ftk.backend.set_backend`).
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
from ftk.runs import load_run_config, new_run_dir, save_run_config, write_json

logger = logging.getLogger("ftk")

LoadData = Callable[[Config], Splits]


def default_load_data(config: Config) -> Splits:
    """Read `[data]` with ftk's readers (CSV, `<label>/*.txt` folders, TFDS)."""
    from ftk.data.text import load_text_splits

    return load_text_splits(config.data, config.resolve_path, seed=config.run.seed)


def _predict_probabilities(model, texts: list[str], batch_size: int) -> np.ndarray:
    import keras

    from ftk.data.text import Examples, to_dataset

    examples = Examples(texts, np.zeros(len(texts), np.int32))
    ds = to_dataset(examples, batch_size).map(lambda x, y: x)
    logits = model.predict(ds, verbose=0)
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)), np.float32)


def run(
    config: Config,
    load_data: LoadData | None = None,
    resume: Path | None = None,
    verbose: str | int = "auto",
) -> dict:
    """Train, evaluate, export and verify. Returns a summary dict (also in `summary.json`)."""
    import keras

    from ftk.data.text import to_dataset
    from ftk.metrics import classification_report
    from ftk.models.text import build_text_classifier
    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy
    from ftk.presets import check_online, resolve_preset
    from ftk.training import compile_classifier, fit

    started = time.time()
    if keras.backend.backend() != config.runtime.backend:
        raise ConfigError(
            f"Keras runs on {keras.backend.backend()!r} but runtime.backend="
            f"{config.runtime.backend!r}: set the backend before importing keras."
        )
    if resume is not None:
        run_dir = Path(resume)
        config = load_run_config(run_dir)
        if (run_dir / "model.weights.h5").exists():
            raise ConfigError(
                f"{run_dir} already finished training (model.weights.h5 exists); start a new run."
            )
        logger.info("Resuming %s", run_dir)
    keras.utils.set_random_seed(config.run.seed)
    splits = (load_data or default_load_data)(config)
    labels = splits.label_names
    info = resolve_preset(config.model.preset, config.base_dir)
    check_online(info)
    if resume is None:
        run_dir = new_run_dir(config)  # only once the data and the preset are known good
    logger.info("Run directory: %s", run_dir)
    save_run_config(
        run_dir,
        config,
        {
            "backend": config.runtime.backend,
            "preset": {k: v for k, v in asdict(info).items() if k != "tokenizer_kwargs"},
            "data_fingerprint": splits.fingerprint,
            "split_counts": splits.counts(),
            "duplicates_removed": splits.duplicates_removed,
        },
    )
    write_json(run_dir / "labels.json", labels)
    logger.info(
        "Data: %s examples, %d labels (%d exact duplicates dropped)",
        {k: sum(v.values()) for k, v in splits.counts().items()},
        len(labels),
        splits.duplicates_removed,
    )

    model = build_text_classifier(info, config.model, len(labels))
    counts = apply_trainable_policy(model, TrainablePolicy.parse(config.model.trainable))
    compile_classifier(model, config.train)
    logger.info(
        "Backbone %s: %s trainable of %s parameters (policy %s)",
        info.source,
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        config.model.trainable,
    )

    seed, batch = config.run.seed, config.train.batch_size
    train_ds = to_dataset(splits.train, batch, config.data.shuffle_buffer, seed)
    val_ds = to_dataset(splits.validation, batch) if len(splits.validation) else None
    history = fit(model, train_ds, val_ds, run_dir, config.train, verbose=verbose)
    model.save_weights(str(run_dir / "model.weights.h5"))

    logger.info("Evaluating on %d test examples", len(splits.test))
    probabilities = _predict_probabilities(model, splits.test.texts, batch)
    metrics = classification_report(splits.test.labels, probabilities.argmax(-1), labels)
    metrics["parameters"] = counts
    metrics["epochs_trained"] = len(history.history.get("loss", []))
    write_json(run_dir / "metrics.json", metrics)
    n = min(config.export.verify_examples, len(splits.test))
    write_json(
        run_dir / "verify_reference.json",
        {
            "texts": splits.test.texts[:n],
            "probabilities": probabilities[:n].astype(float).tolist(),
        },
    )

    exported = {}
    if config.export.export_dir:
        logger.info(
            "Exporting SavedModel%s, then verifying against Keras on %d examples",
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
    from ftk.runs import read_json

    return read_json(Path(run_dir) / "export.json")
