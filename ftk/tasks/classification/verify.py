"""Check a classifier's export against the Keras model it came from, in its own runtime.

The Keras model's probabilities on held-out examples are recorded at export time in
`assets.extra/ftk_verify.json` (with the texts, or with the image files copied into
`assets.extra/ftk_verify/`); `verify_export` reloads the SavedModel in TensorFlow and the
ONNX model in onnxruntime, runs the same inputs (whole batch, then one example at a time) and
fails with the largest absolute difference when it exceeds the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ftk.errors import VerificationError
from ftk.export import serving
from ftk.export.onnx import ONNX_DIR, ONNX_FILE
from ftk.progress import progress

VERIFY_FILE = "ftk_verify.json"
VERIFY_IMAGES_DIR = "ftk_verify"
# The verification images kept in an export, at most (user photos can be megabytes each).
VERIFY_IMAGES_MAX_BYTES = 16 * 2**20
TOKENIZER_DIR = "preprocessor"


def write_reference(
    version_dir: Path, texts: list[str], probabilities: np.ndarray, tolerance: float
) -> None:
    """Record the Keras model's outputs on `texts` that the export must reproduce."""
    _write_payload(version_dir, {"texts": list(texts)}, probabilities, tolerance)


def write_image_reference(
    version_dir: Path,
    paths: list[str],
    probabilities: np.ndarray,
    tolerance: float,
    max_bytes: int = VERIFY_IMAGES_MAX_BYTES,
) -> int:
    """Copy the images (JPEG, PNG or GIF, which the served graph decodes exactly as training
    does) into the export with the Keras model's outputs on them. Returns how many were kept:
    images in other formats, and those past `max_bytes` in all, are left out (at least one
    is always kept)."""
    from ftk.data.images import decoded_by_tf_as_in_training

    folder = version_dir / "assets.extra" / VERIFY_IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names, rows, total = [], [], 0
    for i, path in enumerate(paths):
        data = Path(path).read_bytes()
        if not decoded_by_tf_as_in_training(data):
            continue
        if names and total + len(data) > max_bytes:
            break
        name = f"{len(names):05d}{Path(path).suffix.lower() or '.img'}"
        (folder / name).write_bytes(data)
        names.append(name)
        rows.append(i)
        total += len(data)
    if not names:
        raise VerificationError(
            "None of the test images is a JPEG, PNG or GIF file, so the exported graph cannot be "
            "checked on image bytes; add some to the test split."
        )
    kept = np.asarray(probabilities)[rows]
    _write_payload(version_dir, {"images": names}, kept, tolerance)
    return len(names)


def _write_payload(version_dir: Path, inputs: dict, probabilities, tolerance: float) -> None:
    extra = version_dir / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    payload = {
        **inputs,
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


def _check_outputs(name: str, outputs: dict, expected, tolerance: float, labels) -> float:
    """Probabilities within `tolerance` of `expected`; `class_id` (when given) their argmax and
    `class_name` the label map's names for it. Returns the max abs difference."""
    probabilities = np.asarray(outputs["probabilities"], dtype=np.float32)
    diff = _check(name, probabilities, expected, tolerance)
    ids = probabilities.argmax(-1)
    if "class_id" in outputs and not np.array_equal(np.asarray(outputs["class_id"]), ids):
        raise VerificationError(f"{name} class_id is not the argmax of its probabilities.")
    names = [n.decode("utf-8") if isinstance(n, bytes) else n for n in outputs["class_name"]]
    if labels is not None and names != [labels[i] for i in ids]:
        raise VerificationError(f"{name} class_name does not match the label map.")
    return diff


def verify_savedmodel(
    loaded,
    inputs: dict,
    expected: np.ndarray,
    tolerance: float,
    label_names: list[str] | None = None,
    signature: str = "serving_default",
) -> float:
    """Max abs difference of a loaded SavedModel signature's probabilities vs `expected`.

    `inputs` are the signature's keyword arguments (like `{"text": tf.constant([...])}`); the
    whole batch and then the first example alone are checked, and `class_id` / `class_name`
    must agree with the probabilities and the label map.
    """
    serve = loaded.signatures[signature]
    name = "SavedModel" if signature == "serving_default" else f"SavedModel {signature}"
    outputs = {k: v.numpy() for k, v in serve(**inputs).items()}
    diff = _check_outputs(name, outputs, expected, tolerance, label_names)
    one = {k: v.numpy() for k, v in serve(**{k: v[:1] for k, v in inputs.items()}).items()}
    return max(diff, _check_outputs(f"{name} (batch 1)", one, expected[:1], tolerance, label_names))


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


def reference_inputs(version_dir: Path, reference: dict | None = None) -> dict[str, np.ndarray]:
    """The recorded verification inputs as `serving_default` takes them: `{"text": ...}` or
    `{"image_bytes": ...}` (object arrays of bytes)."""
    reference = reference or read_reference(version_dir)
    if "images" in reference:
        paths = _reference_images(version_dir, reference)
        data = [Path(p).read_bytes() for p in progress(paths, desc="Reading images", unit="image")]
        return {"image_bytes": np.array(data, dtype=object)}
    return {"text": np.array([t.encode("utf-8") for t in reference["texts"]], dtype=object)}


def _reference_images(version_dir: Path, reference: dict) -> list[str]:
    folder = version_dir / "assets.extra" / VERIFY_IMAGES_DIR
    return [str(folder / name) for name in reference["images"]]


def pixels_size(loaded) -> tuple[int, int]:
    """`(height, width)` of an image export's `serving_pixels` input."""
    shape = loaded.signatures["serving_pixels"].structured_input_signature[1]["pixels"].shape
    return (shape[1], shape[2])


def onnx_feeds(
    version_dir: Path, inputs: list[str], image_size: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """The tensor model's inputs: texts tokenised by the export's saved preprocessor, or (with
    `image_size`) image paths decoded and resized by the training pipeline."""
    if image_size is None:
        import keras_hub

        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            str(version_dir / ONNX_DIR / TOKENIZER_DIR)
        )
        return {k: np.asarray(v) for k, v in preprocessor(inputs).items()}
    import tensorflow as tf

    from ftk.data.images import decode_and_resize

    paths = progress(inputs, desc="Decoding images", unit="image")
    pixels = [decode_and_resize(tf.constant(p), image_size).numpy() for p in paths]
    return {"pixels": np.stack(pixels)}


def verify_export(version_dir: Path) -> dict[str, float]:
    """Re-verify a published (or staged) export against its recorded Keras outputs: the
    SavedModel's signatures, ONNX (and LiteRT), and the TF Serving contract
    (`verify_serving`). The SavedModel is loaded once."""
    import tensorflow as tf

    version_dir = Path(version_dir)
    reference = read_reference(version_dir)
    expected = np.asarray(reference["probabilities"], dtype=np.float32)
    tolerance = float(reference["tolerance"])
    labels_file = version_dir / "assets.extra" / "labels.txt"
    labels = labels_file.read_text(encoding="utf-8").splitlines() if labels_file.exists() else None
    check = {"expected": expected, "tolerance": tolerance}
    if "texts" in reference:
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)
    onnx_path = version_dir / ONNX_DIR / ONNX_FILE
    litert_path = version_dir / "litert" / "model.tflite"
    images = "images" in reference
    # SavedModel, [pixels signature, [LiteRT]], [ONNX], TF Serving contract
    total = 2 + onnx_path.exists() + (1 + litert_path.exists() if images else 0)
    with progress(total=total, desc="Verifying export", unit="check") as steps:
        loaded = tf.saved_model.load(str(version_dir))
        served = reference_inputs(version_dir, reference)
        tensors = {k: tf.constant(v) for k, v in served.items()}
        result = {
            "savedmodel_max_abs_diff": verify_savedmodel(
                loaded, tensors, label_names=labels, **check
            )
        }
        steps.update()
        if images:
            feeds = onnx_feeds(
                version_dir, _reference_images(version_dir, reference), pixels_size(loaded)
            )
            result["savedmodel_pixels_max_abs_diff"] = verify_savedmodel(
                loaded,
                {"pixels": tf.constant(feeds["pixels"])},
                label_names=labels,
                signature="serving_pixels",
                **check,
            )
            steps.update()
            if litert_path.exists():
                from ftk.tasks.classification.litert import litert_probabilities

                result["litert_max_abs_diff"] = max(
                    _check("LiteRT", litert_probabilities(litert_path, pixels), want, tolerance)
                    for pixels, want in (
                        (feeds["pixels"], expected),
                        (feeds["pixels"][:1], expected[:1]),
                    )
                )
                steps.update()
        elif onnx_path.exists():
            feeds = onnx_feeds(version_dir, reference["texts"])
        if onnx_path.exists():
            result["onnx_max_abs_diff"] = verify_onnx(onnx_path, feeds, **check)
            steps.update()
        result.update(verify_serving(version_dir, loaded, served, labels, **check))
        steps.update()
    return result


def verify_serving(
    version_dir: Path,
    loaded,
    inputs: dict[str, np.ndarray],
    labels: list[str] | None,
    expected: np.ndarray,
    tolerance: float,
) -> dict[str, float]:
    """The TF Serving contract, checked without a server (see `ftk.export.serving`):

    - the signatures are exactly the documented ones (`serving.check_signatures`);
    - every op is core TensorFlow or tensorflow-text;
    - REST row (`instances`) and columnar (`inputs`) requests, serialised as JSON and parsed by
      TF Serving's rules, give the Keras probabilities, and so do the JSON responses;
    - a gRPC `PredictRequest` round-trips through the signature to the same probabilities;
    - every request in `assets.extra/tf_serving_warmup_requests` (when present) runs.

    `loaded` is the SavedModel at `version_dir`; `inputs` its `serving_default` inputs.
    """

    serving.check_ops(version_dir)
    check_signatures(loaded, expected.shape[-1], binary="image_bytes" in inputs)
    result = {}
    for fmt, columns in serving.rest_round_trips(loaded, inputs).items():
        result[f"rest_{fmt}_max_abs_diff"] = _check_outputs(
            f"REST ({fmt} format)", columns, expected, tolerance, labels
        )
    request = serving.predict_request(version_dir.parent.name, inputs)
    result["grpc_max_abs_diff"] = _check_outputs(
        "gRPC PredictRequest", serving.grpc_round_trip(loaded, request), expected, tolerance, labels
    )
    if (version_dir / "assets.extra" / serving.WARMUP_FILE).exists():
        requests = serving.read_warmup(version_dir)
        for i, request in enumerate(progress(requests, desc="Warm-up requests", unit="request")):
            _check_outputs(
                f"warmup request {i}",
                serving.grpc_round_trip(loaded, request),
                expected[i : i + 1],
                tolerance,
                labels,
            )
    return result


def check_signatures(loaded, num_classes: int, binary: bool) -> None:
    """The served signatures are exactly what docs/deploying.md documents: `serving_default` takes
    `text` (or `image_bytes`) as string `[batch]`; image exports add `serving_pixels` taking
    `pixels` float32 `[batch, h, w, 3]`; each returns `probabilities` float32
    `[batch, num_classes]`, `class_id` int32 `[batch]` and `class_name` string `[batch]`."""
    outputs = {
        "probabilities": f"float32 [-1, {num_classes}]",
        "class_id": "int32 [-1]",
        "class_name": "string [-1]",
    }
    names = {serving.DEFAULT_SIGNATURE, "serving_pixels"} if binary else {serving.DEFAULT_SIGNATURE}
    found = set(loaded.signatures.keys())
    if found != names:
        raise VerificationError(f"Signatures are {sorted(found)}, expected {sorted(names)}.")
    expected = {serving.DEFAULT_SIGNATURE: {"image_bytes" if binary else "text": "string [-1]"}}
    if binary:  # any height and width, as long as the shape is [-1, h, w, 3]
        pixels = serving.signature_inputs(loaded, "serving_pixels").get("pixels")
        h, w = pixels.shape[1:3] if pixels is not None and pixels.shape.rank == 4 else ("h", "w")
        expected["serving_pixels"] = {"pixels": f"float32 [-1, {h}, {w}, 3]"}
    for name, inputs in expected.items():
        function = loaded.signatures[name]
        got_in = {
            k: serving.spec_text(v) for k, v in function.structured_input_signature[1].items()
        }
        got_out = {k: serving.spec_text(v) for k, v in function.structured_outputs.items()}
        if got_in != inputs or got_out != outputs:
            raise VerificationError(
                f"Signature {name!r} is inputs {got_in} -> outputs {got_out}; the documented "
                f"contract is inputs {inputs} -> outputs {outputs}."
            )
