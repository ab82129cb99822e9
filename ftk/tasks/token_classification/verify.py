"""Check a token classifier's export against the Keras model it came from.

At export time the Keras model's per-piece probabilities on held-out sentences (from the
training backend, `verify_reference.json` of the run) are turned into the expected entities
(`ftk.tasks.token_classification.entities.decode`, NumPy) and each word's probabilities, and
recorded in `assets.extra/ftk_verify.json` and `ftk_verify.npz` (with the token ids).
`verify_export` then reloads the SavedModel in TensorFlow, sends the raw sentences (the batch,
then the first alone) and requires the same entities (text, type, offsets) with scores within
the tolerance; the ONNX model in onnxruntime must give the same word probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftk.errors import VerificationError
from ftk.export.onnx import ONNX_DIR, ONNX_FILE
from ftk.files import read_json, write_json
from ftk.tasks.token_classification.entities import decode, word_tags

VERIFY_FILE = "ftk_verify.json"
ARRAYS_FILE = "ftk_verify.npz"
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _pad(rows: list[np.ndarray], fill, width: int) -> np.ndarray:
    out = np.full([len(rows), width, *rows[0].shape[1:]], fill, rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def write_reference(
    staging: Path,
    tokenizer,
    texts: list[str],
    probabilities: np.ndarray,
    label_names: list[str],
    sequence_length: int,
    tolerance: float,
) -> None:
    """Record what the export must reproduce on `texts` (Keras' per-piece `probabilities`)."""
    from ftk.tasks.token_classification.encode import encode_numpy

    encoded = encode_numpy(tokenizer, list(texts), sequence_length)
    entities, word_probabilities = [], []
    for i, text in enumerate(texts):
        positions = encoded["position"][i]
        tags, scores = word_tags(probabilities[i], positions)
        entities.append(
            decode(text, tags, scores, encoded["start"][i], encoded["end"][i], label_names)
        )
        word_probabilities.append(probabilities[i][np.maximum(positions, 0)])
    width = max(1, *(len(p) for p in encoded["position"]))
    extra = staging / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    np.savez(
        extra / ARRAYS_FILE,
        position=_pad(encoded["position"], -1, width),
        word_probabilities=_pad(word_probabilities, 0.0, width).astype(np.float32),
        **{k: np.stack(encoded[k]) for k in MODEL_INPUTS},
    )
    write_json(
        extra / VERIFY_FILE,
        {"texts": list(texts), "entities": entities, "tolerance": tolerance},
    )


def read_reference(version_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    extra = Path(version_dir) / "assets.extra"
    with np.load(extra / ARRAYS_FILE, allow_pickle=False) as arrays:
        return read_json(extra / VERIFY_FILE), {k: arrays[k] for k in arrays.files}


def served_entities(outputs: dict, row: int) -> list[dict]:
    """The entities of one sentence from the SavedModel's padded outputs."""
    n = int(outputs["num_entities"][row])
    return [
        {
            "text": outputs["entity_text"][row, j].decode("utf-8"),
            "type": outputs["entity_type"][row, j].decode("utf-8"),
            "start": int(outputs["entity_start"][row, j]),
            "end": int(outputs["entity_end"][row, j]),
            "score": float(outputs["entity_score"][row, j]),
        }
        for j in range(n)
    ]


def compare_entities(
    name: str, got: list[list[dict]], expected: list[list[dict]], texts, tolerance: float
) -> float:
    """The largest score difference; a `VerificationError` naming the first sentence whose
    entities differ in text, type or offsets, or whose scores differ by more than `tolerance`."""
    worst = 0.0
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        keys = [(x["text"], x["type"], x["start"], x["end"]) for x in g]
        if keys != [(x["text"], x["type"], x["start"], x["end"]) for x in e]:
            raise VerificationError(
                f"{name} found other entities than Keras in sentence {i} ({texts[i]!r}): "
                f"{keys} instead of {[(x['text'], x['type'], x['start'], x['end']) for x in e]}."
            )
        for x, y in zip(g, e, strict=True):
            worst = max(worst, abs(x["score"] - y["score"]))
    if worst > tolerance:
        raise VerificationError(
            f"{name}: entity scores differ from Keras by up to {worst:.3g} "
            f"(> export.tolerance={tolerance})."
        )
    return worst


def verify_savedmodel(version_dir: Path, reference: dict) -> float:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the graph's tokenizer ops)

    texts, tolerance = reference["texts"], reference["tolerance"]
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = {k: v.numpy() for k, v in signature(text=tf.constant(texts)).items()}
    got = [served_entities(outputs, i) for i in range(len(texts))]
    worst = compare_entities("The SavedModel", got, reference["entities"], texts, tolerance)
    one = {k: v.numpy() for k, v in signature(text=tf.constant(texts[:1])).items()}
    return max(
        worst,
        compare_entities(
            "The SavedModel (batch 1)",
            [served_entities(one, 0)],
            reference["entities"][:1],
            texts,
            tolerance,
        ),
    )


def verify_onnx(onnx_path: Path, arrays: dict[str, np.ndarray], tolerance: float) -> float:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise VerificationError(f"onnxruntime cannot load {onnx_path}: {e}") from None
    feeds = {k: arrays[k] for k in MODEL_INPUTS}
    (probabilities,) = session.run(["probabilities"], feeds)
    position = arrays["position"]
    got = np.take_along_axis(probabilities, np.maximum(position, 0)[..., None], axis=1)
    kept = (position >= 0)[..., None]
    diff = float(np.abs(np.where(kept, got - arrays["word_probabilities"], 0.0)).max())
    if diff > tolerance:
        raise VerificationError(
            f"ONNX word probabilities differ from Keras by up to {diff:.3g} "
            f"(> export.tolerance={tolerance})."
        )
    return diff


def verify_export(version_dir: Path) -> dict:
    reference, arrays = read_reference(version_dir)
    result = {
        "savedmodel_max_abs_diff": verify_savedmodel(version_dir, reference),
        "examples": len(reference["texts"]),
        "entities": sum(len(e) for e in reference["entities"]),
    }
    onnx_path = Path(version_dir) / ONNX_DIR / ONNX_FILE
    if onnx_path.is_file():
        result["onnx_max_abs_diff"] = verify_onnx(onnx_path, arrays, reference["tolerance"])
    return result
