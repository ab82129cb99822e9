"""Check an export against the Keras model it came from, in its own runtime.

The Keras model's probabilities on held-out examples are recorded at export time in
`assets.extra/ftk_verify.json`; `verify_export` reloads the SavedModel in TensorFlow and the
ONNX model in onnxruntime, runs the same inputs (whole batch, then one example at a time) and
fails with the largest absolute difference when it exceeds the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ftk.errors import VerificationError

VERIFY_FILE = "ftk_verify.json"
ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
TOKENIZER_DIR = "preprocessor"


def write_reference(
    version_dir: Path, texts: list[str], probabilities: np.ndarray, tolerance: float
) -> None:
    """Record the Keras model's outputs that the export must reproduce."""
    extra = version_dir / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    payload = {
        "texts": list(texts),
        "probabilities": np.asarray(probabilities, dtype=np.float64).tolist(),
        "tolerance": tolerance,
    }
    (extra / VERIFY_FILE).write_text(json.dumps(payload), encoding="utf-8")


def read_reference(version_dir: Path) -> dict:
    path = version_dir / "assets.extra" / VERIFY_FILE
    if not path.is_file():
        raise VerificationError(f"{path} is missing: this directory is not an ftk export.")
    return json.loads(path.read_text(encoding="utf-8"))


def _check(name: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> float:
    if got.shape != expected.shape:
        raise VerificationError(
            f"{name} returned shape {got.shape}, the Keras model {expected.shape}."
        )
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not diff <= tolerance:
        raise VerificationError(
            f"{name} does not match the Keras model: max abs difference {diff:.3g} > "
            f"tolerance {tolerance:g}."
        )
    return diff


def verify_savedmodel(
    version_dir: Path,
    texts: list[str],
    expected: np.ndarray,
    tolerance: float,
    label_names: list[str] | None = None,
) -> float:
    """Max abs difference of the SavedModel's `serving_default` vs `expected` probabilities."""
    import tensorflow as tf

    from ftk.export.savedmodel import load_signature

    serve = load_signature(version_dir)
    out = serve(text=tf.constant(texts))
    diff = _check("SavedModel", out["probabilities"].numpy(), expected, tolerance)
    one = serve(text=tf.constant(texts[:1]))
    diff = max(
        diff, _check("SavedModel (batch 1)", one["probabilities"].numpy(), expected[:1], tolerance)
    )
    ids = out["class_id"].numpy()
    if not np.array_equal(ids, out["probabilities"].numpy().argmax(-1)):
        raise VerificationError("SavedModel class_id is not the argmax of its probabilities.")
    if label_names is not None:
        names = [n.decode("utf-8") for n in out["class_name"].numpy()]
        if names != [label_names[i] for i in ids]:
            raise VerificationError("SavedModel class_name does not match the label map.")
    return diff


def verify_onnx(
    onnx_path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray, tolerance: float
) -> float:
    """Max abs difference of the ONNX model in onnxruntime vs `expected` probabilities."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise VerificationError(f"onnxruntime cannot load {onnx_path}: {e}") from None
    names = [i.name for i in session.get_inputs()]
    if sorted(names) != sorted(feeds):
        raise VerificationError(f"ONNX inputs are {names}, expected {sorted(feeds)}.")
    (got,) = session.run(["probabilities"], feeds)
    diff = _check("ONNX", got, expected, tolerance)
    (one,) = session.run(["probabilities"], {k: v[:1] for k, v in feeds.items()})
    return max(diff, _check("ONNX (batch 1)", one, expected[:1], tolerance))


def verify_export(version_dir: Path) -> dict[str, float]:
    """Re-verify a published (or staged) export against its recorded Keras outputs."""
    import keras_hub

    reference = read_reference(version_dir)
    texts = reference["texts"]
    expected = np.asarray(reference["probabilities"], dtype=np.float32)
    tolerance = float(reference["tolerance"])
    labels_file = version_dir / "assets.extra" / "labels.txt"
    labels = labels_file.read_text(encoding="utf-8").splitlines() if labels_file.exists() else None
    result = {
        "savedmodel_max_abs_diff": verify_savedmodel(
            version_dir, texts, expected, tolerance, labels
        )
    }
    onnx_path = version_dir / ONNX_DIR / ONNX_FILE
    if onnx_path.exists():
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            str(version_dir / ONNX_DIR / TOKENIZER_DIR)
        )
        feeds = {k: np.asarray(v) for k, v in preprocessor(texts).items()}
        result["onnx_max_abs_diff"] = verify_onnx(onnx_path, feeds, expected, tolerance)
    return result
