"""The whole run on a tiny preset, then the exports: layout, verification, re-export, tampering,
int8 ONNX; a crashed run resumed; failures before training. (`publish` alone:
tests/unit/export/test_publish.py.)"""

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import power_cut_after_epoch, write_tiny_config

from ftk.cli.main import main as ftk_main
from ftk.config import load_config
from ftk.errors import ConfigError, ExportError, VerificationError
from ftk.export.publish import versions
from ftk.runs import pipeline as runner
from ftk.tasks.classification.verify import VERIFY_FILE, verify_export


@pytest.fixture(scope="module")
def finished_run(tiny_preset, tiny_csv, tmp_path_factory):
    """One complete run (train -> evaluate -> export -> verify) on the tiny preset."""
    tmp = tmp_path_factory.mktemp("run")
    path = write_tiny_config(tmp, tiny_preset, tiny_csv, "onnx_int8 = true")
    summary = runner.run(load_config(path), verbose=0)
    return tmp, summary


def test_int8_onnx_is_measured_on_the_test_split(finished_run):
    import onnx
    import onnxruntime as ort

    _, summary = finished_run
    report = summary["export"]["onnx_int8"]
    version = Path(summary["export"]["version_dir"])
    assert report["test_examples"] == len(
        json.loads((Path(summary["run_dir"]) / "test_split.json").read_text())["labels"]
    )
    assert report["accuracy_float"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert report["accuracy_change"] == pytest.approx(
        report["accuracy_int8"] - report["accuracy_float"]
    )
    assert report["latency_ratio_int8_vs_float"] > 0 and report["size_bytes_int8"] > 0
    int8 = version / "onnx" / "model_int8.onnx"
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}, sorted(ops)  # really quantized
    assert [i.name for i in ort.InferenceSession(str(int8)).get_inputs()]
    metadata = json.loads((version / "assets.extra" / "ftk_export.json").read_text())
    assert metadata["onnx_int8"] == report


def test_run_writes_every_artifact(finished_run):
    _, summary = finished_run
    run_dir = Path(summary["run_dir"])
    for name in (
        "config.toml",
        "run.json",
        "labels.json",
        "history.csv",
        "metrics.json",
        "model.weights.h5",
        "verify_reference.json",
        "export.json",
        "summary.json",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints").glob("epoch*.weights.h5"))
    assert any((run_dir / "logs").rglob("events.out.tfevents*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["label_names"] == ["music", "sport", "tech"]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["num_examples"] > 0
    assert metrics["accuracy"] > 0.5  # chance is 1/3 (the tiny random BERT reaches 2/3)
    with (run_dir / "history.csv").open() as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < losses[0]
    # The resolved config reloads to the same configuration.
    from ftk.runs import load_run_config

    assert load_run_config(run_dir).train.epochs == 4


def test_export_layout_and_agreement(finished_run):
    _, summary = finished_run
    version_dir = Path(summary["export"]["version_dir"])
    assert version_dir.name == "1"
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "onnx" / "model.onnx").is_file()
    assert (version_dir / "assets.extra" / "labels.txt").read_text().split() == [
        "music",
        "sport",
        "tech",
    ]
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
    assert summary["export"]["onnx_max_abs_diff"] <= 1e-4
    meta = json.loads((version_dir / "assets.extra" / "ftk_export.json").read_text())
    assert meta["verification"]["examples"] == 8
    assert meta["preset"]["checksum"].startswith("sha256:")
    assert not [p for p in version_dir.parent.iterdir() if p.name.startswith(".staging")]
    import onnx

    proto = onnx.load(version_dir / "onnx" / "model.onnx")
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["labels"]) == ["music", "sport", "tech"]
    ops = [node.op_type for node in proto.graph.node]
    # Every layer norm of the tiny BERT (embeddings + 2 per layer) is one ONNX node.
    assert ops.count("LayerNormalization") >= 3 and "GlobalAveragePool" not in ops


def test_preset_loads_back_on_every_backend_and_the_card_tells_the_truth(finished_run):
    """`<version>/preset/` is keras-hub's own preset of the fine-tuned classifier: keras-hub's
    `from_preset` loads it on TensorFlow (here), JAX and PyTorch (subprocesses) with the Keras
    model's outputs; the model card names the data, the metrics and the licence."""
    import keras_hub

    _, summary = finished_run
    version_dir = Path(summary["export"]["version_dir"])
    assert summary["export"]["preset_max_abs_diff"] <= 1e-4
    check = json.loads((version_dir / "assets.extra" / "ftk_preset_check.json").read_text())
    model = keras_hub.models.TextClassifier.from_preset(str(version_dir / "preset"))
    logits = model.predict(np.asarray(check["inputs"]), verbose=0)
    np.testing.assert_allclose(logits, check["outputs"], atol=1e-4)
    for backend in ("jax", "torch"):
        done = subprocess.run(
            [sys.executable, "-m", "ftk.export.preset", str(version_dir)],
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["backend"] == backend and result["preset_max_abs_diff"] <= 1e-4
    card = (version_dir / "README.md").read_text()
    metrics = json.loads((Path(summary["run_dir"]) / "metrics.json").read_text())
    assert f"| accuracy | {metrics['accuracy']:.4g} |" in card
    assert "| music |" in card and "Per class:" in card  # the per-class table
    config = json.loads((version_dir / "assets.extra" / "ftk_export.json").read_text())["config"]
    assert f"`data.path`: `{config['data']['path']}`" in card
    assert "## Backbone and licence" in card and "`preset/`" in card


def test_savedmodel_signature_for_tf_serving(finished_run):
    import tensorflow as tf

    _, summary = finished_run
    loaded = tf.saved_model.load(summary["export"]["version_dir"])
    serve = loaded.signatures["serving_default"]
    (inputs,) = serve.structured_input_signature[1].values()
    assert inputs.name == "text" and inputs.dtype == tf.string
    assert set(serve.structured_outputs) == {"probabilities", "class_id", "class_name"}
    out = serve(text=tf.constant(["goal match team", "chip phone code", "song album band"]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    ids = out["class_id"].numpy()
    assert ids.tolist() == out["probabilities"].numpy().argmax(-1).tolist()
    labels = ["music", "sport", "tech"]
    assert out["class_name"].numpy().tolist() == [labels[i].encode() for i in ids]


def test_cli_verify_and_reexport_make_a_new_version(finished_run, capsys):
    tmp, summary = finished_run
    version_dir = summary["export"]["version_dir"]
    assert ftk_main(["verify", version_dir]) == 0
    assert "matches its Keras model" in capsys.readouterr().out
    assert ftk_main(["export", summary["run_dir"]]) == 0
    assert versions(Path(version_dir).parent) == [1, 2]


def test_tampered_export_fails_verification(finished_run, tmp_path):
    import shutil

    _, summary = finished_run
    copy = tmp_path / "1"
    shutil.copytree(summary["export"]["version_dir"], copy)
    reference_file = copy / "assets.extra" / VERIFY_FILE
    reference = json.loads(reference_file.read_text())
    reference["probabilities"][0][0] += 1e-3
    reference_file.write_text(json.dumps(reference))
    with pytest.raises(VerificationError, match=r"SavedModel does not match.*max abs difference"):
        verify_export(copy)
    assert ftk_main(["verify", str(copy)]) == 2


def test_finished_run_cannot_be_resumed(finished_run):
    _, summary = finished_run
    with pytest.raises(ConfigError, match="this run finished.*ftk export"):
        runner.run(load_config(), resume=Path(summary["run_dir"]))


def test_crashed_run_resumes_from_its_last_epoch(
    tiny_preset, tiny_csv, tmp_path, monkeypatch, caplog
):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    # Two phases (head: epoch 0; all: epochs 1-3): the crash is in the second one.
    config = load_config(path, ['export.export_dir=""', "recipe.name=two_phase"])
    with power_cut_after_epoch(1), pytest.raises(RuntimeError, match="power cut"):
        runner.run(config, verbose=0)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "model.weights.h5").exists()

    monkeypatch.setattr(logging.getLogger("ftk"), "propagate", True)  # off after a CLI test
    with caplog.at_level(logging.INFO, logger="ftk"):
        summary = runner.run(config, resume=run_dir, verbose=0)
    assert "epochs 2-4, resumed after epoch 2: epochs 3-4 remain" in caplog.text
    assert summary["run_dir"] == str(run_dir) and summary["export"] == {}
    with (run_dir / "history.csv").open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3]  # two before the crash, two after: none repeated or lost
    assert (run_dir / "model.weights.h5").is_file()
    phases = json.loads((run_dir / "metrics.json").read_text())["phases"]
    assert [(p["name"], p["first_epoch"], p["last_epoch"]) for p in phases] == [
        ("head", 1, 1),
        ("finetune", 2, 4),
    ]
    assert phases[0]["trainable_parameters"] is None  # finished before the crash: not rerun


def test_a_named_run_started_again_continues_where_it_stopped(
    tiny_preset, tiny_csv, tmp_path, monkeypatch, caplog
):
    """`run.run_id` (what the generated launch files set): the same command started again, as an
    engine restarts a pod, continues the run from its last finished epoch; started once more
    after it finished, it refuses; with another config, it refuses."""
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    overrides = ['export.export_dir=""', "recipe.name=two_phase", "run.run_id=job-7"]
    config = load_config(path, overrides)
    with power_cut_after_epoch(1), pytest.raises(RuntimeError, match="power cut"):
        runner.run(config, verbose=0)
    run_dir = tmp_path / "runs" / "job-7"
    assert (run_dir / "run.json").is_file()
    with pytest.raises(ConfigError, match="job-7.*started with another config.*--resume"):
        runner.run(load_config(path, [*overrides, "train.learning_rate=0.1"]), verbose=0)

    monkeypatch.setattr(logging.getLogger("ftk"), "propagate", True)
    with caplog.at_level(logging.INFO, logger="ftk"):
        summary = runner.run(config, verbose=0)
    assert "Run 'job-7' was started before: continuing" in caplog.text
    assert "resumed after epoch 2: epochs 3-4 remain" in caplog.text
    assert summary["run_dir"] == str(run_dir)
    with (run_dir / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match=r"run.run_id='job-7' .*this run finished"):
        runner.run(config, verbose=0)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["job-7"]


def test_online_preset_offline_fails_fast_and_leaves_no_run(tiny_csv, tmp_path, monkeypatch):
    import time

    from ftk.errors import PresetError
    from ftk.presets import resolve as presets

    monkeypatch.setattr(presets, "host_reachable", lambda *a, **k: False)
    config = load_config(
        None,
        [
            "data.format=csv",
            f"data.path={tiny_csv}",
            f"run.run_dir={tmp_path / 'runs'}",
            "model.preset=bert_tiny_en_uncased",
        ],
    )
    started = time.monotonic()
    with pytest.raises(PresetError, match=r"www.kaggle.com.*minilm_l6"):
        runner.run(config, verbose=0)
    assert time.monotonic() - started < 10
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("where", ["a_file", "a_file/below"])
def test_unwritable_export_dir_fails_before_training_and_leaves_no_run(
    tiny_preset, tiny_csv, tmp_path, where
):
    """`export.export_dir` pointing at a file (or below one) is refused in seconds, naming the
    key, before a run directory exists or a batch is trained (it used to fail after training
    with an 'unexpected' error)."""
    import time

    (tmp_path / "a_file").write_text("not a folder", encoding="utf-8")
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    config = load_config(path, [f"export.export_dir={tmp_path / where}"])
    started = time.monotonic()
    with pytest.raises(ExportError, match=r"`export.export_dir` cannot be written: .*a_file"):
        runner.run(config, verbose=0)
    assert time.monotonic() - started < 30
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())
    assert (tmp_path / "a_file").read_text(encoding="utf-8") == "not a folder"
