"""After training, before evaluation: the model that is evaluated and exported.

- `merged_model`: LoRA runs save their adapter and export a plain model with the adapters
  merged into its kernels.
- `interpolate_run`: WiSE-FT, θ_pre + α(θ_ft − θ_pre) scored on the validation split over a
  grid of α, by `train.monitor` (with `auto`, the task's `interpolation_metric`).

Both may get a model built after training (the merged plain model, or the runtime's float32
copy), which keras-hub compiled with its own defaults (its metric is `sparse_categorical_accuracy`,
not the task's `accuracy`): `compile_for_evaluation` compiles it with the task's loss and metrics,
as the recipe compiled the trained model.
"""

from __future__ import annotations

import logging

from ftk.config import Config
from ftk.errors import ConfigError
from ftk.files import write_json
from ftk.runs.files import RunFiles

logger = logging.getLogger("ftk")


def compile_for_evaluation(model, task, config: Config) -> None:
    """Compile `model` with the task's loss and metrics (those training reported), so that
    `model.evaluate` returns the task's metric names. No optimizer state: it trains no more."""
    model.compile(loss=task.loss(config), metrics=task.metrics(config))


def interpolate_run(
    model, task, val_ds, files: RunFiles, config: Config, val_examples=None
) -> dict:
    """WiSE-FT: validation metrics of θ_pre + α(θ_ft − θ_pre) over a grid of α, written to
    `interpolation.json` and `interpolation.png`; with `recipe.keep_best_alpha` the model keeps
    the best α's weights, otherwise the fine-tuned ones (α = 1). α is chosen by
    `ftk.training.monitor.interpolation_metric`: a compile metric, or one of the task's epoch
    metrics measured on `val_examples` (the examples of `val_ds`)."""
    from ftk.training.fit import load_weights
    from ftk.training.interpolate import (
        alpha_grid,
        best_alpha,
        interpolate,
        plot_curve,
        snapshot,
        wise_ft_curve,
    )
    from ftk.training.monitor import interpolation_metric

    if val_ds is None:
        raise ConfigError(
            "`recipe.interpolate` picks α on the validation split, and this run has none. "
            "Set data.validation_split > 0 or data.validation_path."
        )
    if not files.pretrained.exists():
        raise ConfigError(
            "`recipe.interpolate` needs a phase that trains the backbone; model.trainable='head' "
            "has none."
        )
    metric = interpolation_metric(config, task)
    compile_for_evaluation(model, task, config)  # e.g. the float32 copy: keras-hub's metrics
    fine_tuned = snapshot(model)
    load_weights(model, files.pretrained)
    pretrained = snapshot(model)
    model.set_weights(fine_tuned)

    def evaluate(m):
        values = m.evaluate(val_ds, verbose=0, return_dict=True)
        if metric in task.epoch_metric_names:
            values.update(task.epoch_metrics(m, val_ds, val_examples, config))
        return {metric: float(values[metric]), "loss": float(values["loss"])}

    alphas = alpha_grid(config.recipe.interpolation_points)
    logger.info("WiSE-FT: validation metrics at %d values of alpha", len(alphas))
    curve = wise_ft_curve(model, pretrained, fine_tuned, evaluate, alphas)
    maximize = task.direction(metric) == "max"
    best = best_alpha(curve, metric, maximize)
    kept = best if config.recipe.keep_best_alpha else 1.0
    if kept != 1.0:
        model.set_weights(interpolate(pretrained, fine_tuned, kept))
    result = {"curve": curve, "best_alpha": best, "kept_alpha": kept, "metric": metric}
    write_json(files.interpolation, result)
    plot_curve(curve, files.interpolation_plot, metric, maximize)
    by_alpha = {point["alpha"]: point for point in curve}
    logger.info(
        "WiSE-FT: best alpha %.2f (validation %s %.4f; alpha=1: %.4f); kept alpha %.2f. Curve: %s",
        best,
        metric,
        by_alpha[best][metric],
        by_alpha[1.0][metric],
        kept,
        files.interpolation_plot,
    )
    return result


def merged_model(lora_model, task, info, config: Config, labels: list[str], files: RunFiles):
    """Save the LoRA adapter and head (`adapter.weights.h5`), and return a plain model (no LoRA
    layers) with the adapters merged into its kernels: what is exported. It is compiled with the
    task's loss and metrics, so it evaluates as the trained model did."""
    from ftk.models.lora import load_adapter, merge_lora, save_adapter

    if not files.adapter.exists():  # else: written before a crash, from these weights
        save_adapter(lora_model, files.adapter)
    plain = task.build_model(info, config, labels)
    if config.model.quantize != "none":
        # QLoRA: the adapters trained on the int8 base are merged into the float32 base.
        from dataclasses import replace

        from ftk.runs.model import build_model

        unquantized = replace(config, model=replace(config.model, quantize="none"))
        lora_model = build_model(task, info, unquantized, labels)
        load_adapter(lora_model, files.adapter)
        logger.info("model.quantize: the adapters are merged into the float32 backbone")
    merged = merge_lora(lora_model, plain)
    compile_for_evaluation(plain, task, config)
    logger.info(
        "LoRA: adapter saved to %s; %d layers merged for export", files.adapter.name, merged
    )
    return plain
