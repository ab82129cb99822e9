"""Multi-label text classification: texts with any number of labels each (a CSV with a label
column such as `"Drama, Crime"` or one 0/1 column per label; Wikidata's film genres as the
example) -> a keras-hub text encoder with one sigmoid output per label (MiniLM-L6 offline, any
keras-hub text preset); binary cross-entropy (or focal) loss; one probability threshold per
label tuned for F1 on the validation split (or a fixed one); test micro/macro F1, per-label
scores and mean average precision; the SavedModel takes raw text and returns each label's
probability and the labels predicted. docs/templates/text-multilabel.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftk.config.choices import THRESHOLDS
from ftk.tasks.registry import register_task
from ftk.tasks.text_targets import TextTargetsTask

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

LOSSES = ("auto", "cross_entropy", "focal")


@register_task
class TextMultiLabel(TextTargetsTask):
    """Labels from text: the pooled features into one logit per label."""

    name = "text_multilabel"
    title = "Multi-label text classification"
    template = "text-multilabel"
    only_keys = (
        "model.sequence_length",
        "data.text_column",
        "data.decode_errors",
        "data.target_columns",
        "data.second_text_column",
        "data.label_separator",
        "train.focal_gamma",
        "train.thresholds",
        "train.threshold",
    )
    unused_keys = (
        "data.format",
        "data.conflicting_labels",
        "train.label_smoothing",
        "train.class_weight",
        "tune.cache_features",
        "export.onnx_int8",
    )
    defaults = {
        "data": {"path": "example:wikidata_films"},
        "train": {"epochs": 4, "learning_rate": 1e-4},
        "export": {"model_name": "text_tagger"},
    }
    objectives = {
        "val_map": "max",
        "val_auc": "max",
        "val_macro_f1": "max",
        "val_micro_f1": "max",
        "val_loss": "min",
    }
    interpolation_metric = "auc"
    epoch_metric_names = ("map", "macro_f1", "micro_f1")
    headline_metrics = ("micro_f1", "macro_f1", "map")
    metric_titles = {
        "micro_f1": "micro-F1",
        "macro_f1": "macro-F1",
        "map": "mean average precision",
        "auc": "ROC AUC",
        "exact_match": "exact match",
        "hamming_loss": "Hamming loss",
    }
    signature = {
        "inputs": {"text": "DT_STRING [-1]", "text_pair": "DT_STRING [-1] (pairs only)"},
        "outputs": {
            "probabilities": "DT_FLOAT [-1, num_labels] (the order of labels.txt)",
            "predicted": "DT_INT32 [-1, num_labels] (1 = at or above the label's threshold)",
        },
    }

    # -- config -----------------------------------------------------------------------------
    def validate(self, config: Config, fail) -> None:
        if not config.data.path:
            fail("data.path", "a CSV file (a text column, a label column) or example:*")
        if config.train.loss not in LOSSES:
            fail("train.loss", "'auto', 'cross_entropy' or 'focal' for multi-label")
        if config.train.thresholds not in THRESHOLDS:
            fail("train.thresholds", f"one of {', '.join(THRESHOLDS)}")
        if not 0.0 < config.train.threshold < 1.0:
            fail("train.threshold", "a probability strictly between 0 and 1")
        if not config.data.label_separator:
            fail("data.label_separator", "one or more characters (such as ',' or '|')")
        super().validate(config, fail)

    # -- data -------------------------------------------------------------------------------
    def load_data(self, config: Config) -> Splits:
        from ftk.data.multilabel import load_multilabel_splits

        return load_multilabel_splits(config.data, config.resolve_path, seed=config.run.seed)

    # -- model ------------------------------------------------------------------------------
    def loss(self, config: Config):
        import keras

        if config.train.loss == "focal":
            return keras.losses.BinaryFocalCrossentropy(
                gamma=config.train.focal_gamma, from_logits=True
            )
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def metrics(self, config: Config) -> list:
        import keras

        return [keras.metrics.AUC(multi_label=True, from_logits=True, name="auc")]

    # -- evaluation -------------------------------------------------------------------------
    def predict(self, model, dataset) -> np.ndarray:
        """Float32 probabilities `[n, labels]` (the sigmoid of the logits)."""
        import numpy as np

        logits = np.asarray(super().predict(model, dataset), np.float64)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def calibrate(self, model, splits: Splits, config: Config) -> dict:
        """`{"thresholds": [...]}`: per label, tuned for F1 on the validation split
        (`train.thresholds = "tuned"`), or `train.threshold` for all."""
        from ftk.tasks.text_multilabel.metrics import tune_thresholds

        labels, fixed = len(splits.label_names), config.train.threshold
        if config.train.thresholds == "fixed" or not len(splits.validation):
            return {"thresholds": [fixed] * labels, "tuned_on": None}
        outputs = self.predict(model, self.dataset(splits.validation, config, False))
        thresholds = tune_thresholds(splits.validation.labels, outputs, fixed)
        return {"thresholds": thresholds, "tuned_on": "validation"}

    def evaluate(self, examples, outputs, label_names, calibration=None) -> dict:
        from ftk.tasks.text_multilabel.metrics import multilabel_report, worst_examples

        thresholds = _thresholds(calibration, len(label_names))
        report = multilabel_report(examples.labels, outputs, label_names, thresholds)
        report["worst"] = worst_examples(
            examples.inputs, examples.labels, outputs, label_names, thresholds, 100
        )
        report["thresholds_tuned_on"] = (calibration or {}).get("tuned_on")
        return report

    def epoch_metrics(self, model, dataset, examples: Examples, config: Config) -> dict:
        """`map`, `macro_f1` and `micro_f1` (at `train.threshold`) of the validation split."""
        from ftk.tasks.text_multilabel.metrics import multilabel_report

        outputs = self.predict(model, dataset)
        names = [str(i) for i in range(outputs.shape[-1])]
        report = multilabel_report(
            examples.labels, outputs, names, [config.train.threshold] * len(names)
        )
        return {name: report[name] for name in self.epoch_metric_names}

    # -- export -----------------------------------------------------------------------------
    def tensor_head(self, outputs) -> dict:
        from ftk.tasks.text_multilabel.export import probabilities_head

        return probabilities_head(outputs)

    def write_export(
        self, model, labels, config: Config, staging: Path, inputs, outputs, calibration=None
    ) -> None:
        """SavedModel (raw text in; probabilities and the labels predicted out), the
        reference and the thresholds, ONNX (token ids in, probabilities out)."""
        from ftk.tasks.text_multilabel.export import write_export

        write_export(
            model,
            labels,
            config,
            staging,
            list(inputs),
            outputs,
            _thresholds(calibration, len(labels)),
        )

    def verify_export(self, version_dir: Path) -> dict:
        from ftk.tasks.text_multilabel.export import verify_export

        return verify_export(version_dir)

    # -- report -----------------------------------------------------------------------------
    def report_sections(self, doc, run) -> None:
        from ftk.tasks.text_multilabel.report import add_sections

        add_sections(self, doc, run)

    def feature_cache_refusal(self, config: Config) -> str | None:
        return "the cached-feature search path serves single-label classifiers only"


def _thresholds(calibration, labels: int) -> list[float]:
    """The run's thresholds; 0.5 for each label without a calibration (a cross-validation
    fold, or a run from before calibration existed)."""
    found = (calibration or {}).get("thresholds")
    return list(found) if found and len(found) == labels else [0.5] * labels
