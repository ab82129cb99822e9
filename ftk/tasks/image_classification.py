"""Image classification: `<label>/<image>` folders, CSV or TFDS -> a keras-hub image
classifier; the SavedModel takes encoded image bytes (`serving_default`) or float pixels
(`serving_pixels`), the ONNX model float pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftk.config import Config
from ftk.data.splits import Examples, Splits
from ftk.tasks.base import CLASSIFICATION_OUTPUTS, Task


def image_size(config: Config) -> tuple[int, int]:
    return (config.model.image_size, config.model.image_size)


def load_data(config: Config) -> Splits:
    """Read `[data]` with ftk's image readers, checking every image first (`data.on_bad_images`)."""
    from ftk.data.images import load_image_splits

    return load_image_splits(config.data, config.resolve_path, seed=config.run.seed)


def build_model(info, config: Config, num_classes: int):
    from ftk.models.image import build_image_classifier

    return build_image_classifier(info, config.model, num_classes, image_size(config))


def dataset(examples: Examples, config: Config, training: bool):
    from ftk.data.images import image_dataset

    if training:
        return image_dataset(
            examples,
            image_size(config),
            config.train.batch_size,
            config.data.shuffle_buffer,
            config.run.seed,
            augment=config.augment,
        )
    return image_dataset(examples, image_size(config), config.train.batch_size)


def write_export(model, labels, config: Config, staging: Path, paths, probabilities) -> None:
    """SavedModel (bytes and pixels signatures), the reference images, and ONNX (pixels in)."""
    from ftk.export.onnx import write_image_onnx
    from ftk.export.savedmodel import write_image_savedmodel
    from ftk.export.verify import ONNX_DIR, ONNX_FILE, write_image_reference

    write_image_savedmodel(model, labels, image_size(config), staging)
    write_image_reference(staging, paths, probabilities, config.export.tolerance)
    if config.export.litert:
        from ftk.export.litert import LITERT_DIR, LITERT_FILE, write_image_litert

        write_image_litert(model, image_size(config), staging / LITERT_DIR / LITERT_FILE)
    if config.export.onnx:
        write_image_onnx(
            model,
            image_size(config),
            staging / ONNX_DIR / ONNX_FILE,
            {"labels": json.dumps(labels)},
        )


TASK = Task(
    name="image_classification",
    load_data=load_data,
    build_model=build_model,
    dataset=dataset,
    write_export=write_export,
    signature={
        "inputs": {"image_bytes": "DT_STRING [-1] (JPEG, PNG, GIF or BMP)"},
        "outputs": CLASSIFICATION_OUTPUTS,
        "serving_pixels": {"pixels": "DT_FLOAT [-1, height, width, 3] RGB in [0, 255]"},
    },
)
