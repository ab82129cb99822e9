"""Text classification: `<label>/*.txt` folders, CSV or TFDS -> a keras-hub text classifier;
the SavedModel takes raw strings (the tokenizer is in the graph), the ONNX model token ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftk.config import Config
from ftk.data.splits import Examples, Splits
from ftk.tasks.base import CLASSIFICATION_OUTPUTS, Task


def load_data(config: Config) -> Splits:
    """Read `[data]` with ftk's readers (CSV, `<label>/*.txt` folders, TFDS)."""
    from ftk.data.text import load_text_splits

    return load_text_splits(config.data, config.resolve_path, seed=config.run.seed)


def build_model(info, config: Config, num_classes: int):
    from ftk.models.text import build_text_classifier

    return build_text_classifier(info, config.model, num_classes)


def dataset(examples: Examples, config: Config, training: bool):
    from ftk.data.text import to_dataset

    if training:
        return to_dataset(
            examples, config.train.batch_size, config.data.shuffle_buffer, config.run.seed
        )
    return to_dataset(examples, config.train.batch_size)


def save_preprocessor(model, path: Path) -> None:
    """The preprocessor as a keras-hub preset, loadable without the backbone weights:
    `keras_hub.models.TextClassifierPreprocessor.from_preset(path)`."""
    import keras

    from ftk.runs import write_json

    model.preprocessor.save_to_preset(str(path))
    config = keras.saving.serialize_keras_object(model.backbone)
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    write_json(path / "config.json", config)


def write_export(model, labels, config: Config, staging: Path, texts, probabilities) -> None:
    """SavedModel (`text` in), the reference texts, and ONNX (token ids in) + its tokenizer."""
    import numpy as np
    import tensorflow as tf

    from ftk.export.onnx import write_text_onnx
    from ftk.export.savedmodel import write_text_savedmodel
    from ftk.export.verify import ONNX_DIR, ONNX_FILE, TOKENIZER_DIR, write_reference

    write_text_savedmodel(model, labels, staging)
    write_reference(staging, texts, probabilities, config.export.tolerance)
    if config.export.onnx:
        sample = {k: np.asarray(v) for k, v in model.preprocessor(tf.constant(texts[:2])).items()}
        write_text_onnx(
            model, sample, staging / ONNX_DIR / ONNX_FILE, {"labels": json.dumps(labels)}
        )
        save_preprocessor(model, staging / ONNX_DIR / TOKENIZER_DIR)


TASK = Task(
    name="text_classification",
    load_data=load_data,
    build_model=build_model,
    dataset=dataset,
    write_export=write_export,
    signature={
        "inputs": {"text": "DT_STRING [-1]"},
        "outputs": CLASSIFICATION_OUTPUTS,
    },
)
