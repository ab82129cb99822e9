"""Image classification: `<label>/<image>` folders, CSV or TFDS -> a keras-hub image
classifier; the SavedModel takes encoded image bytes (`serving_default`) or float pixels
(`serving_pixels`), the ONNX model float pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ftk.config.choices import ON_BAD_IMAGES
from ftk.tasks.classification import CLASSIFICATION_OUTPUTS, ClassificationTask
from ftk.tasks.registry import register_task

if TYPE_CHECKING:
    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

AUGMENT_LIMITS = (("rotation", 0.5), ("zoom", 0.9), ("contrast", 1.0))


def image_size(config: Config) -> tuple[int, int]:
    return (config.model.image_size, config.model.image_size)


@register_task
class ImageClassification(ClassificationTask):
    """One label per image; EfficientNet-Lite0 (or any keras-hub image backbone)."""

    name = "image_classification"
    cpu_compute = "convnet"
    title = "Image classification"
    template = "image-classification"
    unused_keys = (
        "export.preset",
        "export.openvino",
        "export.onnx_text",
    )  # text exports only, so far
    input_kind = "image"
    only_keys = (
        "model.image_size",
        "model.freeze_batchnorm",
        "train.focal_gamma",
        "data.image_column",
        "data.on_bad_images",
        "augment.flip",
        "augment.rotation",
        "augment.zoom",
        "augment.contrast",
    )
    defaults = {
        "model": {"preset": "efficientnet_lite0", "dropout": 0.2},
        "data": {"path": ""},
        "train": {"batch_size": 32, "learning_rate": 3e-4, "schedule": "one_cycle"},
        "export": {"model_name": "image_classifier"},
    }
    signature = {
        "inputs": {"image_bytes": "DT_STRING [-1] (JPEG, PNG, GIF or BMP)"},
        "outputs": CLASSIFICATION_OUTPUTS,
        "serving_pixels": {"pixels": "DT_FLOAT [-1, height, width, 3] RGB in [0, 255]"},
    }

    def validate(self, config: Config, fail) -> None:
        super().validate(config, fail)
        if not config.data.path:
            fail("data.path", "a folder of <label>/ sub-folders, a CSV file or a TFDS name")
        if not 32 <= config.model.image_size <= 1024:
            fail("model.image_size", "between 32 and 1024 (pixels, square)")
        if config.data.on_bad_images not in ON_BAD_IMAGES:
            fail(
                "data.on_bad_images",
                "'error' (stop before training, listing each bad file) or 'skip'",
            )
        for key, high in AUGMENT_LIMITS:
            if not 0.0 <= getattr(config.augment, key) <= high:
                fail(f"augment.{key}", f"in [0, {high}] (0 turns it off)")

    def load_data(self, config: Config) -> Splits:
        """Read `[data]` with ftk's image readers, checking every image first
        (`data.on_bad_images`)."""
        from ftk.data.images import load_image_splits

        return load_image_splits(config.data, config.resolve_path, seed=config.run.seed)

    def build_model(self, info, config: Config, label_names: list[str]):
        from ftk.models.image import build_image_classifier

        return build_image_classifier(info, config.model, len(label_names), image_size(config))

    def freezes_batchnorm(self, config: Config) -> bool:
        return config.model.freeze_batchnorm

    def batches(self, examples: Examples, config: Config, training: bool):
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

    def feature_cache_refusal(self, config: Config) -> str | None:
        from ftk.data.augment import augments

        if super().feature_cache_refusal(config):
            return super().feature_cache_refusal(config)
        if augments(config.augment):
            return (
                "training images are augmented (set augment.flip = false and augment.rotation, "
                "zoom and contrast to 0 to tune on cached features)"
            )
        return None

    def write_export(
        self, model, labels, config: Config, staging: Path, paths, probabilities, calibration=None
    ):
        """SavedModel (bytes and pixels signatures), the reference images, and ONNX (pixels
        in)."""
        from ftk.tasks.classification.onnx import write_image_onnx
        from ftk.tasks.classification.savedmodel import write_image_savedmodel
        from ftk.tasks.classification.verify import ONNX_DIR, ONNX_FILE, write_image_reference

        write_image_savedmodel(model, labels, image_size(config), staging)
        write_image_reference(staging, paths, probabilities, config.export.tolerance)
        if config.export.litert:
            from ftk.tasks.classification.litert import LITERT_DIR, LITERT_FILE, write_image_litert

            write_image_litert(model, image_size(config), staging / LITERT_DIR / LITERT_FILE)
        if config.export.onnx:
            write_image_onnx(
                model,
                image_size(config),
                staging / ONNX_DIR / ONNX_FILE,
                {"labels": json.dumps(labels)},
            )
