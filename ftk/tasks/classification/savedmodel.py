"""SavedModels for TF Serving: raw text or encoded image bytes in; probabilities, class ids
and class names out.

keras-hub's own `Task.export` leaves the preprocessor out, so ftk writes a
`keras.export.ExportArchive` whose `serving_default` runs preprocessing -> model -> softmax.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

TEXT_INPUT = "text"
IMAGE_INPUT = "image_bytes"
PIXELS_INPUT = "pixels"
OUTPUTS = ("probabilities", "class_id", "class_name")


def write_text_savedmodel(model, label_names: list[str], path: Path) -> None:
    """Write `model` (a keras-hub TextClassifier with its preprocessor) to `path`.

    Signature `serving_default`: `text` (string, [batch]) ->
    `probabilities` (float32, [batch, classes]), `class_id` (int32, [batch]),
    `class_name` (string, [batch]).
    """
    preprocessor = model.preprocessor
    preprocessor(tf.constant(["build"]))  # builds the tokenizer's lookup tables
    names = tf.constant(label_names)
    archive = keras.export.ExportArchive()
    # Track only the preprocessor (for its lookup tables): add_endpoint tracks the variables the
    # endpoint uses, and tracking the model as well stores every weight twice (Keras 3.15).
    archive.track(preprocessor)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    def serve(text):
        return classification_outputs(model(preprocessor(text), training=False), names)

    archive.add_endpoint("serving_default", serve)
    _write(archive, label_names, path)


def probabilities_of(logits):
    """Float32 softmax probabilities (float32 even when the model computes in bfloat16)."""
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)


def classification_outputs(logits, names) -> dict:
    """The served outputs: softmax probabilities, the argmax id and its label name."""
    probabilities = probabilities_of(logits)
    class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {
        "probabilities": probabilities,
        "class_id": class_id,
        "class_name": tf.gather(names, class_id),
    }


def _write(archive, label_names: list[str], path: Path) -> None:
    archive.write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "labels.txt").write_text("\n".join(label_names) + "\n", encoding="utf-8")


def decode_for_serving(data, image_size: tuple[int, int]):
    """Encoded image bytes -> float32 RGB `[h, w, 3]` in [0, 255], in pure graph ops.

    The same decoder and resize as the training pipeline (`ftk.data.images`), without its
    Pillow fallback (a served graph holds no Python): JPEG, PNG and GIF decode exactly as in
    training; see `ftk.data.images.decode_image_bytes` for the formats TensorFlow gets wrong.
    """
    from ftk.data.images import decode_image_bytes, resize_image

    image = resize_image(decode_image_bytes(data, pillow_fallback=False), image_size)
    return tf.ensure_shape(image, [*image_size, 3])


def write_image_savedmodel(
    model, label_names: list[str], image_size: tuple[int, int], path: Path
) -> None:
    """Write `model` (a keras-hub ImageClassifier with its preprocessor) to `path`.

    `serving_default`: `image_bytes` (string, [batch], encoded images) -> `probabilities`,
    `class_id`, `class_name`; decoding and resizing happen in the graph. `serving_pixels`:
    `pixels` (float32, [batch, h, w, 3], RGB in [0, 255]) -> the same outputs.
    """
    preprocessor = model.preprocessor
    names = tf.constant(label_names)
    height, width = image_size
    archive = keras.export.ExportArchive()

    def predict(pixels):
        return classification_outputs(model(preprocessor(pixels), training=False), names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_INPUT)])
    def serve(image_bytes):
        pixels = tf.map_fn(
            lambda data: decode_for_serving(data, (height, width)),
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )
        return predict(pixels)

    @tf.function(
        input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name=PIXELS_INPUT)]
    )
    def serve_pixels(pixels):
        return predict(pixels)

    archive.add_endpoint("serving_default", serve)
    archive.add_endpoint("serving_pixels", serve_pixels)
    _write(archive, label_names, path)


def load_signature(path: Path):
    """The `serving_default` function of a SavedModel, as TF Serving would call it."""
    return tf.saved_model.load(str(path)).signatures["serving_default"]
