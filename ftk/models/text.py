"""Build a keras-hub text classifier from a resolved preset.

ftk composes keras-hub's own pieces (`TextClassifier.from_preset`, the backbone's tokenizer
and preprocessor); it never re-implements a head or a tokenizer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import keras_hub

from ftk.config import ModelConfig
from ftk.models.loading import check_num_classes, preset_errors
from ftk.presets.resolve import PresetInfo, check_online

logger = logging.getLogger("ftk")


def build_text_classifier(
    info: PresetInfo, model_config: ModelConfig, num_classes: int
) -> keras_hub.models.TextClassifier:
    """A `keras_hub.models.TextClassifier` with the pretrained backbone of `info`.

    Example:

    >>> info = resolve_preset("minilm_l6")
    >>> classifier = build_text_classifier(info, ModelConfig(sequence_length=128), 5)
    """
    check_num_classes(num_classes)
    return text_classifier(info, model_config, num_classes)


def text_classifier(
    info: PresetInfo, model_config: ModelConfig, outputs: int
) -> keras_hub.models.TextClassifier:
    """keras-hub's `TextClassifier` on `info` with `outputs` linear outputs (logits, or a
    regression's numbers) on the pooled features, and its preprocessor."""
    check_online(info)
    with preset_errors(info, "a text classifier"):
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            info.location, sequence_length=model_config.sequence_length
        )
        if info.tokenizer_kwargs:
            tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(
                info.location, **info.tokenizer_kwargs
            )
            preprocessor = type(preprocessor)(
                tokenizer=tokenizer, sequence_length=model_config.sequence_length
            )
        classifier = keras_hub.models.TextClassifier.from_preset(
            info.location,
            num_classes=outputs,
            preprocessor=preprocessor,
            dropout=model_config.dropout,
        )
    if info.exact_gelu:
        use_exact_gelu(classifier.backbone)
    return classifier


def exact_gelu(x):
    """GELU with the exact error function: `0.5 * x * (1 + erf(x / sqrt(2)))`.

    Written with `erf` rather than TensorFlow's `erfc` form, which tf2onnx cannot convert.
    """
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))


def use_exact_gelu(backbone) -> int:
    """Switch keras-hub's tanh-approximate GELU to exact GELU in every feed-forward block.

    Hugging Face BERT checkpoints were trained with exact GELU; with the approximation the
    outputs drift by ~4e-3. Returns the number of layers changed.
    """
    changed = 0
    for layer in getattr(backbone, "transformer_layers", []):
        dense = getattr(layer, "_feedforward_intermediate_dense", None)
        if dense is not None:
            dense.activation = exact_gelu
            changed += 1
    return changed


def save_preprocessor(model, path: Path) -> None:
    """The preprocessor as a keras-hub preset, loadable without the backbone weights:
    `keras_hub.models.TextClassifierPreprocessor.from_preset(path)`."""
    from ftk.files import write_json

    model.preprocessor.save_to_preset(str(path))
    config = keras.saving.serialize_keras_object(model.backbone)
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    write_json(path / "config.json", config)
