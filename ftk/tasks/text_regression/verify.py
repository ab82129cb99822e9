"""Check a text regressor's export against the Keras model it came from.

At export time the Keras model's numbers on held-out texts or text pairs (from the training
backend, `verify_reference.json` of the run) are recorded in `assets.extra/ftk_verify.json`.
`verify_export` reloads the SavedModel in TensorFlow, sends the raw texts (the batch, then the
first alone) and requires the same numbers within `export.tolerance`; the ONNX model in
onnxruntime, fed the token ids of the export's own saved tokenizer, must give them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftk.errors import VerificationError
from ftk.export.onnx import ONNX_DIR, ONNX_FILE
from ftk.files import read_json, write_json
from ftk.tasks.text_regression.pairs import serving_arrays, text_tensors

VERIFY_FILE = "ftk_verify.json"
TOKENIZER_DIR = "preprocessor"


def write_reference(staging: Path, texts: list, values: np.ndarray, tolerance: float):
    extra = staging / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    write_json(
        extra / VERIFY_FILE,
        {
            "texts": list(texts),
            "values": np.asarray(values, np.float64).tolist(),
            "tolerance": tolerance,
        },
    )


def read_reference(version_dir: Path) -> dict:
    path = Path(version_dir) / "assets.extra" / VERIFY_FILE
    if not path.is_file():
        raise VerificationError(f"{path} is missing: this directory is not an ftk export.")
    return read_json(path)


def compare(name: str, got, expected: np.ndarray, tolerance: float) -> float:
    got = np.asarray(got, np.float32)
    if got.shape != expected.shape:
        raise VerificationError(f"{name} returned shape {got.shape}, Keras {expected.shape}.")
    diff = float(np.abs(got - expected).max()) if got.size else 0.0
    if not diff <= tolerance:
        raise VerificationError(
            f"{name} differs from Keras by up to {diff:.3g} (> export.tolerance={tolerance})."
        )
    return diff


def verify_savedmodel(
    version_dir: Path, texts: list, expected, tolerance: float, output: str = "values", check=None
) -> float:
    """`output` against `expected`; `check`, if given, is called with every output of the
    batch (`{name: array}`) for the task's own checks of the other outputs."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the graph's tokenizer ops)

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    arrays = {k: tf.constant(v) for k, v in serving_arrays(texts).items()}
    outputs = {k: v.numpy() for k, v in serve(**arrays).items()}
    if check is not None:
        check(outputs)
    batch = outputs[output]
    one = serve(**{k: v[:1] for k, v in arrays.items()})[output].numpy()
    return max(
        compare("The SavedModel", batch, expected, tolerance),
        compare("The SavedModel (batch 1)", one, expected[:1], tolerance),
    )


def verify_onnx(
    version_dir: Path, texts: list, expected, tolerance: float, output: str = "values"
) -> float:
    import keras_hub
    import onnxruntime as ort

    folder = Path(version_dir) / ONNX_DIR
    try:
        session = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise VerificationError(f"onnxruntime cannot load {folder / ONNX_FILE}: {e}") from None
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(folder / TOKENIZER_DIR)
    )
    feeds = {k: np.asarray(v) for k, v in preprocessor(x=text_tensors(texts)).items()}
    (batch,) = session.run([output], feeds)
    (one,) = session.run([output], {k: v[:1] for k, v in feeds.items()})
    return max(
        compare("ONNX", batch, expected, tolerance),
        compare("ONNX (batch 1)", one, expected[:1], tolerance),
    )


def verify_export(version_dir: Path, output: str = "values", check=None) -> dict:
    """Both artifacts' `output` against the recorded Keras values (`check`: see
    `verify_savedmodel`)."""
    reference = read_reference(version_dir)
    texts, tolerance = reference["texts"], reference["tolerance"]
    expected = np.asarray(reference["values"], np.float32)
    result = {
        "savedmodel_max_abs_diff": verify_savedmodel(
            version_dir, texts, expected, tolerance, output, check
        ),
        "examples": len(texts),
    }
    if (Path(version_dir) / ONNX_DIR / ONNX_FILE).is_file():
        result["onnx_max_abs_diff"] = verify_onnx(version_dir, texts, expected, tolerance, output)
    return result
