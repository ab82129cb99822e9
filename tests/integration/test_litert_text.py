"""`export.litert` on a text task: a LiteRT model with the tokenizer inside, built from TF Text's
LiteRT ops (`FastBertTokenizer`, a dense packer) around the Keras model, verified at export and
answering raw strings in TF's interpreter with TF Text's kernels registered."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError, ExportError
from ftk.runs import pipeline as runner


def test_raw_text_litert_model_matches_keras(uncased_preset, tiny_csv, tmp_path):
    import tensorflow_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    config = load_config(
        write_tiny_config(
            tmp_path, uncased_preset, tiny_csv, "litert = true", "onnx = false", "preset = false"
        )
    )
    summary = runner.run(config, verbose=0)
    export = summary["export"]
    assert export["litert_max_abs_diff"] <= 1e-4
    assert export["litert_edge_cases"]["texts"] > 20
    version = Path(export["version_dir"])
    reference = json.loads((Path(summary["run_dir"]) / "verify_reference.json").read_text())
    interpreter = InterpreterWithCustomOps(
        model_path=str(version / "litert" / "model.tflite"),
        custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
    )
    run = interpreter.get_signature_runner()
    texts = reference["inputs"] + ["Café naïve ÜBER 😀", "", "word " * 100]
    got = run(text=np.array([t.encode() for t in texts], dtype=object))["probabilities"]
    n = len(reference["inputs"])
    np.testing.assert_allclose(got[:n], reference["probabilities"], atol=1e-4)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    card = (version / "README.md").read_text()
    assert "`litert/model.tflite` | LiteRT, raw text in" in card
    assert "InterpreterWithCustomOps" in card


def test_cased_tokenizer_is_refused_by_name(tiny_preset):
    """The tiny preset keeps accents: FastBertTokenizer's normaliser would strip them."""
    import keras_hub

    from ftk.export.litert_text import _tokenizer_settings

    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(str(tiny_preset))
    with pytest.raises(ExportError, match=r"export\.litert.*cased tokenizer"):
        _tokenizer_settings(pre)


def test_text_litert_takes_single_texts_and_not_entities(tiny_preset, tiny_csv, tmp_path):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    assert load_config(path, ["export.litert=true"]).export.litert
    with pytest.raises(ConfigError, match="export.litert"):
        load_config(
            None,
            [
                'run.task="text_regression"',
                'data.second_text_column="other"',
                'data.target_columns=["y"]',
                "export.litert=true",
            ],
        )
    with pytest.raises(ConfigError, match="export.litert"):
        load_config(None, ['run.task="token_classification"', "export.litert=true"])
