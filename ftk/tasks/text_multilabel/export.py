"""The multi-label classifier's exports, on the text regressor's writers and checks.

`serving_default`: `text` (string `[batch]`; and `text_pair` for a pair model) ->
`probabilities` (float32 `[batch, labels]`, the sigmoid of each label's logit, in the order of
`assets.extra/labels.txt`) and `predicted` (int32 `[batch, labels]`: 1 where the probability
is at or above the label's threshold, `assets.extra/thresholds.json`). ONNX (token ids in)
returns `probabilities`. Verification: both artifacts' probabilities against Keras', and the
SavedModel's `predicted` against Keras' probabilities and the thresholds (a probability within
`export.tolerance` of its threshold may fall either way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ftk.errors import VerificationError
from ftk.files import read_json, write_json

PROBABILITIES = "probabilities"
PREDICTED = "predicted"
THRESHOLDS_FILE = "thresholds.json"


def probabilities_head(outputs) -> dict:
    return {PROBABILITIES: tf.sigmoid(tf.cast(outputs, tf.float32))}


def write_export(model, labels, config, staging: Path, inputs: list, outputs, thresholds):
    import json

    from ftk.export.onnx import ONNX_DIR, ONNX_FILE
    from ftk.models.text import save_preprocessor
    from ftk.tasks.text_regression.export import write_onnx, write_savedmodel
    from ftk.tasks.text_regression.pairs import is_pairs
    from ftk.tasks.text_regression.verify import TOKENIZER_DIR, write_reference

    cut = tf.constant(thresholds, tf.float32)

    def head(logits):
        out = probabilities_head(logits)
        out[PREDICTED] = tf.cast(out[PROBABILITIES] >= cut, tf.int32)
        return out

    write_savedmodel(model, labels, staging, pairs=is_pairs(inputs), head=head)
    write_reference(staging, inputs, outputs, config.export.tolerance)
    write_json(
        staging / "assets.extra" / THRESHOLDS_FILE, dict(zip(labels, thresholds, strict=True))
    )
    if config.export.onnx:
        metadata = {"labels": json.dumps(labels), "thresholds": json.dumps(thresholds)}
        path = staging / ONNX_DIR / ONNX_FILE
        write_onnx(model, inputs, path, metadata, head=probabilities_head)
        save_preprocessor(model, staging / ONNX_DIR / TOKENIZER_DIR)


def read_thresholds(version_dir: Path) -> dict[str, float]:
    return read_json(Path(version_dir) / "assets.extra" / THRESHOLDS_FILE)


def verify_export(version_dir: Path) -> dict:
    from ftk.tasks.text_regression.verify import read_reference
    from ftk.tasks.text_regression.verify import verify_export as verify_outputs

    reference = read_reference(version_dir)
    expected = np.asarray(reference["values"], np.float32)
    cut = np.asarray(list(read_thresholds(version_dir).values()), np.float32)
    decided = np.abs(expected - cut) > reference["tolerance"]

    def check(outputs: dict) -> None:
        predicted = outputs[PREDICTED]
        disagree = (predicted != (expected >= cut)) & decided
        if disagree.any():
            i, j = np.argwhere(disagree)[0]
            raise VerificationError(
                f"The SavedModel's `{PREDICTED}` for example {i}, label {j} is "
                f"{predicted[i, j]}; Keras' probability {expected[i, j]:.4f} against the "
                f"threshold {cut[j]:.4f} says {int(expected[i, j] >= cut[j])}."
            )

    result = verify_outputs(version_dir, output=PROBABILITIES, check=check)
    result["predicted_labels_agree"] = int(decided.sum())
    return result
