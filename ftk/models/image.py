"""Build a keras-hub image classifier from a resolved preset, at a chosen input size.

The preset's own image converter (resizing and the backbone's normalisation) is kept; only its
`image_size` changes, so a backbone pretrained at 224 px can be fine-tuned at, say, 96 px.
"""

from __future__ import annotations

import keras_hub

from ftk.config import ModelConfig
from ftk.errors import PresetError
from ftk.models.loading import check_num_classes, preset_errors
from ftk.presets.resolve import PresetInfo, check_online


def build_image_classifier(
    info: PresetInfo, model_config: ModelConfig, num_classes: int, image_size: tuple[int, int]
) -> keras_hub.models.ImageClassifier:
    """A `keras_hub.models.ImageClassifier` with the pretrained backbone of `info`.

    Example:

    >>> info = resolve_preset("efficientnet_lite0")
    >>> classifier = build_image_classifier(info, ModelConfig(), 10, (96, 96))
    """
    check_num_classes(num_classes)
    height, width = image_size
    if not (16 <= height <= 1024 and 16 <= width <= 1024):
        raise PresetError(f"`image_size` must be between 16 and 1024. Received: {image_size}")
    check_online(info)
    with preset_errors(info, "an image classifier"):
        preprocessor = keras_hub.models.ImageClassifierPreprocessor.from_preset(info.location)
        converter = preprocessor.image_converter
        resized = type(converter).from_config(
            {**converter.get_config(), "image_size": (height, width)}
        )
        preprocessor = type(preprocessor)(image_converter=resized)
        classifier = keras_hub.models.ImageClassifier.from_preset(
            info.location,
            num_classes=num_classes,
            preprocessor=preprocessor,
            dropout=model_config.dropout,
        )
    return classifier
