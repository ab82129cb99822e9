"""SavedModel for TF Serving: raw strings in, probabilities, class ids and names out.

keras-hub's own `Task.export` leaves the preprocessor out, so ftk writes a
`keras.export.ExportArchive` whose `serving_default` runs tokenizer -> model -> softmax.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

TEXT_INPUT = "text"
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
        logits = model(preprocessor(text), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "class_name": tf.gather(names, class_id),
        }

    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "labels.txt").write_text("\n".join(label_names) + "\n", encoding="utf-8")


def load_signature(path: Path):
    """The `serving_default` function of a SavedModel, as TF Serving would call it."""
    return tf.saved_model.load(str(path)).signatures["serving_default"]
