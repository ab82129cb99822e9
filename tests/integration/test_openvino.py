"""`export.openvino`: OpenVINO IR of the tensor model and a raw-text model (keras-hub's tokenizer
in OpenVINO ops), verified at export and answering raw strings in a fresh OpenVINO core."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError
from ftk.runs import pipeline as runner


def test_raw_text_openvino_model_matches_keras(tiny_preset, tiny_csv, tmp_path):
    import openvino as ov
    import openvino_tokenizers  # noqa: F401

    config = load_config(
        write_tiny_config(tmp_path, tiny_preset, tiny_csv, "openvino = true", "preset = false")
    )
    summary = runner.run(config, verbose=0)
    export = summary["export"]
    assert export["openvino_text_max_abs_diff"] <= 1e-4
    assert export["openvino_max_abs_diff"] <= 1e-4
    version = Path(export["version_dir"])
    reference = json.loads((Path(summary["run_dir"]) / "verify_reference.json").read_text())
    core = ov.Core()
    model = core.compile_model(
        core.read_model(str(version / "openvino" / "text_model.xml")),
        "CPU",
        {"INFERENCE_PRECISION_HINT": "f32"},
    )
    texts = reference["inputs"] + ["Café naïve — ÜBER 😀", ""]  # accents, emoji, empty
    got = model([np.array(texts, dtype=str)])[0]
    np.testing.assert_allclose(
        got[: len(reference["inputs"])], reference["probabilities"], atol=1e-4
    )
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    card = (version / "README.md").read_text()
    assert "`openvino/text_model.xml`" in card


def test_openvino_needs_onnx_and_single_texts(tiny_preset, tiny_csv, tmp_path):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    with pytest.raises(ConfigError, match="export.openvino"):
        load_config(path, ["export.openvino=true", "export.onnx=false"])
    with pytest.raises(ConfigError, match="export.openvino"):
        load_config(
            None,
            [
                'run.task="text_regression"',
                'data.second_text_column="other"',
                'data.target_columns=["y"]',
                "export.openvino=true",
            ],
        )
