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

from ftk.config import Config, update_config_file
from ftk.data.splits import Splits
from ftk.distribute import setup_runtime, worker_dir
from ftk.errors import ConfigError, ExportError
from ftk.report import PROBABILITIES_FILE
from ftk.runs import load_run_config, new_run_dir, read_json, save_run_config, write_json

logger = logging.getLogger("ftk")

LoadData = Callable[[Config], Splits]
REFERENCE_FILE = "verify_reference.json"
TEST_FILE = "test_split.json"
WEIGHTS_FILE = "model.weights.h5"
ADAPTER_FILE = "adapter.weights.h5"


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


def load_task(config: Config, load_data: LoadData | None):
    """The task, the seeded data splits and the resolved (and reachable) preset of a config."""
    import keras

    from ftk.presets import check_online, resolve_preset
    from ftk.tasks import get_task

    task = get_task(config.run.task)
    keras.utils.set_random_seed(config.run.seed)
    splits = (load_data or task.load_data)(config)
    info = resolve_preset(config.model.preset, config.base_dir)
    check_online(info)
    return task, splits, info


def build_model(task, info, config: Config, num_classes: int):
    """The task's model from the pretrained preset, with LoRA enabled if `model.lora_rank`.

    The head starts from the same weights on every backend (`ftk.models.head.seed_head`)."""
    from ftk.models.head import seed_head

    model = task.build_model(info, config, num_classes)
    seed_head(model, config.run.seed)
    if config.model.lora_rank:
        from ftk.models.lora import enable_lora

        enable_lora(model, config.model.lora_rank)
    return model


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
    extra: dict | None = None,
) -> dict:
    """Train, evaluate, export and verify. Returns a summary dict (also in `summary.json`).

    `extra` is recorded in `run.json` (a tuned run records its search)."""
    import keras

    from ftk.metrics import classification_report
    from ftk.recipes import train_phases
    from ftk.training import save_weights

    started = time.time()
    config = user_config = _start(config, resume)
    runtime, config = setup_runtime(config)  # before any TensorFlow or JAX computation
    task, splits, info = load_task(config, load_data)
    labels = splits.label_names
    # The run directory is made only once the data and the preset are known good.
    if not runtime.is_chief:
        run_dir = worker_dir(config, runtime.worker_index, fresh=resume is None)
    else:
        run_dir = Path(resume) if resume is not None else new_run_dir(config)
    logger.info("Run directory: %s", run_dir)
    save_run_config(
        run_dir,
        user_config,
        {
            "task": task.name,
            "backend": config.runtime.backend,
            "runtime": runtime.to_json(),
            "preset": {k: v for k, v in asdict(info).items() if k != "tokenizer_kwargs"},
            "data_fingerprint": splits.fingerprint,
            "split_counts": splits.counts(),
            "duplicates_removed": splits.duplicates_removed,
            "skipped": [asdict(s) for s in splits.skipped],
            **(extra or {}),
        },
    )
    write_json(run_dir / "labels.json", labels)
    _log_data(splits)

    cross_validation = None
    if config.recipe.cv_folds and runtime.is_chief:
        from ftk.crossval import cross_validate

        # On one device: only the final model is trained under runtime.distribution.
        cross_validation = cross_validate(config, splits, task, info, run_dir, verbose)
        keras.utils.set_random_seed(config.run.seed)
    val_ds = task.dataset(splits.validation, config, False) if len(splits.validation) else None
    with runtime.scope():
        model = build_model(task, info, config, len(labels))
        trained = train_phases(
            model,
            runtime.train_data(task.dataset(splits.train, config, True), len(splits.train)),
            None if val_ds is None else runtime.eval_data(val_ds, len(splits.validation)),
            run_dir,
            config,
            len(splits.train),
            verbose,
        )
    if not runtime.is_chief:
        logger.info("Worker %d: training done (the chief writes the run)", runtime.worker_index)
        runtime.finish()
        return {"worker": runtime.worker_index, "run_dir": str(run_dir)}
    model = runtime.deployable(model, lambda: build_model(task, info, config, len(labels)))
    counts = trained["parameters"]
    logger.info(
        "Backbone %s: %s trainable of %s parameters at the end (recipe %s)",
        info.source,
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        config.recipe.name,
    )
    reference_model = model
    if config.model.lora_rank:
        model = merged_model(model, task, info, config, len(labels), run_dir)
    interpolation = None
    if config.recipe.interpolate:
        # On the merged model for LoRA: interpolating the adapter factors would not be linear.
        interpolation = interpolate_run(model, val_ds, run_dir, config)
        if interpolation["kept_alpha"] != 1.0:
            reference_model = model
    save_weights(model, run_dir / WEIGHTS_FILE)

    logger.info("Evaluating on %d test examples", len(splits.test))
    # The reference is the model as trained (LoRA layers unmerged): the exports are checked
    # against it, so a merged export that drifts fails verification.
    probabilities = predict_probabilities(reference_model, task.dataset(splits.test, config, False))
    metrics = classification_report(splits.test.labels, probabilities.argmax(-1), labels)
    metrics["parameters"] = counts
    metrics["epochs_trained"] = trained["epochs_trained"]
    metrics["phases"] = trained["phases"]
    if interpolation is not None:
        metrics["interpolation"] = interpolation
    if cross_validation is not None:
        metrics["cross_validation"] = cross_validation
    write_json(run_dir / "metrics.json", metrics)
    np.save(run_dir / PROBABILITIES_FILE, probabilities, allow_pickle=False)
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
    summary["report"] = _report(run_dir)
    runtime.finish()
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


def find_learning_rate(
    config: Config,
    load_data: LoadData | None = None,
    phase: str = "finetune",
    steps: int = 100,
    config_path: Path | None = None,
    verbose: str | int = "auto",
) -> dict:
    """`--lr-find`: sweep the learning rate of one phase of the recipe on the training split,
    write `lr_find.png` and `lr_find.json` into a new run directory, and suggest a value.

    `phase="finetune"` sweeps with the recipe's last phase's trainable weights (the value is
    `train.learning_rate`); `"head"` with only the head training (`recipe.head_learning_rate`).
    The model is built for the sweep and thrown away: no checkpoint, weights file or export is
    written. With `config_path`, the suggestion is written into that file (a backup is kept).
    """

    from ftk.lr_find import lr_find, plot_lr_find
    from ftk.models.trainable import backbone_blocks
    from ftk.recipes import Phase, compile_phase, plan_phases

    if phase not in ("finetune", "head"):
        raise ConfigError(f"--lr-find takes 'finetune' or 'head'. Received: {phase!r}")
    task, splits, info = load_task(config, load_data)
    model = build_model(task, info, config, len(splits.label_names))
    last = plan_phases(config, len(backbone_blocks(model.backbone)))[-1]
    trainable = "head" if phase == "head" else last.trainable

    def compile_fn(m, learning_rate):  # the recipe's optimizer, with the sweep's rates
        compile_phase(m, config, Phase(f"lr_find_{phase}", trainable, 1, 1.0), steps, learning_rate)

    run_dir = new_run_dir(config)
    save_run_config(run_dir, config, {"task": task.name, "kind": "lr_find", "phase": phase})
    logger.info("LR finder (%s phase, %s weights): up to %d steps", phase, trainable, steps)
    result = lr_find(
        model, task.dataset(splits.train, config, True), compile_fn, steps=steps, verbose=verbose
    )
    key = "train.learning_rate" if phase == "finetune" else "recipe.head_learning_rate"
    suggestion = float(f"{result.suggestion:.2g}")
    summary = {
        **result.to_json(),
        "run_dir": str(run_dir),
        "key": key,
        "suggestion": suggestion,  # rounded to 2 significant digits
        "plot": str(run_dir / "lr_find.png"),
    }
    plot_lr_find(result, run_dir / "lr_find.png")
    if config_path is not None:
        summary["backup"] = str(update_config_file(config_path, key, suggestion))
        summary["config"] = str(config_path)
    write_json(run_dir / "lr_find.json", summary)
    return summary


def interpolate_run(model, val_ds, run_dir: Path, config: Config) -> dict:
    """WiSE-FT: validation metrics of θ_pre + α(θ_ft − θ_pre) over a grid of α, written to
    `interpolation.json` and `interpolation.png`; with `recipe.keep_best_alpha` the model keeps
    the best α's weights, otherwise the fine-tuned ones (α = 1)."""
    from ftk.interpolate import alpha_grid, best_alpha, plot_curve, snapshot, wise_ft_curve
    from ftk.recipes import PRETRAINED_FILE

    if val_ds is None:
        raise ConfigError(
            "`recipe.interpolate` picks α on the validation split, and this run has none. "
            "Set data.validation_split > 0 or data.validation_path."
        )
    start = run_dir / PRETRAINED_FILE
    if not start.exists():
        raise ConfigError(
            "`recipe.interpolate` needs a phase that trains the backbone; model.trainable='head' "
            "has none."
        )
    from ftk.training import load_weights

    fine_tuned = snapshot(model)
    load_weights(model, start)
    pretrained = snapshot(model)
    model.set_weights(fine_tuned)

    def evaluate(m):
        values = m.evaluate(val_ds, verbose=0, return_dict=True)
        return {"accuracy": float(values["accuracy"]), "loss": float(values["loss"])}

    alphas = alpha_grid(config.recipe.interpolation_points)
    logger.info("WiSE-FT: validation metrics at %d values of alpha", len(alphas))
    curve = wise_ft_curve(model, pretrained, fine_tuned, evaluate, alphas)
    best = best_alpha(curve)
    kept = best if config.recipe.keep_best_alpha else 1.0
    if kept != 1.0:
        from ftk.interpolate import interpolate

        model.set_weights(interpolate(pretrained, fine_tuned, kept))
    result = {"curve": curve, "best_alpha": best, "kept_alpha": kept}
    write_json(run_dir / "interpolation.json", result)
    plot_curve(curve, run_dir / "interpolation.png")
    by_alpha = {point["alpha"]: point for point in curve}
    logger.info(
        "WiSE-FT: best alpha %.2f (validation accuracy %.4f; alpha=1: %.4f); kept alpha %.2f. "
        "Curve: %s",
        best,
        by_alpha[best]["accuracy"],
        by_alpha[1.0]["accuracy"],
        kept,
        run_dir / "interpolation.png",
    )
    return result


def merged_model(lora_model, task, info, config: Config, num_classes: int, run_dir: Path):
    """Save the LoRA adapter and head (`adapter.weights.h5`), and return a plain model (no LoRA
    layers) with the adapters merged into its kernels: what is exported."""
    from ftk.models.lora import merge_lora, save_adapter

    if not (run_dir / ADAPTER_FILE).exists():  # else: written before a crash, from these weights
        save_adapter(lora_model, run_dir / ADAPTER_FILE)
    plain = task.build_model(info, config, num_classes)
    merged = merge_lora(lora_model, plain)
    logger.info("LoRA: adapter saved to %s; %d layers merged for export", ADAPTER_FILE, merged)
    return plain


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
