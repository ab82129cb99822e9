"""Run the raw-string ONNX model with onnxruntime in a process WITHOUT TensorFlow (where
TensorFlow is loaded, onnxruntime-extensions' RE2 ops return wrong results: a symbol clash
with TensorFlow's own RE2), and compare its outputs with the ones given.

    python -m ftk.export.onnx_text.check MODEL.onnx CASES.json

`CASES.json`: `{"groups": {name: {"texts": [...], "expected": [[...], ...]}}}`. Prints one
JSON object: per group, the largest absolute difference over the group run as one batch, and
the number of texts that differ by more than `tolerance`; then the same for the first text of
each group run alone."""

from __future__ import annotations

import json
import sys

import numpy as np


def session(path: str):
    """An onnxruntime session for the raw-string model, onnxruntime-extensions' ops registered."""
    if "tensorflow" in sys.modules:
        raise RuntimeError(
            "Run the raw-string ONNX model in a process that has not imported TensorFlow: "
            "onnxruntime-extensions' regex ops give wrong results next to TensorFlow's RE2."
        )
    import onnxruntime as ort
    import onnxruntime_extensions

    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    options.log_severity_level = 3  # (shared constants unused in the Loop body: warnings)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def compare(path: str, groups: dict, tolerance: float) -> dict:
    model = session(path)
    run = lambda texts: model.run(None, {"text": np.array(texts, object)})[0]  # noqa: E731
    result = {}
    for name, group in groups.items():
        expected = np.asarray(group["expected"], np.float32)
        got = np.asarray(run(group["texts"]), np.float32)
        diff = np.abs(got - expected).max(axis=1) if len(expected) else np.zeros(0)
        alone = np.abs(np.asarray(run(group["texts"][:1]), np.float32) - expected[:1]).max()
        result[name] = {
            "texts": len(diff),
            "max_abs_diff": float(diff.max(initial=0.0)),
            "differing": int((diff > tolerance).sum()),
            "first_alone_max_abs_diff": float(alone),
        }
    result["batch_of_0_shape"] = list(run([]).shape)
    return result


def main() -> None:
    path, cases = sys.argv[1:3]
    with open(cases, encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(compare(path, spec["groups"], spec["tolerance"])))


if __name__ == "__main__":
    main()
