"""Optional LiteRT (TensorFlow Lite) export of an image classifier (`export.litert`):
`litert/model.tflite`, float pixels in (as `serving_pixels`), probabilities out, checked in
TensorFlow's LiteRT interpreter against the Keras probabilities like the other exports
(`ftk.tasks.classification.verify.verify_export`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ftk.tasks.classification.savedmodel import probabilities_of

LITERT_DIR = "litert"
LITERT_FILE = "model.tflite"


def write_image_litert(model, image_size: tuple[int, int], path: Path) -> None:
    """Convert the tensor model (`pixels` float32 `[batch, h, w, 3]`, RGB 0..255, the backbone's
    normalisation inside) to a `.tflite` flatbuffer at `path`."""

    @tf.function(input_signature=[tf.TensorSpec([None, *image_size, 3], tf.float32, "pixels")])
    def forward(pixels):
        return {"probabilities": probabilities_of(model(model.preprocessor(pixels)))}

    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    # Freeze the weights into the graph first. Converted with the model as its trackable object
    # alone, TF 2.21 writes a 27 KB file whose variables are never initialised: it ran right in
    # the exporting process and returned NaN everywhere else (measured).
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())


def litert_probabilities(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Run the `.tflite` model in TensorFlow's interpreter on a batch of pixels."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    (source,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(source["index"], list(pixels.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], pixels.astype(np.float32))
    interpreter.invoke()
    (output,) = interpreter.get_output_details()
    return interpreter.get_tensor(output["index"])
