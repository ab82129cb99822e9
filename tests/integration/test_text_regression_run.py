"""The text-regression task end to end on the tiny BERT preset: a CSV whose two number
columns follow the topic words of each text, training chosen by the validation Spearman, the
test metrics, an export whose SavedModel returns Keras' numbers for raw text, ONNX, the
report; and the same run on JAX (exported from a TensorFlow process). The real MiniLM-L6 on
the VADER movie-review sentences: `make demo-regression`
(docs/results/2026-12-04-regression.md)."""

import csv
import json
import random

import numpy as np
import pytest
from helpers import FILLER, TOPICS, kit_switches_on_torch, train_on_backend

MOOD = {"sport": 2.0, "tech": -2.0}


def scored_rows(n: int, seed: int = 0) -> list[dict]:
    """Sport or tech words among filler words; `mood` is the topic's value (noise 0.1),
    `energy` the number of topic words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic = rng.choice(sorted(MOOD))
        k = rng.choice([1, 2, 3])
        words = rng.sample(TOPICS[topic].split(), k) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        rows.append(
            {
                "text": " ".join(words),
                "mood": round(MOOD[topic] + rng.gauss(0, 0.1), 3),
                "energy": float(k),
            }
        )
    return rows


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_preset):
    root = tmp_path_factory.mktemp("regression")
    data = root / "scores.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "mood", "energy"])
        writer.writeheader()
        writer.writerows(scored_rows(240))
    (root / "config.toml").write_text(
        f"""
[run]
task = "text_regression"
run_dir = "{root / "runs"}"
quiet = true
[model]
preset = "{tiny_preset}"
sequence_length = 16
[data]
path = "{data}"
target_columns = ["mood", "energy"]
[train]
epochs = 8
batch_size = 8
learning_rate = 1e-2
early_stopping_patience = 0
monitor = "val_spearman"
[recipe]
name = "single"
[export]
export_dir = "{root / "saved_models"}"
model_name = "scorer"
verify_examples = 12
""",
        encoding="utf-8",
    )
    return root


def test_train_evaluate_export_verify(project):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from ftk.cli.main import train_main

    assert train_main(["--config", str(project / "config.toml")]) == 0
    (run_dir,) = (project / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_target"]) == {"mood", "energy"}
    # The tiny random encoder learns to count topic words well in 8 epochs (0.90 and 0.91
    # seen), which topic they are hardly (0.35 seen): the real encoder is in the demo.
    assert metrics["per_target"]["energy"]["spearman"] > 0.75, metrics
    assert len(metrics["largest_errors"]) == min(100, metrics["num_examples"])
    assert "val_spearman" in (run_dir / "history.csv").read_text().splitlines()[0]
    assert any("val_spearman=" in p.name for p in (run_dir / "checkpoints").iterdir())
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["examples"] == 12
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4
    version = project / "saved_models" / "scorer" / "1"
    assert (version / "assets.extra" / "labels.txt").read_text().split() == ["mood", "energy"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    values = serve(text=tf.constant(["goal the team", "chip the code app data"]))["values"]
    assert values.shape == (2, 2) and values.numpy()[0, 1] < values.numpy()[1, 1]  # energy
    report = (run_dir / "report.md").read_text()
    assert "## Largest errors" in report and "report/scatter.png" in report


def test_a_bad_number_names_its_line(tmp_path, tiny_preset):
    from ftk.config import load_config
    from ftk.data.scored import load_scored_splits
    from ftk.errors import DataError

    data = tmp_path / "bad.csv"
    data.write_text("text,score\ngood game,1.5\nbad app,n/a\n", encoding="utf-8")
    config = load_config(None, ['run.task="text_regression"', f"data.path={data}"])
    with pytest.raises(DataError, match=r"'score' at .*bad.csv:3 holds 'n/a'"):
        load_scored_splits(config.data, config.resolve_path, seed=0)


def test_jax_trains_and_exports(project, tmp_path):
    """The same run on JAX: the export (a TensorFlow process) reproduces its numbers."""
    run_dir = train_on_backend(project / "config.toml", tmp_path, "jax")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert json.loads((run_dir / "run.json").read_text())["backend"] == "jax"
    assert summary["export"]["examples"] == 12
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
    assert np.isfinite(summary["test_mae"])


def test_text_pairs_train_and_serve_with_two_inputs(tmp_path, tiny_preset):
    """`data.second_text_column`: pairs packed by the preprocessor; the SavedModel takes
    `text` and `text_pair` and returns Keras' numbers (verified at export)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from ftk.cli.main import train_main

    rng = random.Random(1)
    data = tmp_path / "pairs.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["first", "second", "same"])
        for _ in range(120):
            a, b = rng.choice(sorted(MOOD)), rng.choice(sorted(MOOD))
            words = [" ".join(rng.sample(TOPICS[t].split(), 2)) for t in (a, b)]
            writer.writerow([*words, float(a == b)])
    (tmp_path / "config.toml").write_text(
        f"""
[run]
task = "text_regression"
run_dir = "{tmp_path / "runs"}"
quiet = true
[model]
preset = "{tiny_preset}"
sequence_length = 16
[data]
path = "{data}"
text_column = "first"
second_text_column = "second"
[train]
epochs = 2
batch_size = 8
[recipe]
name = "single"
[export]
export_dir = "{tmp_path / "saved_models"}"
model_name = "pairs"
verify_examples = 8
""",
        encoding="utf-8",
    )
    assert train_main(["--config", str(tmp_path / "config.toml")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["examples"] == 8 and export["onnx_max_abs_diff"] <= 1e-4
    assert export["preset_max_abs_diff"] <= 1e-4  # the keras-hub preset reads pairs too
    serve = tf.saved_model.load(str(tmp_path / "saved_models" / "pairs" / "1"))
    signature = serve.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"text", "text_pair"}
    values = signature(text=tf.constant(["goal team"]), text_pair=tf.constant(["chip app"]))
    assert values["values"].shape == (1, 1)


def test_torch_with_lora_two_phase_wise_ft_and_cross_validation(project, tmp_path):
    """The kit's switches on this task, on torch (LoRA, the head phase, WiSE-FT, 2 folds)."""
    summary = kit_switches_on_torch(project / "config.toml", tmp_path)
    assert np.isfinite(summary["test_spearman"])
