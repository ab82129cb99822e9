"""`runtime.distribution = "model_parallel"` (JAX): the causal-LM template's model (a tiny
random Llama with SmolLM2's tokenizer, LoRA) split over 2 and 4 host CPU devices with
keras-hub's layout map, and a 2 x 2 data x model mesh, trains the losses of one device; the run
records how many bytes of weights each device holds."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import lm_conversations, only_run_dir, save_tiny_llama

TIMEOUT = 600
MATCH = 1e-5


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mp")
    preset = save_tiny_llama(root / "tiny_llama")
    data = root / "chat.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in lm_conversations(60)) + "\n", encoding="utf-8")
    return preset, data


def train(directory: Path, preset: Path, data: Path, runtime: str) -> Path:
    """One JAX run of the tiny LM in a fresh process (its own host-device count): 42 training
    examples (a multiple of every mesh's batch axis, so no example is left out), 6 validation."""
    directory.mkdir(parents=True)
    config = directory / "config.toml"
    config.write_text(
        f"""
[run]
task = "causal_lm"
run_dir = "{directory / "runs"}"
quiet = true
[runtime]
backend = "jax"
precision = "float32"
{runtime}
[model]
preset = "{preset}"
sequence_length = 64
lora_rank = 4
[data]
path = "{data}"
validation_split = 0.1
test_split = 0.2
[train]
epochs = 2
batch_size = 8
learning_rate = 1e-2
[generate]
max_new_tokens = 4
samples = 2
[export]
export_dir = ""
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "XLA_FLAGS")}
    done = subprocess.run(
        [sys.executable, "-m", "ftk.cli.main", "train", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return only_run_dir(directory)


def losses(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open() as f:
        return [float(row[k]) for row in csv.DictReader(f) for k in ("loss", "val_loss")]


@pytest.fixture(scope="module")
def one_device(lm_files, tmp_path_factory):
    return train(tmp_path_factory.mktemp("one") / "p", *lm_files, 'distribution = "none"')


@pytest.mark.parametrize(
    "devices, model_devices, mesh",
    [(2, 0, [1, 2]), (4, 0, [1, 4]), (4, 2, [2, 2])],
    ids=["model2", "model4", "data2xmodel2"],
)
def test_model_parallel_trains_the_losses_of_one_device(
    one_device, lm_files, tmp_path, devices, model_devices, mesh
):
    runtime = f'distribution = "model_parallel"\ncpu_devices = {devices}'
    if model_devices:
        runtime += f"\nmodel_devices = {model_devices}"
    run_dir = train(tmp_path / "p", *lm_files, runtime)
    facts = json.loads((run_dir / "run.json").read_text())
    assert facts["split_counts"]["train"]["examples"] == 42
    assert facts["runtime"]["distribution"] == "model_parallel"
    assert facts["runtime"]["replicas"] == mesh[0]  # the batch axis
    diffs = [abs(a - b) for a, b in zip(losses(one_device), losses(run_dir), strict=True)]
    print(f"mesh {mesh}: max |loss difference| {max(diffs):.2e}")
    assert max(diffs) <= MATCH
    placement = json.loads((run_dir / "metrics.json").read_text())["placement"]
    per_device = placement["weights_bytes_per_device"]
    assert len(per_device) == devices
    # Every device holds a part, none the whole: the big matrices are split.
    assert max(per_device.values()) < placement["weights_bytes"] / (devices - 1)
