"""Row 5: serving latency of ftk's exports: the SavedModel's `serving_default` (TensorFlow)
against the ONNX model and its int8 version in onnxruntime, at batch 1 and batch 32.

`python -m bench.serving build --task text --out DIR` writes an export with the task's own
`write_export` (what `train.py` publishes: SavedModel with the tokenizer or image decoding in
the graph, ONNX with token ids or pixels in), from the untrained fine-tuning model (latency
does not depend on the weights), plus `onnx/model_int8.onnx` with the same dynamic
quantization as `export.onnx_int8` (MatMul and Gemm weights).

`python -m bench.serving measure --task text --export-dir DIR` times them. A published
version directory (`saved_models/<name>/<version>/`) works too; a missing int8 model is
written into build/bench first.

Text: the SavedModel takes raw strings and tokenizes in its graph; ONNX takes token ids, so
the client's tokenization (the preprocessor saved beside model.onnx, as docs/deploying.md shows) is
timed separately and reported both without and with it. Images: the SavedModel's
`serving_pixels` against ONNX's `pixels`, the same float input.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from bench.common import WORK, emit, log, set_backend, task_config

INT8_FILE = "model_int8.onnx"


def build(task_name: str, out: Path) -> None:
    import numpy as np
    import tensorflow as tf

    from ftk.runs.model import build_model, load_task

    config = task_config(task_name, "tensorflow")
    task, splits, info = load_task(config, None)
    model = build_model(task, info, config, splits.label_names)
    inputs = splits.test.inputs[:2]
    if task_name == "text":
        logits = model.predict(tf.constant(inputs), verbose=0)
    else:
        from ftk.data.images import decode_and_resize

        size = (config.model.image_size, config.model.image_size)
        pixels = tf.stack([decode_and_resize(tf.constant(p), size) for p in inputs])
        logits = model.predict(pixels, verbose=0)
    probabilities = np.asarray(tf.nn.softmax(logits, axis=-1), np.float32)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    began = time.perf_counter()
    task.write_export(model, splits.label_names, config, staging, inputs, probabilities)
    export_s = time.perf_counter() - began
    quantize(staging / "onnx" / "model.onnx", staging / "onnx" / INT8_FILE)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    emit(summary=True, export_dir=str(out), export_s=export_s)


def quantize(float_path: Path, int8_path: Path) -> None:
    """As `ftk.export.quantize` does for `export.onnx_int8`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(float_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )


def timed(fn, calls: int) -> float:
    """Median seconds of `calls` calls of `fn` (after one untimed call)."""
    fn()
    out = []
    for _ in range(calls):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return statistics.median(out)


def measure(task_name: str, export_dir: Path, repeats: int, calls1: int, calls32: int) -> None:
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    onnx_dir = export_dir / "onnx"
    int8 = onnx_dir / INT8_FILE
    if not int8.exists():
        int8 = WORK / "serving" / f"{export_dir.parent.name}-{export_dir.name}-{INT8_FILE}"
        int8.parent.mkdir(parents=True, exist_ok=True)
        if not int8.exists():
            quantize(onnx_dir / "model.onnx", int8)
    if task_name == "text":
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph holds)

    loaded = tf.saved_model.load(str(export_dir))
    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in (("onnx", onnx_dir / "model.onnx"), ("onnx_int8", int8))
    }
    config = task_config(task_name, "tensorflow")
    if task_name == "text":
        import keras_hub

        from ftk.data.text import load_text_splits

        splits = load_text_splits(config.data, config.resolve_path, seed=config.run.seed)
        texts = splits.test.inputs
        signature = loaded.signatures["serving_default"]
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            str(onnx_dir / "preprocessor")
        )

        def batches(n):
            return [texts[i : i + n] for i in range(0, 4 * n, n)]

        def savedmodel(batch):
            return signature(text=tf.constant(batch))

        def tokenize(batch):
            return {k: np.asarray(v) for k, v in preprocessor(tf.constant(batch)).items()}

        feeds = {n: [tokenize(b) for b in batches(n)] for n in (1, 32)}
        inputs = {n: batches(n) for n in (1, 32)}
    else:
        signature = loaded.signatures["serving_pixels"]
        size = config.model.image_size
        rng = np.random.default_rng(0)

        def batches(n):
            return [rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32) for _ in range(4)]

        def savedmodel(batch):
            return signature(pixels=tf.constant(batch))

        inputs = {n: batches(n) for n in (1, 32)}
        feeds = {n: [{"pixels": b} for b in inputs[n]] for n in (1, 32)}

    def cycling(fn, items):
        state = {"i": 0}

        def call():
            state["i"] = (state["i"] + 1) % len(items)
            return fn(items[state["i"]])

        return call

    engines = {
        "savedmodel": lambda n: cycling(savedmodel, inputs[n]),
        "onnx": lambda n: cycling(lambda f: sessions["onnx"].run(None, f), feeds[n]),
        "onnx_int8": lambda n: cycling(lambda f: sessions["onnx_int8"].run(None, f), feeds[n]),
    }
    if task_name == "text":
        engines["tokenize"] = lambda n: cycling(tokenize, inputs[n])
    for rep in range(repeats):
        for n, calls in ((1, calls1), (32, calls32)):
            names = list(engines) if rep % 2 == 0 else list(reversed(engines))
            seconds = {name: timed(engines[name](n), calls) for name in names}
            emit(rep=rep, batch=n, **{f"{k}_s": v for k, v in seconds.items()})
            log(
                f"rep {rep} batch {n}: "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in seconds.items())
            )
    emit(summary=True, export_dir=str(export_dir), int8=str(int8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["build", "measure"])
    parser.add_argument("--task", choices=["text", "image"], default="text")
    parser.add_argument("--out", type=Path, help="build: the export directory to write")
    parser.add_argument("--export-dir", type=Path, help="measure: an export to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls1", type=int, default=20, help="timed calls at batch 1")
    parser.add_argument("--calls32", type=int, default=5, help="timed calls at batch 32")
    args = parser.parse_args()
    set_backend("tensorflow")
    if args.mode == "build":
        build(args.task, args.out)
    else:
        measure(args.task, args.export_dir, args.repeats, args.calls1, args.calls32)


if __name__ == "__main__":
    main()
