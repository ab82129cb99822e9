"""One run, for every task, as named steps:

    runtime -> data -> run directory -> (cross-validation) -> train -> finalize
            -> evaluate -> export (write, verify, publish) -> report

`run(config)` is what a baked project's `train.py` calls (through `ftk.cli.main.train_main`). The
Keras backend must already be set (`ftk.runtime.backend.set_backend`); `config.run.task` picks the
task (`ftk.tasks.get_task`), and every step asks the task for what is specific to it. Each
step is a small function of the `Run` state below, so a step can be read (and tested) alone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftk.config import Config
from ftk.errors import ConfigError, ExportError
from ftk.files import read_json, write_json
from ftk.runs.dirs import (
    TRAINING,
    check_resumable,
    discard_if_unused,
    load_run_config,
    named_dir,
    new_run_dir,
    restart_dir,
    save_run_config,
)
from ftk.runs.files import RunFiles
from ftk.runs.model import LoadData, build_model, load_task

logger = logging.getLogger("ftk")


@dataclass
class Run:
    """What the steps share: set by one step, read by the next."""

    config: Config
    user_config: Config  # as given (before the runtime adjusted batch size or rate)
    resume: Path | None
    verbose: str | int
    runtime: Any = None
    task: Any = None
    splits: Any = None
    info: Any = None
    files: RunFiles | None = None
    model: Any = None
    reference_model: Any = None  # what the exports are verified against
    val_ds: Any = None
    results: dict = field(default_factory=dict)  # metrics.json beyond the task's metrics

    @property
    def labels(self) -> list[str]:
        return self.splits.label_names


def run(
    config: Config,
    load_data: LoadData | None = None,
    resume: Path | None = None,
    verbose: str | int = "auto",
    extra: dict | None = None,
) -> dict:
    """Train, evaluate, export and verify. Returns a summary dict (also in `summary.json`).

    `extra` is recorded in `run.json` (a tuned run records its search)."""
    started = time.time()
    state = start(config, resume, verbose)
    load_inputs(state, load_data)
    open_run_directory(state, extra)
    tracker = _tracker(state)
    try:
        cross_validate(state)
        train(state)
    except BaseException as error:
        tracker.fail()
        if state.resume is None and discard_if_unused(state.files.root):
            logger.info("Removed %s: the run stopped before its first batch", state.files.root)
        lost = state.runtime.lost_peer(error)
        if lost is not None:
            raise lost from error
        raise
    if not state.runtime.is_chief:
        return worker_done(state)
    try:
        finalize(state)
        metrics = evaluate(state)
        exported = export_step(state)
    except BaseException:
        tracker.fail()
        raise
    summary = summarize(state, metrics, exported, started)
    tracker.finish(state.files.root, summary)
    return summary


def _tracker(state: Run):
    """`[tracking]`'s run for this one (the chief's only)."""
    import keras

    from ftk.runs.tracking import Tracker, open_tracker

    if not state.runtime.is_chief:
        return Tracker()
    return open_tracker(state.config, state.files.root, keras.backend.backend())


def start(config: Config, resume: Path | None, verbose) -> Run:
    """Runtime: the backend check, the resumed run's config, devices and precision."""
    import keras

    from ftk.runtime.distribute import setup_runtime

    if keras.backend.backend() != config.runtime.backend:
        raise ConfigError(
            f"Keras runs on {keras.backend.backend()!r} but runtime.backend="
            f"{config.runtime.backend!r}: set the backend before importing keras."
        )
    if resume is not None:
        resume = Path(resume)
        config = load_run_config(resume)
        check_resumable(resume)
        logger.info("Resuming %s", resume)
    if config.tracking.backend != "none":
        from ftk.runs.tracking import check_installed

        check_installed(config)  # before the run directory
    state = Run(config=config, user_config=config, resume=resume, verbose=verbose)
    state.runtime, state.config = setup_runtime(config)  # before any TF or JAX computation
    if resume is None and config.run.run_id:
        _restarted(state)
    return state


def _restarted(state: Run) -> None:
    """A run named by `run.run_id` that an earlier start of this process left unfinished (its
    engine restarted the pod or task): continue it from its last finished epoch."""
    runtime = state.runtime
    worker = None if runtime.is_chief else runtime.worker_index
    state.resume = restart_dir(state.user_config, named_dir(state.user_config, worker))
    if state.resume is not None:
        logger.info(
            "Run %r was started before: continuing %s from its last finished epoch",
            state.config.run.run_id,
            state.resume,
        )


def load_inputs(state: Run, load_data: LoadData | None) -> None:
    """Data: the task's (or the project's) reader, seeded splits, and the resolved preset."""
    state.task, state.splits, state.info = load_task(state.config, load_data)


def open_run_directory(state: Run, extra: dict | None) -> None:
    """The run directory, made only once the data, the preset and the export destination are
    known good, with the resolved config, the run's facts and the label names."""
    from ftk.runtime.distribute import worker_dir

    config, runtime, splits = state.config, state.runtime, state.splits
    if runtime.is_chief and config.export.export_dir:
        from ftk.export.publish import check_writable

        export_dir = config.resolve_path(config.export.export_dir)
        check_writable(export_dir / config.export.model_name)
    if not runtime.is_chief:
        run_dir = worker_dir(config, runtime.worker_index, fresh=state.resume is None)
    else:
        run_dir = state.resume if state.resume is not None else new_run_dir(config)
    state.files = RunFiles(run_dir)
    logger.info("Run directory: %s", run_dir)
    facts = {
        "task": state.task.name,
        "kind": TRAINING,
        "backend": config.runtime.backend,
        "runtime": runtime.to_json(),
        "preset": {k: v for k, v in asdict(state.info).items() if k != "tokenizer_kwargs"},
        "data_fingerprint": splits.fingerprint,
        "split_counts": splits.counts(),
        "duplicates_removed": splits.duplicates_removed,
        "conflicting_labels": splits.conflicts.to_json(),
        "skipped": [asdict(s) for s in splits.skipped],
    }
    save_run_config(run_dir, state.user_config, {**facts, **(extra or {})})
    write_json(state.files.labels, state.labels)
    _log_data(splits)


def _log_data(splits) -> None:
    sizes = {k: len(getattr(splits, k)) for k in ("train", "validation", "test")}
    labels = f", {splits.label_summary()}" if splits.label_names else ""
    logger.info(
        "Data: %s examples%s (%d exact duplicates dropped)",
        sizes,
        labels,
        splits.duplicates_removed,
    )
    if splits.conflicts.count:
        logger.warning("%s", splits.conflicts.summary())
    if splits.skipped:
        shown = "\n".join(f"  {s.path}: {s.reason}" for s in splits.skipped[:20])
        more = len(splits.skipped) - 20
        logger.warning(
            "Left out %d file(s):\n%s%s",
            len(splits.skipped),
            shown,
            f"\n  ... and {more} more (all in run.json)" if more > 0 else "",
        )


def cross_validate(state: Run) -> None:
    """`recipe.cv_folds`: k models on the pooled train and validation splits (one device)."""
    if not (state.config.recipe.cv_folds and state.runtime.is_chief):
        return
    import keras

    from ftk.runs.crossval import cross_validate as run_folds

    state.results["cross_validation"] = run_folds(
        state.config, state.splits, state.task, state.info, state.files.root, state.verbose
    )
    keras.utils.set_random_seed(state.config.run.seed)


def train(state: Run) -> None:
    """Build the model from the pretrained preset and train every phase of the recipe."""
    from ftk.training.recipes import train_phases

    config, task, runtime, splits = state.config, state.task, state.runtime, state.splits
    if len(splits.validation):
        state.val_ds = task.dataset(splits.validation, config, False)
    elif config.train.monitor != "auto":
        raise ConfigError(
            f"`train.monitor={config.train.monitor!r}` is measured on the validation split, and "
            "this run has none. Set data.validation_split > 0 or data.validation_path, or "
            "train.monitor='auto'."
        )
    with runtime.scope(state.info.location):
        state.model = build_model(task, state.info, config, state.labels)
        if runtime.mesh is not None:
            from ftk.runtime.model_parallel import log_placement

            state.results["placement"] = log_placement(state.model)
    # Outside the distribution: keras-hub's generate would split its few prompts over the mesh.
    # (JAX across processes: every process would have to join; not measured.)
    if runtime.is_chief and not (runtime.jax_distribution and runtime.cluster.multi_process):
        _measure_before(state)
    with runtime.scope(state.info.location):
        trained = train_phases(
            state.model,
            runtime.train_data(task.dataset(splits.train, config, True), len(splits.train)),
            None
            if state.val_ds is None
            else runtime.eval_data(state.val_ds, len(splits.validation)),
            state.files.root,
            config,
            len(splits.train),
            state.verbose,
            validation_examples=splits.validation,
        )
    state.results.update(
        parameters=trained["parameters"],
        epochs_trained=trained["epochs_trained"],
        phases=trained["phases"],
    )


def _measure_before(state: Run) -> None:
    """The task's measurements of the pretrained model (kept in the run directory, so a
    resumed run still has them)."""
    path = state.files.root / "measured_before.json"
    if path.is_file():
        state.results["before"] = read_json(path)
        return
    before = state.task.measure(state.model, state.splits, state.config, "before")
    if before:
        write_json(path, before)
        state.results["before"] = before


def worker_done(state: Run) -> dict:
    logger.info("Worker %d: training done (the chief writes the run)", state.runtime.worker_index)
    state.runtime.finish()
    return {"worker": state.runtime.worker_index, "run_dir": str(state.files.root)}


def finalize(state: Run) -> None:
    """The model to evaluate and export: one device, LoRA merged, WiSE-FT applied; saved."""
    from ftk.runs.finalize import interpolate_run, merged_model
    from ftk.training.fit import save_weights

    config, task, info = state.config, state.task, state.info
    model = state.runtime.deployable(
        state.model, lambda: build_model(task, info, config, state.labels)
    )
    counts = state.results["parameters"]
    logger.info(
        "Backbone %s: %s trainable of %s parameters at the end (recipe %s)",
        info.source,
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        config.recipe.name,
    )
    # The reference is the model as trained (LoRA layers unmerged): the exports are checked
    # against it, so a merged export that drifts fails verification.
    state.reference_model = model
    if config.model.lora_rank:
        model = merged_model(model, task, info, config, state.labels, state.files)
        if config.model.quantize != "none":  # what is exported is the float32 merge
            state.reference_model = model
    if config.recipe.interpolate:
        # On the merged model for LoRA: interpolating the adapter factors would not be linear.
        result = interpolate_run(
            model, task, state.val_ds, state.files, config, state.splits.validation
        )
        state.results["interpolation"] = result
        if result["kept_alpha"] != 1.0:
            state.reference_model = model
    save_weights(model, state.files.weights)
    state.model = model


def evaluate(state: Run) -> dict:
    """Test metrics (the task's), the test outputs, and the reference the exports must match."""
    config, task, files, test = state.config, state.task, state.files, state.splits.test
    calibration = task.calibrate(state.reference_model, state.splits, config)
    write_json(files.calibration, calibration)
    logger.info("Evaluating on %d test examples", len(test))
    outputs = task.predict(state.reference_model, task.dataset(test, config, False))
    metrics = {**task.evaluate(test, outputs, state.labels, calibration), **state.results}
    after = task.measure(state.reference_model, state.splits, config, "after")
    if after:
        metrics["after"] = after
    write_json(files.metrics, metrics)
    np.save(files.outputs, outputs, allow_pickle=False)
    write_json(files.test_split, {"inputs": test.inputs, "labels": test.labels.tolist()})
    n = min(config.export.verify_examples, len(test))
    write_json(
        files.reference,
        {"inputs": test.inputs[:n], "probabilities": outputs[:n].astype(float).tolist()},
    )
    return metrics


def export_step(state: Run) -> dict:
    """Export, verify against the reference, and publish a new version (`export.export_dir`)."""
    config = state.config
    if not config.export.export_dir:
        return {}
    logger.info(
        "Exporting SavedModel%s, then verifying against Keras on up to %d test examples",
        " and ONNX" if config.export.onnx else "",
        min(config.export.verify_examples, len(state.splits.test)),
    )
    try:
        return export(state.files.root, state.model)
    except ExportError as e:
        raise type(e)(
            f"{e} The trained model is saved in {state.files.root}; export it again with: "
            f"ftk export {state.files.root}"
        ) from e


def summarize(state: Run, metrics: dict, exported: dict, started: float) -> dict:
    """`summary.json` (the task's headline test metrics, the export) and the run report."""
    summary = {
        "run_dir": str(state.files.root),
        "task": state.task.name,
        **state.task.headline(metrics),
        "train_seconds": round(time.time() - started, 1),
        "export": exported,
    }
    write_json(state.files.summary, summary)
    summary["report"] = _report(state.files.root)
    state.runtime.finish()
    return summary


def _report(run_dir: Path) -> str | None:
    """Write the run report; a failure is logged, not raised: the run and its exports stand."""
    from ftk.report import write_report

    try:
        return write_report(run_dir)["html"]
    except Exception as e:  # noqa: BLE001 (the report must never cost a finished run)
        logger.warning(
            "The report could not be written (%s: %s); rebuild it with: ftk report %s",
            type(e).__name__,
            e,
            run_dir,
        )
        return None


def export(run_dir: Path, model=None) -> dict:
    """Export in-process on TensorFlow; other backends re-load the weights in a TF subprocess."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from ftk.export.run import export_run

        return export_run(run_dir, model)
    from ftk.runtime.parent import child_env

    env = child_env({**os.environ, "KERAS_BACKEND": "tensorflow"})  # it dies with this process
    command = [sys.executable, "-m", "ftk.export", str(run_dir)]
    if not logger.isEnabledFor(logging.INFO):
        command.append("--quiet")
    logger.info(
        "Exporting under the TensorFlow backend in a subprocess (it rebuilds the model from the "
        "run's weights, about a minute before the files appear): %s",
        " ".join(command),
    )
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise ExportError(f"Export of {run_dir} failed in the TensorFlow subprocess (see above).")
    return read_json(RunFiles(run_dir).export)
