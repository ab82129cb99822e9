"""The model card is filled from an export's recorded provenance: licence, data, metrics with
the task's per-item table, the artifacts with their measured differences."""

import json

from ftk.export.card import licence, model_card, write_model_card
from ftk.tasks.registry import get_task


def metadata(task: str, metrics: dict, path: str = "example:wikidata_films") -> dict:
    return {
        "model_name": "film_genres",
        "task": task,
        "label_names": ["Action", "Comedy"],
        "preset": {"source": "all-MiniLM-L6-v2 (BERT, 22.7M parameters, Apache-2.0), from PyPI"},
        "trained_backend": "jax",
        "data_fingerprint": "sha256:abc",
        "metrics": metrics,
        "config": {"data": {"path": path}, "model": {"sequence_length": 96}},
        "created": "2026-12-04T10:00:00+0000",
        "git": {"commit": "0123456789abcdef", "dirty": True},
        "signature": get_task(task).signature,
        "verification": {"savedmodel_max_abs_diff": 4.2e-7, "onnx_max_abs_diff": 3.9e-7},
    }


def test_licence_is_read_from_the_backbone_description():
    assert licence("EfficientNet-Lite0 ImageNet (4.7M parameters, Apache-2.0)") == "Apache-2.0"
    assert licence("chatterbot (BSD)") == "BSD"
    assert licence("local directory /x").startswith("unknown")


def test_multilabel_card_names_data_metrics_licence_and_artifacts(tmp_path):
    per_label = {
        "Action": {"precision": 0.44, "recall": 0.52, "f1": 0.479, "support": 462},
        "Comedy": {"precision": 0.5, "recall": 0.6, "f1": 0.545, "support": 300},
    }
    meta = metadata("text_multilabel", {"map": 0.358, "micro_f1": 0.5, "per_label": per_label})
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"")
    card = write_model_card(tmp_path, meta, get_task("text_multilabel")).read_text()
    assert card.startswith("# film_genres: multi-label")
    assert "Wikidata films and genres from PyPI bokeh-sampledata (CC0)" in card
    assert "| label | precision | recall | f1 | support |" in card
    assert "| Action | 0.44 | 0.52 | 0.479 | 462 |" in card
    assert "0.358" in card and "**Apache-2.0**" in card
    assert "Texts are cut to 96 tokens." in card
    assert (
        "| `onnx/model.onnx` | onnxruntime, tensors in | max abs. difference from Keras 3.9e-07 |"
        in card
    )
    assert "`preset/`" not in card  # none written
    assert "commit `0123456789ab` (with local changes)" in card
    assert '"text": "<text>"' in card and "film_genres:predict" in card


def test_image_card_asks_for_base64_bytes(tmp_path):
    meta = metadata("image_classification", {"accuracy": 0.9}, path="/data/train")
    card = model_card(meta, get_task("image_classification"), tmp_path)
    assert json.dumps({"image_bytes": {"b64": "<base64 of the file>"}}) in card
    assert "tokens" not in card and "`data.path`: `/data/train`" in card
