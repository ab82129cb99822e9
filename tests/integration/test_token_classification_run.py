"""The token-classification task end to end on the tiny BERT preset: JSON-lines sentences whose
topic words are entities, training chosen by the validation entity F1, the test entity scores,
an export whose SavedModel returns the same entities as Keras for raw sentences, ONNX, the
report; and the same run on JAX and torch (exported from a TensorFlow process). The real
MiniLM-L6 on WNUT-16: `make demo-ner` (docs/results/2026-12-03-ner.md)."""

import json
import random

import pytest
from helpers import FILLER, TOPICS, train_on_backend

TYPES = ("sport", "tech")  # the music words stay 'O'


def tagged_sentences(n: int, seed: int = 0) -> list[dict]:
    """Filler words with one or two topic words: sport and tech words are entities (a pair of
    the same topic in a row is one entity: B- then I-)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(2, 4)):
            tokens.append(rng.choice(FILLER))
            tags.append("O")
            topic = rng.choice(sorted(TOPICS))
            words = rng.sample(TOPICS[topic].split(), rng.choice([1, 1, 2]))
            tokens += words
            if topic in TYPES:
                tags += [f"B-{topic}"] + [f"I-{topic}"] * (len(words) - 1)
            else:
                tags += ["O"] * len(words)
        out.append({"tokens": tokens, "tags": tags})
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_preset):
    root = tmp_path_factory.mktemp("ner")
    data = root / "tagged.jsonl"
    data.write_text("\n".join(json.dumps(s) for s in tagged_sentences(160)) + "\n")
    (root / "config.toml").write_text(
        f"""
[run]
task = "token_classification"
run_dir = "{root / "runs"}"
quiet = true
[model]
preset = "{tiny_preset}"
sequence_length = 24
[data]
path = "{data}"
[train]
epochs = 10
batch_size = 8
learning_rate = 1e-2
early_stopping_patience = 0
[recipe]
name = "single"
[export]
export_dir = "{root / "saved_models"}"
model_name = "tagger"
verify_examples = 12
""",
        encoding="utf-8",
    )
    return root


def test_train_evaluate_export_verify(project):
    from ftk.cli.main import train_main
    from ftk.tasks.token_classification.show import ask

    assert train_main(["--config", str(project / "config.toml")]) == 0
    (run_dir,) = (project / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["entity_f1"] > 0.7, metrics  # the topic words are learnable (0.81 seen)
    assert set(metrics["per_type"]) == set(TYPES)
    history = (run_dir / "history.csv").read_text()
    assert "val_entity_f1" in history.splitlines()[0]
    assert any("val_entity_f1=" in p.name for p in (run_dir / "checkpoints").iterdir())
    export = json.loads((run_dir / "summary.json").read_text())["export"]
    assert export["examples"] == 12 and export["entities"] > 0
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4
    version = project / "saved_models" / "tagger" / "1"
    sentence = "the  coach of the league said , today chip phone"
    (entities,) = ask(version, [sentence])
    for entity in entities:
        assert sentence[entity["start"] : entity["end"]] == entity["text"]
    covered = {(w, e["type"]) for e in entities for w in e["text"].split()}
    assert {("coach", "sport"), ("league", "sport"), ("chip", "tech"), ("phone", "tech")} <= covered
    report = (run_dir / "report.md").read_text()
    assert "## Per entity type" in report and "## Most confident wrong spans" in report


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_train_and_export(project, tmp_path, backend):
    """The same run on JAX and torch: the export (a TensorFlow process) reproduces the entities
    of the training backend's model."""
    run_dir = train_on_backend(project / "config.toml", tmp_path, backend)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert json.loads((run_dir / "run.json").read_text())["backend"] == backend
    assert summary["export"]["examples"] == 12
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
