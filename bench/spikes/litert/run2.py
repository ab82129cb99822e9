# ruff: noqa
# Step 3b: run raw_text.tflite in the Python interpreter with TF Text's LiteRT kernels; parity,
# size and batch-1 latency vs the SavedModel.
import os, sys, time, numpy as np
from common import *
from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

path = sys.argv[1] if len(sys.argv) > 1 else "raw_text.tflite"
it = InterpreterWithCustomOps(
    model_path=path, num_threads=1, custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS
)
run = it.get_signature_runner("serving_default")
print(it.get_signature_list())
sm = tf.saved_model.load(SM).signatures["serving_default"]
bbc = texts()
titles = [t.split("\n")[0] for t in bbc]


def lite(batch):
    return run(text=np.array([s.encode("utf-8") for s in batch], dtype=object))["values"]


def ref(batch):
    return sm(text=tf.constant(batch))["values"].numpy()


for name, data in [("bbc_full", bbc), ("bbc_titles", titles), ("edge", EDGE)]:
    a = np.concatenate([ref(data[i : i + 16]) for i in range(0, len(data), 16)])
    b = np.concatenate([lite(data[i : i + 16]) for i in range(0, len(data), 16)])
    d = np.abs(a - b)[:, 0]
    print(
        f"{name}: n={len(data)} max|diff|={d.max():.2e} mean={d.mean():.2e} n(diff>1e-3)={(d > 1e-3).sum()}"
        f"  worst={data[int(d.argmax())][:40]!r} ({a[d.argmax(), 0]:.4f} vs {b[d.argmax(), 0]:.4f})"
    )
# batch-1 consistency (lite, 1 text at a time vs batched)
b1 = np.concatenate([lite([t]) for t in titles[:50]])
bb = lite(titles[:50])
print("lite batch-1 vs batch-50 max|diff|:", float(np.abs(b1 - bb).max()))


# latency, batch 1
def bench(fn, data, reps=1):
    for t in data[:5]:
        fn([t])
    ts = []
    for t in data:
        s = time.perf_counter()
        fn([t])
        ts.append(time.perf_counter() - s)
    return np.median(ts) * 1e3, np.percentile(ts, 90) * 1e3


for label, data in [("titles", titles[:60]), ("full articles (64 tok)", bbc[:60])]:
    print(
        f"batch-1 latency {label}: tflite median/p90 = %.1f/%.1f ms" % bench(lite, data),
        "| SavedModel median/p90 = %.1f/%.1f ms" % bench(ref, data),
    )
print(
    "size: %s %.1f MB; SavedModel variables %.1f MB"
    % (
        path,
        os.path.getsize(path) / 1e6,
        sum(
            os.path.getsize(os.path.join(r, f))
            for r, _, fs in os.walk(SM + "/variables")
            for f in fs
        )
        / 1e6,
    )
)
