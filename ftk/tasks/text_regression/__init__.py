"""Text regression: texts or text pairs with one or more numbers (a CSV file, the VADER rated
sentences, the STS Benchmark's scored sentence pairs) -> a keras-hub text encoder with a linear
head (MiniLM-L6 offline, any keras-hub text preset); MSE, MAE or Huber loss; test MAE, RMSE,
R², Pearson and Spearman; the SavedModel takes raw text (and its pair) and returns the numbers.
docs/templates/text-regression.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftk.tasks.registry import register_task
from ftk.tasks.text_targets import TextTargetsTask

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

LOSSES = {"auto": "mse", "mse": "mse", "mae": "mae", "huber": "huber"}


@register_task
class TextRegression(TextTargetsTask):
    """Numbers from text: the pooled features into `len(targets)` linear outputs."""

    name = "text_regression"
    title = "Text regression"
    template = "text-regression"
    only_keys = (
        "model.sequence_length",
        "data.text_column",
        "data.decode_errors",
        "data.target_columns",
        "data.second_text_column",
    )
    unused_keys = (
        "data.format",
        "data.label_column",
        "data.labels",
        "data.conflicting_labels",
        "train.label_smoothing",
        "train.class_weight",
        "tune.cache_features",
        "export.onnx_int8",
    )
    defaults = {
        "data": {"path": "example:vader_movie_reviews"},
        "train": {"epochs": 4, "learning_rate": 5e-5},
        "export": {"model_name": "text_regressor"},
    }
    objectives = {
        "val_mae": "min",
        "val_rmse": "min",
        "val_spearman": "max",
        "val_loss": "min",
    }
    interpolation_metric = "mae"
    epoch_metric_names = ("spearman",)
    headline_metrics = ("mae", "rmse", "r2", "spearman")
    metric_titles = {
        "mae": "MAE",
        "rmse": "RMSE",
        "r2": "R²",
        "pearson": "Pearson r",
        "spearman": "Spearman ρ",
    }
    signature = {
        "inputs": {"text": "DT_STRING [-1]", "text_pair": "DT_STRING [-1] (pairs only)"},
        "outputs": {"values": "DT_FLOAT [-1, num_targets] (the order of labels.txt)"},
    }

    # -- config -----------------------------------------------------------------------------
    def validate(self, config: Config, fail) -> None:
        if not config.data.path:
            fail("data.path", "a CSV file (a text column, number columns) or example:vader_*")
        if config.train.loss not in LOSSES:
            fail("train.loss", "'auto', 'mse', 'mae' or 'huber' for regression")
        super().validate(config, fail)

    # -- data -------------------------------------------------------------------------------
    def load_data(self, config: Config) -> Splits:
        from ftk.data.scored import load_scored_splits

        return load_scored_splits(config.data, config.resolve_path, seed=config.run.seed)

    # -- model ------------------------------------------------------------------------------
    def loss(self, config: Config):
        import keras

        return {
            "mse": keras.losses.MeanSquaredError,
            "mae": keras.losses.MeanAbsoluteError,
            "huber": keras.losses.Huber,
        }[LOSSES[config.train.loss]]()

    def metrics(self, config: Config) -> list:
        import keras

        return [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(
        self, examples: Examples, outputs: np.ndarray, label_names: list[str], calibration=None
    ) -> dict:
        from ftk.tasks.text_regression.metrics import largest_errors, regression_report

        report = regression_report(examples.labels, outputs, label_names)
        report["largest_errors"] = largest_errors(
            examples.inputs, examples.labels, outputs, label_names, 100
        )
        return report

    def epoch_metrics(self, model, dataset, examples: Examples, config: Config) -> dict:
        """`spearman` of the validation split (its mean over the targets)."""
        from ftk.tasks.text_regression.metrics import regression_report

        outputs = self.predict(model, dataset)
        names = [str(i) for i in range(outputs.shape[-1])]
        return {"spearman": regression_report(examples.labels, outputs, names)["spearman"]}

    # -- export -----------------------------------------------------------------------------
    def tensor_head(self, outputs) -> dict:
        from ftk.tasks.text_regression.export import values_head

        return values_head(outputs)

    def write_export(
        self, model, labels, config: Config, staging: Path, inputs, outputs, calibration=None
    ) -> None:
        """SavedModel (raw text in, the numbers out), the reference, ONNX (token ids in)."""
        import json

        from ftk.export.onnx import ONNX_DIR, ONNX_FILE
        from ftk.models.text import save_preprocessor
        from ftk.tasks.text_regression.export import write_onnx, write_savedmodel
        from ftk.tasks.text_regression.pairs import is_pairs
        from ftk.tasks.text_regression.verify import TOKENIZER_DIR, write_reference

        write_savedmodel(model, labels, staging, pairs=is_pairs(list(inputs)))
        write_reference(staging, list(inputs), outputs, config.export.tolerance)
        if config.export.onnx:
            metadata = {"targets": json.dumps(labels)}
            write_onnx(model, list(inputs), staging / ONNX_DIR / ONNX_FILE, metadata)
            save_preprocessor(model, staging / ONNX_DIR / TOKENIZER_DIR)

    def verify_export(self, version_dir: Path) -> dict:
        from ftk.tasks.text_regression.verify import verify_export

        return verify_export(version_dir)

    # -- report -----------------------------------------------------------------------------
    def report_sections(self, doc, run) -> None:
        from ftk.tasks.text_regression.report import add_sections

        add_sections(self, doc, run)

    def feature_cache_refusal(self, config: Config) -> str | None:
        return "the cached-feature search path serves classifiers only"
