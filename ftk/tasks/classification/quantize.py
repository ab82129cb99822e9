"""Optional int8 ONNX (`export.onnx_int8`): onnxruntime's dynamic quantization of the float ONNX
model, with the accuracy change on the whole test split and the latency ratio measured and
recorded (`onnx_int8` in `ftk_export.json` and `export.json`).

The int8 model is not held to `export.tolerance` (quantization changes outputs by design); its
accuracy is what is reported.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ftk.progress import progress
from ftk.tasks.classification.verify import onnx_feeds

logger = logging.getLogger("ftk")

INT8_FILE = "model_int8.onnx"
BATCH = 32


def _predict(
    session, feeds: dict[str, np.ndarray], desc: str = "Running ONNX"
) -> tuple[np.ndarray, float]:
    n = len(next(iter(feeds.values())))
    out, seconds = [], 0.0
    session.run(["probabilities"], {k: v[:1] for k, v in feeds.items()})  # warm up
    for start in progress(range(0, n, BATCH), desc=desc, unit="batch"):
        batch = {k: v[start : start + BATCH] for k, v in feeds.items()}
        began = time.perf_counter()
        (probabilities,) = session.run(["probabilities"], batch)
        seconds += time.perf_counter() - began
        out.append(probabilities)
    return np.concatenate(out), seconds


def quantize_and_measure(
    version_dir: Path, float_path: Path, inputs: list[str], labels: np.ndarray
) -> dict:
    """Write `INT8_FILE` next to `float_path`; return accuracies, the change and latency ratio."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = float_path.with_name(INT8_FILE)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime warns "consider pre-processing" on the root logger
    try:
        # MatMul and Gemm only: onnxruntime's ConvInteger is slower than float convolution on
        # CPU, and quantizing every convolution cost EfficientNet-Lite0 25 points of accuracy
        # (measured).
        quantize_dynamic(
            str(float_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    finally:
        root.setLevel(level)
    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in (("float", float_path), ("int8", int8_path))
    }
    first = sessions["float"].get_inputs()[0]
    image_size = tuple(first.shape[1:3]) if first.name == "pixels" else None
    feeds = onnx_feeds(version_dir, inputs, image_size)
    results = {}
    for name, session in sessions.items():
        probabilities, seconds = _predict(session, feeds, f"Measuring {name} ONNX on the test set")
        results[name] = (float(np.mean(probabilities.argmax(-1) == labels)), seconds, probabilities)
    (acc_f, sec_f, p_f), (acc_q, sec_q, p_q) = results["float"], results["int8"]
    report = {
        "file": str(Path(float_path.parent.name) / INT8_FILE),
        "test_examples": len(labels),
        "accuracy_float": acc_f,
        "accuracy_int8": acc_q,
        "accuracy_change": acc_q - acc_f,
        "latency_ratio_int8_vs_float": sec_q / sec_f if sec_f else None,
        "max_abs_diff_vs_float": float(np.max(np.abs(p_q - p_f))),
        "size_bytes_float": float_path.stat().st_size,
        "size_bytes_int8": int8_path.stat().st_size,
    }
    logger.info(
        "int8 ONNX: test accuracy %.4f -> %.4f (%+.4f), latency x%.2f, %.1f -> %.1f MB",
        acc_f,
        acc_q,
        acc_q - acc_f,
        report["latency_ratio_int8_vs_float"] or 0.0,
        report["size_bytes_float"] / 1e6,
        report["size_bytes_int8"] / 1e6,
    )
    return report
