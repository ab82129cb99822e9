"""The multi-label task end to end on the tiny BERT preset: a CSV whose texts carry the words
of any of three topics (each present topic is a label, none is possible), thresholds tuned on
validation, the test metrics, an export whose SavedModel returns Keras' probabilities and the
labels above the thresholds for raw text, ONNX, the report; 0/1 label columns; and the same run
on JAX (exported from a TensorFlow process). The real MiniLM-L6 on Wikidata's film genres:
`make demo-multilabel` (docs/results/2026-12-04-multilabel.md)."""

import csv
import json
import random

import numpy as np
import pytest
from helpers import FILLER, TOPICS, kit_switches_on_torch, train_on_backend


def tagged_rows(n: int, seed: int = 0) -> list[dict]:
    """Filler words with the words of 0 to 3 topics; the label cell lists the topics."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topics = sorted(rng.sample(sorted(TOPICS), rng.choice([0, 1, 1, 2, 2, 3])))
        words = [w for t in topics for w in rng.sample(TOPICS[t].split(), 2)]
        words += rng.sample(FILLER, 3)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": "|".join(topics)})
    return rows


def write_config(root, data, preset) -> None:
    (root / "config.toml").write_text(
        f"""
[run]
task = "text_multilabel"
run_dir = "{root / "runs"}"
quiet = true
[model]
preset = "{preset}"
sequence_length = 16
[data]
path = "{data}"
label_separator = "|"
[train]
epochs = 10
batch_size = 8
learning_rate = 3e-3
early_stopping_patience = 0
monitor = "val_map"
[recipe]
name = "single"
[export]
export_dir = "{root / "saved_models"}"
model_name = "tagger"
verify_examples = 12
""",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_preset):
    root = tmp_path_factory.mktemp("multilabel")
    data = root / "tagged.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows(tagged_rows(300))
    write_config(root, data, tiny_preset)
    return root


def test_train_tune_thresholds_evaluate_export_verify(project):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from ftk.cli.main import train_main

    assert train_main(["--config", str(project / "config.toml")]) == 0
    (run_dir,) = (project / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_label"]) == set(TOPICS)
    # Each topic is in half the texts: predicting every label scores a micro-F1 of 0.67 and a
    # mean average precision of 0.5. The tiny random encoder gets 0.75-0.78 and 0.84-0.86 (seen);
    # the real encoder is in the demo.
    assert metrics["micro_f1"] > 0.7 and metrics["map"] > 0.75, metrics
    assert metrics["thresholds_tuned_on"] == "validation"
    calibration = json.loads((run_dir / "calibration.json").read_text())
    assert len(calibration["thresholds"]) == 3
    assert all(0 < t < 1 for t in calibration["thresholds"])
    assert [m["threshold"] for m in metrics["per_label"].values()] == calibration["thresholds"]
    assert "val_map" in (run_dir / "history.csv").read_text().splitlines()[0]
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["examples"] == 12
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4
    assert export["preset_max_abs_diff"] <= 1e-4
    version = project / "saved_models" / "tagger" / "1"
    assert (version / "assets.extra" / "labels.txt").read_text().split() == sorted(TOPICS)
    thresholds = json.loads((version / "assets.extra" / "thresholds.json").read_text())
    assert list(thresholds.values()) == calibration["thresholds"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    out = serve(text=tf.constant(["goal team the", "chip code song album a"]))
    probabilities, predicted = out["probabilities"].numpy(), out["predicted"].numpy()
    assert probabilities.shape == predicted.shape == (2, 3)
    np.testing.assert_array_equal(predicted, probabilities >= np.array(list(thresholds.values())))
    report = (run_dir / "report.md").read_text()
    assert "## Per label" in report and "report/per_label.png" in report


def test_label_columns_of_zeros_and_ones(tmp_path, tiny_preset):
    """`data.target_columns`: one 0/1 column per label; the labels are the column names."""
    from ftk.config import load_config
    from ftk.data.multilabel import load_multilabel_splits
    from ftk.errors import DataError

    data = tmp_path / "flags.csv"
    rows = ["text,sport,tech"] + [f"goal chip {i},{i % 2},{(i // 2) % 2}" for i in range(40)]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    overrides = ['run.task="text_multilabel"', f"data.path={data}"]
    config = load_config(None, [*overrides, 'data.target_columns=["sport", "tech"]'])
    splits = load_multilabel_splits(config.data, config.resolve_path, seed=0)
    assert splits.label_names == ["sport", "tech"]
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 40
    data.write_text("text,sport,tech\ngoal,1,0\nchip,0,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"'tech' at .*flags.csv:3 holds 2"):
        load_multilabel_splits(config.data, config.resolve_path, seed=0)


def test_jax_trains_and_exports(project, tmp_path):
    """The same run on JAX: the export (a TensorFlow process) reproduces its probabilities."""
    run_dir = train_on_backend(project / "config.toml", tmp_path, "jax")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert json.loads((run_dir / "run.json").read_text())["backend"] == "jax"
    assert summary["export"]["examples"] == 12
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
    assert 0.0 <= summary["test_micro_f1"] <= 1.0


def test_a_binary_pair_decision_as_one_label(tmp_path, tiny_preset):
    """Pair classification (duplicates, matches) as one label: `data.second_text_column`; the
    SavedModel takes `text` and `text_pair` and returns the label's probability and decision."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from ftk.cli.main import train_main

    rng = random.Random(2)
    data = tmp_path / "pairs.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["first", "second", "label"])
        for _ in range(120):
            a, b = rng.choice(sorted(TOPICS)), rng.choice(sorted(TOPICS))
            words = [" ".join(rng.sample(TOPICS[t].split(), 2)) for t in (a, b)]
            writer.writerow([*words, "same" if a == b else ""])
    write_config(tmp_path, data, tiny_preset)
    config = (tmp_path / "config.toml").read_text()
    config = config.replace(
        'label_separator = "|"', 'text_column = "first"\nsecond_text_column = "second"'
    )
    (tmp_path / "config.toml").write_text(config.replace("epochs = 10", "epochs = 2"))
    assert train_main(["--config", str(tmp_path / "config.toml")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["examples"] == 12 and export["onnx_max_abs_diff"] <= 1e-4
    signature = tf.saved_model.load(str(tmp_path / "saved_models" / "tagger" / "1")).signatures[
        "serving_default"
    ]
    assert set(signature.structured_input_signature[1]) == {"text", "text_pair"}
    out = signature(text=tf.constant(["goal team"]), text_pair=tf.constant(["chip app"]))
    assert out["probabilities"].shape == out["predicted"].shape == (1, 1)


def test_torch_with_lora_two_phase_wise_ft_and_cross_validation(project, tmp_path):
    """The kit's switches on this task, on torch (LoRA, the head phase, WiSE-FT, 2 folds)."""
    summary = kit_switches_on_torch(project / "config.toml", tmp_path)
    assert np.isfinite(summary["test_micro_f1"])
