"""Token classification (named entities): sentences with one BIO tag per word (CoNLL-style
columns, JSON lines, or the packaged WNUT-16 corpus) -> a per-piece tagger on a keras-hub text
encoder (MiniLM-L6 offline, any BERT-family preset); entity-level precision/recall/F1 by the
CoNLL rules (seqeval); the SavedModel takes raw sentences and returns their entities.
docs/templates/token-classification.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ftk.tasks.base import Task
from ftk.tasks.registry import register_task

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

logger = logging.getLogger("ftk")


@register_task
class TokenClassification(Task):
    """One tag per word; the loss and the prediction on each word's first piece."""

    name = "token_classification"
    cpu_compute = "text_encoder"
    title = "Token classification (named entities)"
    template = "token-classification"
    only_keys = ("model.sequence_length",)
    unused_keys = (
        "export.preset",
        "export.openvino",
        "export.onnx_text",
        "export.litert",
        "data.format",
        "data.text_column",
        "data.label_column",
        "data.labels",
        "data.conflicting_labels",
        "data.decode_errors",
        "train.label_smoothing",
        "train.class_weight",
        "train.loss",
        "recipe.cv_folds",
        "tune.cache_features",
        "export.onnx_int8",
    )
    defaults = {
        "data": {"path": "example:wnut16"},
        "train": {"epochs": 6, "learning_rate": 1e-4, "monitor": "val_entity_f1"},
        "export": {"model_name": "entity_tagger"},
    }
    objectives = {"val_entity_f1": "max", "val_loss": "min", "val_word_accuracy": "max"}
    interpolation_metric = "loss"
    epoch_metric_names = ("entity_f1",)
    headline_metrics = ("entity_f1", "entity_precision", "entity_recall")
    metric_titles = {
        "entity_f1": "entity F1",
        "entity_precision": "entity precision",
        "entity_recall": "entity recall",
        "entity_macro_f1": "entity macro-F1 (over types)",
        "word_accuracy": "word accuracy",
    }
    signature = {
        "inputs": {"text": "DT_STRING [-1]"},
        "outputs": {
            "entity_text": "DT_STRING [-1, -1]",
            "entity_type": "DT_STRING [-1, -1]",
            "entity_start": "DT_INT32 [-1, -1] (character offset)",
            "entity_end": "DT_INT32 [-1, -1] (character offset, exclusive)",
            "entity_score": "DT_FLOAT [-1, -1]",
            "num_entities": "DT_INT32 [-1]",
        },
    }

    # -- config -----------------------------------------------------------------------------
    def validate(self, config: Config, fail) -> None:
        if not config.data.path:
            fail("data.path", "a CoNLL-style file, a .jsonl file, or example:wnut16")
        if not 8 <= config.model.sequence_length <= 4096:
            fail("model.sequence_length", "between 8 and 4096")

    # -- data -------------------------------------------------------------------------------
    def load_data(self, config: Config) -> Splits:
        from ftk.data.tagged import load_tagged_splits

        return load_tagged_splits(config.data, config.resolve_path, seed=config.run.seed)

    def tokenizer(self, config: Config):
        from ftk.presets.resolve import resolve_preset
        from ftk.tasks.token_classification.model import build_tokenizer

        return build_tokenizer(resolve_preset(config.model.preset, config.base_dir))

    def encoding(self, examples, config: Config, label_names: list[str]):
        """The split encoded for the model (kept on `examples`: evaluation reads it)."""
        from ftk.tasks.token_classification.encode import align

        if examples.encoding is None:
            ids = {name: i for i, name in enumerate(label_names)}
            examples.encoding = align(
                examples, ids, self.tokenizer(config), config.model.sequence_length
            )
            if examples.encoding.truncated:
                logger.warning(
                    "%d words fall past model.sequence_length=%d and are not predicted "
                    "(counted as 'O')",
                    examples.encoding.truncated,
                    config.model.sequence_length,
                )
        return examples.encoding

    def dataset(self, examples: Examples, config: Config, training: bool):
        import tensorflow as tf

        e = self.encoding(examples, config, examples.label_names)
        ds = tf.data.Dataset.from_tensor_slices((e.inputs, e.targets, e.weights))
        from ftk.data.batches import batched

        return batched(ds, len(examples), config, training)

    # -- model ------------------------------------------------------------------------------
    def build_model(self, info, config: Config, label_names: list[str]):
        import warnings

        from ftk.tasks.token_classification.model import build_token_classifier

        # The backbone's pooler (a [CLS] summary) is not used by a tagger: no gradient is right.
        warnings.filterwarnings("ignore", message=r"Gradients do not exist for variables \['pooled")

        return build_token_classifier(info, config.model, len(label_names))

    def prepare_model(self, model, config: Config) -> None:
        from ftk.models.head import seed_head

        seed_head(model, config.run.seed)

    def loss(self, config: Config):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        )

    def metrics(self, config: Config) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="word_accuracy")]

    # -- evaluation -------------------------------------------------------------------------
    def predict(self, model, dataset) -> np.ndarray:
        """Float32 per-piece tag probabilities `[n, sequence_length, tags]`."""
        import keras
        import numpy as np

        logits = model.predict(dataset.map(lambda x, y, w: x), verbose=0)
        probabilities = keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)
        return np.asarray(keras.ops.convert_to_numpy(probabilities), np.float32)

    def evaluate(
        self, examples: Examples, outputs: np.ndarray, label_names: list[str], calibration=None
    ) -> dict:
        from ftk.tasks.token_classification.entities import (
            entity_metrics,
            gold_predictions,
            wrong_spans,
        )

        if examples.encoding is None:
            raise RuntimeError("evaluate() needs the examples encoded by dataset() first")
        positions = examples.encoding.gold_positions
        predicted = gold_predictions(outputs, positions, label_names)
        return {
            **entity_metrics(examples.tags, predicted),
            "wrong_spans": wrong_spans(
                examples.tokens, examples.tags, outputs, positions, label_names
            ),
        }

    def epoch_metrics(self, model, dataset, examples: Examples, config: Config) -> dict:
        """`entity_f1` of the validation sentences (seqeval, as the test metrics)."""
        from ftk.tasks.token_classification.entities import entity_metrics, gold_predictions

        outputs = self.predict(model, dataset)
        encoding = self.encoding(examples, config, examples.label_names)
        predicted = gold_predictions(outputs, encoding.gold_positions, examples.label_names)
        return {"entity_f1": entity_metrics(examples.tags, predicted)["entity_f1"]}

    # -- export -----------------------------------------------------------------------------
    def write_export(
        self, model, labels, config: Config, staging: Path, inputs, outputs, calibration=None
    ) -> None:
        """SavedModel (raw sentences in, entities out), the reference, ONNX (token ids in)."""
        import json

        from ftk.export.onnx import ONNX_DIR, ONNX_FILE
        from ftk.tasks.token_classification.export import write_onnx, write_savedmodel
        from ftk.tasks.token_classification.verify import read_reference, write_reference

        tokenizer = self.tokenizer(config)
        length = config.model.sequence_length
        write_savedmodel(model, tokenizer, labels, length, staging)
        write_reference(
            staging, tokenizer, list(inputs), outputs, labels, length, config.export.tolerance
        )
        if config.export.onnx:
            _, arrays = read_reference(staging)
            write_onnx(
                model, arrays, staging / ONNX_DIR / ONNX_FILE, {"labels": json.dumps(labels)}
            )
            tokenizer.save_to_preset(str(staging / ONNX_DIR / "tokenizer"))

    def serving_inputs(self, version_dir: Path) -> dict:
        import numpy as np

        from ftk.tasks.token_classification.verify import read_reference

        texts = read_reference(version_dir)[0]["texts"]
        return {"text": np.asarray([t.encode() for t in texts], dtype=object)}

    def verify_export(self, version_dir: Path) -> dict:
        from ftk.tasks.token_classification.verify import verify_export

        return verify_export(version_dir)

    def verification_summary(self, export: dict) -> str:
        return (
            f"the same {export['entities']} entities as Keras in {export['examples']} sentences, "
            f"scores within {export['savedmodel_max_abs_diff']:.1e}"
        )

    # -- report -----------------------------------------------------------------------------
    def report_sections(self, doc, run) -> None:
        from ftk.tasks.token_classification.report import add_sections

        add_sections(self, doc, run)

    def feature_cache_refusal(self, config: Config) -> str | None:
        return "a token classifier's head reads every token (no pooled-feature cache)"
