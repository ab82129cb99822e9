"""Checking a causal LM's export before it is published (and again with `ftk verify`): the
SavedModel's greedy tokens against Keras' `generate` (directly, REST row and columnar, gRPC,
warm-up requests), the preset directory's logits, and ONNX's logits. Runs under TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ftk.errors import VerificationError
from ftk.files import read_json
from ftk.tasks.causal_lm.export import NEAR_TIE, PRESET_DIR, PROMPT_INPUT, REFERENCE

ONNX_TOLERANCE = 1e-3  # LM logits reach |35|: float32 round-off across runtimes is ~1e-4


def _compare(where: str, got_ids, expected: list[list[int]], margins=None) -> dict:
    """Token ids against Keras': equal, or equal up to a step where Keras' two best tokens
    were within `NEAR_TIE` of each other (float rounding may pick either; both are right)."""
    got = [[int(t) for t in row if t >= 0] for row in np.asarray(got_ids)]
    exact = ties = 0
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g == e:
            exact += 1
            continue
        first = next(
            (k for k, (a, b) in enumerate(zip(g, e, strict=False)) if a != b),
            min(len(g), len(e)),
        )
        gaps = (margins or [[]] * len(expected))[i]
        if first < len(gaps) and first < len(g) and gaps[first] < NEAR_TIE:
            ties += 1
            continue
        if g != e:
            raise VerificationError(
                f"{where}: prompt {i} generated different tokens than Keras from token {first} "
                f"on (got {g[first : first + 8]}, Keras {e[first : first + 8]})."
            )
    return {"exact": exact, "near_tie": ties}


def verify_export(version_dir: Path) -> dict:
    """Check the SavedModel (directly, REST row and columnar, gRPC, warm-up requests) and the
    preset directory against the Keras model's recorded generations and logits."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    from ftk.export import serving

    version_dir = Path(version_dir)
    ref = read_json(version_dir / "assets.extra" / REFERENCE)
    prompts, expected, margins = ref["prompts"], ref["token_ids"], ref.get("margins")
    inputs = {PROMPT_INPUT: np.asarray([p.encode() for p in prompts], dtype=object)}
    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures[serving.DEFAULT_SIGNATURE]
    result = {"examples": len(prompts), "greedy": ref["greedy"]}
    serving.check_ops(version_dir)
    out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    checks = {"savedmodel": out["token_ids"].numpy()}
    for fmt, columns in serving.rest_round_trips(loaded, inputs).items():
        checks[f"rest_{fmt}"] = _pad(columns["token_ids"])
    request = serving.predict_request(version_dir.parent.name, inputs)
    checks["grpc"] = serving.grpc_round_trip(loaded, request)["token_ids"]
    if ref["greedy"]:
        for name, ids in checks.items():
            counts = _compare(name, ids, expected, margins)
            result[f"{name}_exact"] = counts["exact"]
            result[f"{name}_near_tie"] = counts["near_tie"]
        if (version_dir / "assets.extra" / serving.WARMUP_FILE).exists():
            for i, request in enumerate(serving.read_warmup(version_dir)):
                got = serving.grpc_round_trip(loaded, request)["token_ids"]
                _compare(f"warm-up request {i}", got, expected[i : i + 1], margins[i : i + 1])
    result["texts"] = [t.decode("utf-8", "replace") for t in out["text"].numpy()]
    result["preset_max_abs_diff"] = verify_preset(version_dir / PRESET_DIR, version_dir, ref)
    onnx_path = version_dir / "onnx" / "model.onnx"
    if onnx_path.is_file():
        from ftk.export.lm_onnx import verify_lm_onnx

        sample = {k: np.asarray(v) for k, v in ref["preset_sample"].items()}
        expected_logits = np.load(version_dir / "assets.extra" / "ftk_preset_logits.npy")
        diff = verify_lm_onnx(onnx_path, sample, expected_logits)
        if diff > ONNX_TOLERANCE:
            raise VerificationError(
                f"ONNX logits are {diff:.3g} from the Keras model's (tolerance {ONNX_TOLERANCE})."
            )
        result["onnx_max_abs_diff"] = diff
    return result


def _pad(rows) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    return np.asarray([list(r) + [-1] * (width - len(r)) for r in rows], np.int32)


def verify_preset(preset: Path, version_dir: Path, ref: dict) -> float:
    """The preset directory, loaded back with keras-hub, gives the exported model's logits."""
    from ftk.tasks.causal_lm.preset import load_preset

    expected = np.load(version_dir / "assets.extra" / "ftk_preset_logits.npy")
    lm = load_preset(preset)
    sample = {k: np.asarray(v) for k, v in ref["preset_sample"].items()}
    sample["padding_mask"] = sample["padding_mask"].astype(bool)
    again = lm.preprocessor.generate_preprocess(ref["preset_texts"], sequence_length=32)
    if not np.array_equal(np.asarray(again["token_ids"]), sample["token_ids"]):
        raise VerificationError(f"The preset directory {preset} tokenizes differently.")
    lm.preprocessor = None  # the sample is token ids already
    got = np.asarray(lm.predict_on_batch(sample), np.float32)
    diff = float(np.max(np.abs(got - expected)))
    if diff > float(ref["tolerance"]):
        raise VerificationError(
            f"The preset directory {preset} reloads with logits {diff:.3g} away from the "
            "exported model's."
        )
    return diff
