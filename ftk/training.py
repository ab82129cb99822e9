"""Compile and fit a keras-hub task with checkpoints, crash-resume, early stopping and logs.

Files written under the run directory:

- `checkpoints/epoch<NNN>-val_loss<value>.weights.h5`: each epoch that improved the monitored loss
  (never overwritten: one file per epoch).
- `backup/`: Keras `BackupAndRestore` state; rerunning with `--resume <run_dir>` continues from
  the last finished epoch after a crash.
- `logs/`: TensorBoard (`tensorboard --logdir <run_dir>/logs`).
- `history.csv`: one row of metrics per epoch.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import keras

from ftk.config import TrainConfig

logger = logging.getLogger("ftk")


def compile_classifier(model, train: TrainConfig) -> None:
    """AdamW (no decay on biases and norms), sparse cross-entropy on logits, accuracy."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=train.learning_rate, weight_decay=train.weight_decay
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def callbacks(run_dir: Path, train: TrainConfig, has_validation: bool) -> list:
    """The standard callbacks for a run directory."""
    monitor = "val_loss" if has_validation else "loss"
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    out = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(
                run_dir
                / "checkpoints"
                / f"epoch{{epoch:03d}}-{monitor}{{{monitor}:.6f}}.weights.h5"
            ),
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
    ]
    if train.early_stopping_patience:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=train.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    return out


_CHECKPOINT_RE = re.compile(r"^epoch(\d+)-(?:val_)?loss([0-9.eE+-]+|nan|inf)\.weights\.h5$")


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the lowest monitored loss (its value is in the file name).

    Newest is not enough: after `--resume`, Keras' checkpoint callback starts tracking the best
    value afresh, so the first epoch after a crash is saved even if it is worse.
    """
    scored = []
    for path in (run_dir / "checkpoints").glob("epoch*.weights.h5"):
        match = _CHECKPOINT_RE.match(path.name)
        if match and match[2] not in ("nan", "inf"):
            scored.append((float(match[2]), -int(match[1]), path))
    return min(scored)[2] if scored else None


def fit(model, train_ds, validation_ds, run_dir: Path, train: TrainConfig, verbose="auto"):
    """`model.fit` with the standard callbacks; ends with the best weights loaded."""
    with warnings.catch_warnings():
        # keras-hub's Task.fit passes shuffle=True; the tf.data pipeline already shuffles.
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=train.epochs,
            steps_per_epoch=train.steps_per_epoch or None,
            callbacks=callbacks(run_dir, train, validation_ds is not None),
            verbose=verbose,
        )
    best = best_checkpoint(run_dir)
    if best is not None:
        model.load_weights(str(best))
        logger.info("Loaded the best weights: %s", best)
    return history
