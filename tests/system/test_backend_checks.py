"""Checks of backend-neutral modules on the other backends, in fresh processes (the backend is
fixed at import): learning-rate schedules and `DiscriminativeAdamW` on JAX and torch (the checks
their unit tests define, imported from tests/unit/training), LoRA fit + merge on JAX and torch
(one process per backend runs all three), and the optimizer under `MirroredStrategy` on 2
logical CPUs."""

import json
import math
import os
import subprocess
import sys

import pytest
from helpers import REPO, TESTS, TINY_BACKBONE

TIMEOUT = 300
# The unit test modules whose checks run here, and helpers.py, importable in the child.
PYTHONPATH = os.pathsep.join([str(REPO), str(TESTS), str(TESTS / "unit" / "training")])

SCHEDULES_SCRIPT = """
import os
import keras, numpy as np
import test_schedules as t
from ftk.training.schedules import learning_rate_at, learning_rate_schedule

assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()
for case in t.CASES:
    lr, schedule = case[1], learning_rate_schedule(*case)
    for step in (0, 5, 10, 37, 99, 100, 150):
        value = learning_rate_at(schedule, step)
        assert value == t.close_to(t.expected_lr(*case, step), lr), (case, step, value)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule), loss="mse")
    for _ in range(3):  # the schedule runs inside the backend's compiled train step
        model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"))
    trained = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert trained == t.close_to(t.expected_lr(*case, 3), lr), (case, trained)
print("schedules ok on", keras.backend.backend())
"""

OPTIMIZER_SCRIPT = """
import test_optimizers

test_optimizers.run_backend_checks()
"""

# The same optimizer under MirroredStrategy (2 logical CPUs) and on one device: same weights.
MIRRORED_SCRIPT = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from ftk.training.optimizers import DiscriminativeAdamW


def train(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        lower = keras.layers.Dense(8, activation="relu", name="lower")
        head = keras.layers.Dense(3, name="head")
        model = keras.Model(inputs, head(lower(inputs)))
        optimizer = DiscriminativeAdamW(
            multipliers=[(v, 0.1) for v in lower.weights] + [(head.bias, 0.0)],
            learning_rate=0.01,
            weight_decay=0.5,
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    start = [w.numpy() for w in model.weights]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return start, [w.numpy() for w in model.weights]


mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
start, one = train(tf.distribute.get_strategy())
start2, two = train(mirrored)
for a, b in zip(start, start2, strict=True):
    np.testing.assert_array_equal(a, b)
for a, b in zip(one, two, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
np.testing.assert_array_equal(two[-1], start[-1])  # the head bias at multiplier 0.0
assert not np.allclose(two[0], start[0])  # the lower kernel trained
print("mirrored ok")
"""

LORA_SCRIPT = """
import json, sys
import keras, numpy as np
from helpers import build_classifier, examples
from ftk.config import TrainConfig
from ftk.data.text import to_dataset
from ftk.models.lora import enable_lora, lora_layers, merge_lora
from ftk.tasks.classification.losses import compile_classifier

keras.utils.set_random_seed(0)
model = build_classifier(sys.argv[1], dropout=0.0)
counts = enable_lora(model, 2)
compile_classifier(model, TrainConfig(learning_rate=1e-2))
layer = lora_layers(model)[0]
kernel, b = layer._kernel.numpy().copy(), layer.lora_kernel_b.numpy().copy()
model.fit(to_dataset(examples(4), 8), epochs=1, verbose=0)
plain = build_classifier(sys.argv[1], dropout=0.0)
merged = merge_lora(model, plain)
texts = examples(2, seed=5).texts
diff = np.abs(model.predict(texts, verbose=0) - plain.predict(texts, verbose=0)).max()
print("RESULT " + json.dumps({
    "backend": keras.backend.backend(),
    "trainable": counts["trainable"],
    "kernel_frozen": bool(np.array_equal(kernel, layer._kernel.numpy())),
    "b_moved": bool(np.abs(layer.lora_kernel_b.numpy() - b).max() > 0),
    "merged": merged,
    "lora_in_plain": any("lora" in w.path for w in plain.weights),
    "diff": float(diff),
}))
"""


# One fresh process per backend runs every check above (a process start with TensorFlow, Keras
# and keras-hub imports costs seconds of CPU); it prints their results as one JSON line.
BACKEND_SCRIPT = """
import json, sys, traceback
results = {}
for name, script in json.loads(sys.argv[2]).items():
    try:
        exec(compile(script, name, "exec"), {"__name__": name})
        results[name] = {"ok": True, "out": ""}
    except BaseException:
        results[name] = {"ok": False, "out": traceback.format_exc()[-4000:]}
print("RESULTS " + json.dumps(results))
"""
CHECKS = {"schedules": SCHEDULES_SCRIPT, "optimizers": OPTIMIZER_SCRIPT, "lora": LORA_SCRIPT}


@pytest.fixture(scope="module")
def fresh_processes(tmp_path_factory, tiny_preset):
    """Starts a JAX, a torch and a MirroredStrategy process at once; `finish(name)` waits for
    one and returns its output (stdout and stderr)."""
    tmp = tmp_path_factory.mktemp("fresh_processes")
    env = os.environ | {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": PYTHONPATH,
    }
    (tmp / "checks.py").write_text(BACKEND_SCRIPT, encoding="utf-8")
    (tmp / "mirrored.py").write_text(MIRRORED_SCRIPT, encoding="utf-8")
    checks = json.dumps(CHECKS)
    commands = {
        "jax": ("jax", ["checks.py", str(tiny_preset), checks]),
        "torch": ("torch", ["checks.py", str(tiny_preset), checks]),
        "mirrored": ("tensorflow", ["mirrored.py"]),
    }
    running = {}
    for name, (backend, args) in commands.items():
        with (tmp / f"{name}.log").open("w") as log:
            running[name] = subprocess.Popen(
                [sys.executable, *args],  # from tmp: no file there shadows a package
                cwd=tmp,
                env=env | {"KERAS_BACKEND": backend},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def finish(name: str) -> str:
        try:
            returncode = running[name].wait(timeout=TIMEOUT)
        finally:
            output = (tmp / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        assert returncode == 0, output[-6000:]
        return output

    yield finish
    for process in running.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def check_result(fresh_processes, backend: str, check: str) -> str:
    """The output of `check` in the `backend` process, after asserting it passed."""
    output = fresh_processes(backend)
    line = [ln for ln in output.splitlines() if ln.startswith("RESULTS ")][-1]
    result = json.loads(line.removeprefix("RESULTS "))[check]
    assert result["ok"], f"{check} on {backend}:\n{result['out']}"
    return output


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_schedules_match_their_formulas_on_backend(backend, fresh_processes):
    assert f"schedules ok on {backend}" in check_result(fresh_processes, backend, "schedules")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_each_group_moves_at_its_own_rate_on_backend(backend, fresh_processes):
    assert f"checks passed on {backend}" in check_result(fresh_processes, backend, "optimizers")


def test_mirrored_strategy_matches_one_device(fresh_processes):
    assert "mirrored ok" in fresh_processes("mirrored")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_lora_fit_and_merge_on_backend(backend, fresh_processes):
    output = check_result(fresh_processes, backend, "lora")
    line = [ln for ln in output.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line.removeprefix("RESULT "))
    hidden, heads = TINY_BACKBONE["hidden_dim"], TINY_BACKBONE["num_heads"]
    head = hidden * 3 + 3  # logits kernel + bias
    assert result["backend"] == backend
    assert result["trainable"] == 4 * (hidden * heads * 2 + 2 * hidden // heads) + head
    assert result["kernel_frozen"] and result["b_moved"], result
    assert result["merged"] == 4 and not result["lora_in_plain"], result
    assert math.isfinite(result["diff"]) and result["diff"] <= 1e-4, result
