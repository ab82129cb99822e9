"""The causal-LM template baked for JAX and PyTorch: a tiny random Llama with SmolLM2's real
tokenizer trains on each, the held-out perplexity falls, the export (made under TensorFlow
from the run's weights) writes the same tokens as Keras, and its keras-hub preset directory
loads back on the training backend with the same logits (TensorFlow: the integration test)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LM_TEMPLATE, bake, lm_conversations, only_run_dir, run_train_py, save_tiny_llama

pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")

RELOAD = """
import sys, numpy as np
from ftk.tasks.causal_lm.preset import load_preset
from ftk.files import read_json
version = sys.argv[1]
ref = read_json(version + "/assets.extra/ftk_generation_reference.json")
lm = load_preset(version + "/preset")
sample = {k: np.asarray(v) for k, v in ref["preset_sample"].items()}
sample["padding_mask"] = sample["padding_mask"].astype(bool)
again = lm.preprocessor.generate_preprocess(ref["preset_texts"], sequence_length=32)
assert np.array_equal(np.asarray(again["token_ids"]), sample["token_ids"])
lm.preprocessor = None
got = np.asarray(lm.predict_on_batch(sample), np.float32)
want = np.load(version + "/assets.extra/ftk_preset_logits.npy")
print(float(np.max(np.abs(got - want))))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_lm_template_trains_exports_and_reloads_on(backend, tmp_path):
    preset = save_tiny_llama(tmp_path / "tiny_llama")
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in lm_conversations(48)) + "\n")
    project = bake(tmp_path, LM_TEMPLATE, backend=backend, preset=str(preset), path=str(data))
    run_train_py(
        project,
        "model.sequence_length=64",
        "train.batch_size=8",
        "train.learning_rate=1e-2",
        "data.test_split=0.2",
        "generate.max_new_tokens=4",
        "generate.samples=1",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "export.verify_examples=2",
        timeout=900,
    )
    run_dir = only_run_dir(project)
    assert json.loads((run_dir / "run.json").read_text())["backend"] == backend
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["perplexity"] < metrics["before"]["perplexity"]
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["savedmodel_exact"] + export["savedmodel_near_tie"] == 2
    version = Path(export["version_dir"])
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(version)],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.strip().splitlines()[-1]) <= 1e-4, done.stdout
