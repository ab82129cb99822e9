"""Text classification: `<label>/*.txt` folders, CSV or TFDS -> a keras-hub text classifier;
the SavedModel takes raw strings (the tokenizer is in the graph), the ONNX model token ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ftk.config.choices import DECODE_ERRORS
from ftk.tasks.classification import CLASSIFICATION_OUTPUTS, ClassificationTask
from ftk.tasks.registry import register_task

if TYPE_CHECKING:
    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits


@register_task
class TextClassification(ClassificationTask):
    """One label per text; MiniLM-L6 (or any keras-hub text backbone) with a softmax head."""

    name = "text_classification"
    cpu_compute = "text_encoder"
    publishes_preset = True
    text_litert = True
    title = "Text classification"
    template = "text-classification"
    only_keys = (
        "model.sequence_length",
        "data.text_column",
        "data.decode_errors",
        "train.focal_gamma",
    )
    signature = {
        "inputs": {"text": "DT_STRING [-1]"},
        "outputs": CLASSIFICATION_OUTPUTS,
    }

    def validate(self, config: Config, fail) -> None:
        super().validate(config, fail)
        if not config.data.path:
            fail(
                "data.path",
                "a folder of <label>/ sub-folders, a CSV file or a TFDS name, or example:bbc_news",
            )
        if not 8 <= config.model.sequence_length <= 4096:
            fail("model.sequence_length", "between 8 and 4096")
        if config.data.decode_errors not in DECODE_ERRORS:
            fail("data.decode_errors", "'strict' (stop at undecodable bytes) or 'replace'")

    def load_data(self, config: Config) -> Splits:
        """Read `[data]` with ftk's readers (CSV, `<label>/*.txt` folders, TFDS)."""
        from ftk.data.text import load_text_splits

        return load_text_splits(config.data, config.resolve_path, seed=config.run.seed)

    def build_model(self, info, config: Config, label_names: list[str]):
        from ftk.models.text import build_text_classifier

        return build_text_classifier(info, config.model, len(label_names))

    def batches(self, examples: Examples, config: Config, training: bool):
        from ftk.data.text import to_dataset

        if training:
            return to_dataset(
                examples, config.train.batch_size, config.data.shuffle_buffer, config.run.seed
            )
        return to_dataset(examples, config.train.batch_size)

    def preset_dataset(self, inputs: list):
        from ftk.tasks.text_regression.pairs import raw_batches

        return raw_batches(inputs)

    def tensor_head(self, outputs) -> dict:
        from ftk.tasks.classification.savedmodel import probabilities_of

        return {"probabilities": probabilities_of(outputs)}

    def write_export(
        self, model, labels, config: Config, staging: Path, texts, probabilities, calibration=None
    ) -> None:
        """SavedModel (`text` in), the reference texts, and ONNX (token ids in) + its tokenizer."""
        import numpy as np
        import tensorflow as tf

        from ftk.models.text import save_preprocessor
        from ftk.tasks.classification.onnx import write_text_onnx
        from ftk.tasks.classification.savedmodel import write_text_savedmodel
        from ftk.tasks.classification.verify import (
            ONNX_DIR,
            ONNX_FILE,
            TOKENIZER_DIR,
            write_reference,
        )

        write_text_savedmodel(model, labels, staging)
        write_reference(staging, texts, probabilities, config.export.tolerance)
        if config.export.onnx:
            sample = {
                k: np.asarray(v) for k, v in model.preprocessor(tf.constant(texts[:2])).items()
            }
            write_text_onnx(
                model, sample, staging / ONNX_DIR / ONNX_FILE, {"labels": json.dumps(labels)}
            )
            save_preprocessor(model, staging / ONNX_DIR / TOKENIZER_DIR)
