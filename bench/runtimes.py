"""Raw-text runtimes of one text export against Keras and against the SavedModel.

    python bench/runtimes.py VERSION_DIR RUN_DIR [--repeats 30] [--out FILE]

For each runtime that takes raw strings (the tokenizer included: the only fair comparison):

- `savedmodel`: TF's `serving_default` (what TF Serving runs);
- `openvino_text`: `openvino/text_model.xml` (`export.openvino`), float32 inference;
- `litert_text`: `litert/model.tflite` (text `export.litert`) in TF's interpreter with TF Text's
  LiteRT kernels;
- `onnx_text`: `onnx/text_model.onnx` (`export.onnx_text`) in onnxruntime with
  onnxruntime-extensions, in a child process without TensorFlow (which it must not share);
- `keras_hub_preprocessor+onnxruntime`: keras-hub's preprocessor (TF path) feeding
  `onnx/model.onnx`, as a Python client of the token-id ONNX model does;

it measures the largest absolute difference from the Keras model's outputs on the run's whole
test split (`test_split.json`, `test_probabilities.npy`), and the warm latency at batch 1 and
32 (mean over `--repeats` calls after 5 warm-up calls), with its ratio to the SavedModel's.
Prints a Markdown table and writes it to `--out` (default `bench/results/<date>-runtimes.md`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

BATCH = 32


def runtimes(version: Path) -> dict:
    """`{name: callable(list[str]) -> float32 [n, outputs]}` for what the export holds."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SavedModel's ops)

    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    names = list(serve.structured_outputs)
    output = next((n for n in ("probabilities", "values") if n in names), names[0])

    def savedmodel(texts):
        return serve(text=tf.constant(texts))[output].numpy()

    out = {"savedmodel": savedmodel}
    if (version / "openvino" / "text_model.xml").is_file():
        from ftk.export.openvino import compile_model

        request = compile_model(version / "openvino" / "text_model.xml").create_infer_request()

        def openvino_text(texts):
            return np.array(request.infer([np.array(texts, dtype=str)])[0])

        out["openvino_text"] = openvino_text
    if (version / "litert" / "model.tflite").is_file():
        from ftk.export.litert_text import litert_runner

        litert = litert_runner(version / "litert" / "model.tflite")
        out["litert_text"] = lambda texts: next(iter(litert(texts).values()))
    if (version / "onnx" / "model.onnx").is_file():
        import keras_hub
        import onnxruntime as ort

        session = ort.InferenceSession(str(version / "onnx" / "model.onnx"))
        prep = keras_hub.models.TextClassifierPreprocessor.from_preset(
            str(version / "onnx" / "preprocessor")
        )
        tokenize = tf.function(lambda x: prep(x=x))

        def onnx_client(texts):
            feeds = {k: np.asarray(v) for k, v in tokenize(tf.constant(texts)).items()}
            return session.run(None, feeds)[0]

        out["keras_hub_preprocessor+onnxruntime"] = onnx_client
    return out


def parity(run, texts: list[str], expected: np.ndarray) -> float:
    got = np.concatenate([run(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    return float(np.max(np.abs(got.astype(np.float32) - expected)))


def latency_ms(run, texts: list[str], repeats: int) -> float:
    for _ in range(5):
        run(texts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(texts)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.mean(times)


def onnx_text_child(model: str, texts_file: str, repeats: int) -> None:
    """In the child process: outputs on every text and the two latencies, as JSON."""
    from ftk.export.onnx_text.check import session

    model = session(model)

    def run(texts):
        return model.run(None, {"text": np.array(texts, object)})[0]

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    got = np.concatenate([run(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    row = {
        "outputs": got.astype(np.float32).tolist(),
        "batch1_ms": latency_ms(run, texts[:1], repeats),
        "batch32_ms": latency_ms(run, texts[:BATCH], repeats),
    }
    print(json.dumps(row))


def onnx_text_row(model: Path, texts: list[str], expected: np.ndarray, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        command = [sys.executable, __file__, "--onnx-text-child", str(model), str(texts_file)]
        done = subprocess.run(
            [*command, str(repeats)], capture_output=True, text=True, check=True, timeout=3600
        )
    row = json.loads(done.stdout.strip().splitlines()[-1])
    got = np.asarray(row.pop("outputs"), np.float32)
    return {"max_abs_diff_vs_keras": float(np.max(np.abs(got - expected))), **row}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("version", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    test = json.loads((args.run_dir / "test_split.json").read_text(encoding="utf-8"))
    texts = [t if isinstance(t, str) else t[0] for t in test["inputs"]]
    expected = np.load(args.run_dir / "test_probabilities.npy", allow_pickle=False)
    rows = {}
    for name, run in runtimes(args.version).items():
        rows[name] = {
            "max_abs_diff_vs_keras": parity(run, texts, expected),
            "batch1_ms": latency_ms(run, texts[:1], args.repeats),
            "batch32_ms": latency_ms(run, texts[:BATCH], args.repeats),
        }
    if (args.version / "onnx" / "text_model.onnx").is_file():
        model = args.version / "onnx" / "text_model.onnx"
        rows["onnx_text"] = onnx_text_row(model, texts, expected, args.repeats)
    base = rows["savedmodel"]
    lines = [
        f"# Raw-text runtimes: {args.version} ({time.strftime('%Y-%m-%d')})",
        "",
        f"{len(texts)} test texts; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.repeats} warm calls per latency.",
        "",
        "| runtime (tokenizer included) | max abs. diff from Keras (whole test split) "
        "| batch 1 ms | ratio to SavedModel | batch 32 ms | ratio to SavedModel |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['max_abs_diff_vs_keras']:.1e} | {row['batch1_ms']:.1f} "
            f"| {row['batch1_ms'] / base['batch1_ms']:.2f} | {row['batch32_ms']:.1f} "
            f"| {row['batch32_ms'] / base['batch32_ms']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    out = args.out or Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%d')}-runtimes.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n```json\n" + json.dumps(rows, indent=2) + "\n```\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--onnx-text-child"]:
        onnx_text_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        raise SystemExit(0)
    raise SystemExit(main())
