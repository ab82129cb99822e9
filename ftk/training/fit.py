"""Compile and fit a keras-hub task with checkpoints, crash-resume, early stopping and logs.

Files written under the run directory:

- `checkpoints/epoch<NNN>-<monitor>=<value>.weights.h5`: each epoch that improved the monitored
  metric (`train.monitor`: `val_loss` by default, `ftk.training.monitor`), never overwritten: one
  file per epoch. (Runs from before `train.monitor` wrote `epoch<NNN>-val_loss<value>`; they are
  still read.)
- `backup/`: Keras `BackupAndRestore` state; rerunning with `--resume <run_dir>` continues from
  the last finished epoch after a crash.
- `logs/`: TensorBoard (`tensorboard --logdir <run_dir>/logs`).
- `history.csv`: one row of metrics per epoch, with the training speed (`steps_per_second`).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import keras

from ftk.config import TrainConfig
from ftk.runs.files import RunFiles
from ftk.training.monitor import Monitor
from ftk.training.throughput import Throughput

logger = logging.getLogger("ftk")


def set_l2(model, l2: float) -> int:
    """Put an L2 penalty (`l2 * sum(w**2)`) on every kernel and embedding matrix of `model`.

    Keras adds the penalty of each *trainable* variable to the loss, so frozen weights cost
    nothing. `l2=0` removes it. Returns the number of variables penalised.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    count = 0
    for variable in model.weights:
        if len(variable.shape) >= 2 and variable.name.endswith(("kernel", "embeddings")):
            variable.regularizer = regularizer
            count += 1
    return count


def compile_model(
    model,
    train: TrainConfig,
    loss,
    metrics: list = (),
    learning_rate=None,
    multipliers: list | None = None,
) -> None:
    """AdamW (no decay on biases and norms) with the task's `loss` and `metrics`.

    `learning_rate` (a float or a Keras schedule) defaults to `train.learning_rate`;
    `multipliers` (`[(variable, factor)]`, see `ftk.training.optimizers`) gives groups of variables
    their own rate. `train.l2` is applied here.
    """
    kwargs = {
        "learning_rate": train.learning_rate if learning_rate is None else learning_rate,
        "weight_decay": train.weight_decay,
    }
    if train.gradient_accumulation_steps > 1:
        kwargs["gradient_accumulation_steps"] = train.gradient_accumulation_steps
    if train.clip_norm:
        kwargs["global_clipnorm"] = train.clip_norm
    if multipliers and any(factor != 1.0 for _, factor in multipliers):
        from ftk.training.optimizers import DiscriminativeAdamW

        optimizer = DiscriminativeAdamW(multipliers=multipliers, **kwargs)
    else:
        optimizer = keras.optimizers.AdamW(**kwargs)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    set_l2(model, train.l2)
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))


def callbacks(
    run_dir: Path,
    train: TrainConfig,
    has_validation: bool,
    backup: str = "backup",
    *,
    monitor: Monitor | None = None,
    first: list = (),
) -> list:
    """The standard callbacks for a run directory (`backup`: this phase's restore folder).

    `monitor` (default: `val_loss`, or `loss` without validation) picks the checkpoints and
    stops early; `first` are callbacks that add to the epoch's logs what those read
    (`ftk.training.epoch_metrics`), so they come before them."""
    if monitor is None:
        monitor = Monitor("val_loss" if has_validation else "loss", "min")
    name = monitor.name
    files = RunFiles(run_dir)
    files.checkpoints.mkdir(parents=True, exist_ok=True)
    out = [
        *first,
        keras.callbacks.ModelCheckpoint(
            str(files.checkpoints / f"epoch{{epoch:03d}}-{name}={{{name}:.6f}}.weights.h5"),
            monitor=name,
            mode=monitor.mode,
            save_best_only=True,
            save_weights_only=True,
        ),
        Throughput(),  # before CSVLogger: it adds steps_per_second to the epoch's logs
        keras.callbacks.CSVLogger(str(files.history), append=True),
        keras.callbacks.TensorBoard(str(files.logs)),
    ]
    if train.early_stopping_patience:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor=name,
                mode=monitor.mode,
                patience=train.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    # Last: an epoch counts as done for a restart only once its checkpoint and its history row
    # are written (a process killed in between would otherwise resume without that row).
    out.append(BackupAndRestore(str(files.root / backup)))
    return out


_VALUE = r"([0-9.eE+-]+|nan|inf)"
_CHECKPOINT_RES = (
    re.compile(rf"^epoch(\d+)-(\w+)={_VALUE}\.weights\.h5$"),
    re.compile(rf"^epoch(\d+)-((?:val_)?loss){_VALUE}\.weights\.h5$"),  # before train.monitor
)


def checkpoint_score(name: str) -> tuple[int, str, float] | None:
    """`(epoch, metric, value)` of a checkpoint's file name; None if it is not one (or its
    value is not finite)."""
    for pattern in _CHECKPOINT_RES:
        match = pattern.match(name)
        if match and match[3] not in ("nan", "inf"):
            return int(match[1]), match[2], float(match[3])
    return None


def best_checkpoint(run_dir: Path, monitor: Monitor | None = None) -> Path | None:
    """The checkpoint with the best value of `monitor` (its value is in the file name), the
    newest of equals; `monitor=None`: the lowest `val_loss` or `loss`.

    Newest is not enough: after `--resume`, Keras' checkpoint callback starts tracking the best
    value afresh, so the first epoch after a crash is saved even if it is worse.
    """
    names = ("val_loss", "loss") if monitor is None else (monitor.name,)
    sign = 1.0 if monitor is not None and monitor.mode == "max" else -1.0
    scored = []
    for path in RunFiles(run_dir).checkpoints.glob("epoch*.weights.h5"):
        score = checkpoint_score(path.name)
        if score is not None and score[1] in names:
            scored.append((sign * score[2], score[0], path))
    return max(scored)[2] if scored else None


def build_from_spec(model, dataset) -> None:
    """Build the model, loss and metrics from the dataset's shapes before `fit`.

    On JAX and torch, Keras' `fit` builds them by drawing one batch and then restarting the
    dataset, so a shuffled dataset trains in its second shuffle order; TensorFlow's trains in
    its first. Building from `element_spec` first (keras-hub's own preprocessing mapped over,
    nothing drawn) gives every backend the same order: the same run on each. (On TensorFlow
    under a strategy, `ftk.runtime.keras_fixes` does the same.)
    """
    if keras.backend.backend() == "tensorflow":
        return
    preprocess = getattr(model, "preprocess_samples", None)
    if getattr(model, "preprocessor", None) is not None and preprocess is not None:
        dataset = dataset.map(preprocess)  # what keras-hub's fit maps (tracing only)
    model._symbolic_build(data_batch=dataset.element_spec)


def fit(
    model,
    train_ds,
    validation_ds,
    run_dir: Path,
    train: TrainConfig,
    verbose="auto",
    *,
    initial_epoch: int = 0,
    epochs: int | None = None,
    backup: str = "backup",
    load_best: bool = True,
    monitor: Monitor | None = None,
    first_callbacks: list = (),
):
    """`model.fit` with the standard callbacks, from `initial_epoch` up to epoch `epochs`
    (default `train.epochs`); ends with the best checkpoint of the run loaded (`load_best`).

    `monitor` and `first_callbacks`: as `callbacks` takes them."""
    with warnings.catch_warnings():
        # keras-hub's Task.fit passes shuffle=True; the tf.data pipeline already shuffles.
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        build_from_spec(model, train_ds)
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            initial_epoch=initial_epoch,
            epochs=train.epochs if epochs is None else epochs,
            steps_per_epoch=train.steps_per_epoch or None,
            callbacks=callbacks(
                run_dir,
                train,
                validation_ds is not None,
                backup,
                monitor=monitor,
                first=first_callbacks,
            ),
            verbose=verbose,
        )
    if load_best:
        load_best_checkpoint(model, run_dir, monitor)
    return history


def load_best_checkpoint(model, run_dir: Path, monitor: Monitor | None = None) -> Path | None:
    """Load the run's best checkpoint by `monitor` into `model` (if there is one)."""
    best = best_checkpoint(run_dir, monitor)
    if best is not None:
        load_weights(model, best)
        logger.info("Loaded the best weights: %s", best)
    return best


def save_weights(model, path: Path) -> None:
    """`model.save_weights` through a temporary file and a rename: a crash never leaves half a
    weights file where `--resume` would read it. Refuses to overwrite an existing file."""
    import os
    import uuid

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; ftk never overwrites weights.")
    tmp = path.with_name(f".{uuid.uuid4().hex[:12]}.tmp.weights.h5")
    try:
        model.save_weights(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load(model, path) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(path))


def load_weights(model, path: Path) -> None:
    """`model.load_weights`, quiet about optimizer state saved in another phase (a checkpoint
    of the head phase holds the head's optimizer variables only; they are not needed).

    A model with LoRA layers is loaded with `ftk.models.lora.load_weights_keeping_lora`: Keras
    saves LoRA layers' merged kernels and zeroes the adapters on load, which would stop them
    learning and leave nothing to save in the adapter file.
    """
    from ftk.models.lora import load_weights_keeping_lora, lora_layers

    if hasattr(model, "backbone") and lora_layers(model):
        load_weights_keeping_lora(model, path, load=_load)
    else:
        _load(model, path)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore`, restoring the weights through `load_weights` (LoRA-aware),
    and saving through temporary files and renames.

    `_load_model` is Keras 3.15's own, with that one call changed (pinned Keras version).
    `_save_model` writes what Keras' does, but a process killed while saving leaves the last
    complete backup: Keras writes `latest.weights.h5` in place, and a worker killed mid-write
    (a preempted pod) came back to a truncated file it could not open (measured in
    tests/system/test_distribution.py)."""

    def _save_model(self):
        import json
        import os
        import uuid

        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        weights, metadata = folder / f".{tag}.tmp.weights.h5", folder / f".{tag}.tmp.json"
        try:
            self.model.save_weights(str(weights))
            state = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            metadata.write_text(json.dumps(state), encoding="utf-8")
            os.replace(weights, self._weights_path)
            os.replace(metadata, self._training_metadata_path)
        finally:
            weights.unlink(missing_ok=True)
            metadata.unlink(missing_ok=True)

    def _load_model(self):
        import json

        from keras.src.utils import file_utils

        if file_utils.exists(self._weights_path):
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            load_weights(self.model, self._weights_path)
        if file_utils.exists(self._training_metadata_path):
            with file_utils.File(self._training_metadata_path, "r") as f:
                self.model._initial_epoch = json.loads(f.read())["epoch"]
