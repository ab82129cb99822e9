"""`export.onnx_text`: the ONNX model with keras-hub's tokenizer in onnxruntime-extensions ops
in front, verified at export and answering raw strings in onnxruntime, in a process that never
imports TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError, ExportError
from ftk.runs import pipeline as runner

# Runs the raw-string model on texts read from stdin; prints its outputs: the batch, then each
# text alone. It fails if TensorFlow was imported.
CLIENT = """
import json, sys
import numpy as np, onnxruntime as ort, onnxruntime_extensions
texts = json.load(sys.stdin)
options = ort.SessionOptions()
options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
model = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
run = lambda t: model.run(None, {"text": np.array(t, object)})[0].tolist()
assert "tensorflow" not in sys.modules
print(json.dumps({"batch": run(texts), "alone": [run([t])[0] for t in texts]}))
"""


def test_raw_string_onnx_model_matches_keras(uncased_preset, tiny_csv, tmp_path):
    config = load_config(
        write_tiny_config(tmp_path, uncased_preset, tiny_csv, "onnx_text = true", "preset = false")
    )
    summary = runner.run(config, verbose=0)
    export = summary["export"]
    assert export["onnx_text_max_abs_diff"] <= 1e-4
    assert export["onnx_text_edge_cases"]["texts"] > 20
    version = Path(export["version_dir"])
    reference = json.loads((Path(summary["run_dir"]) / "verify_reference.json").read_text())
    texts = reference["inputs"] + ["Café naïve — ÜBER 😀", "", "x" * 500]
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(version / "onnx" / "text_model.onnx")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(done.stdout)
    n = len(reference["inputs"])
    np.testing.assert_allclose(got["batch"][:n], reference["probabilities"], atol=1e-4)
    np.testing.assert_allclose(got["alone"], got["batch"], atol=1e-5)
    np.testing.assert_allclose(np.sum(got["batch"], -1), 1.0, atol=1e-5)
    card = (version / "README.md").read_text()
    assert "`onnx/text_model.onnx`" in card and "Unicode edge cases differ" in card
    import onnx

    props = onnx.load_model(str(version / "onnx" / "text_model.onnx"), load_external_data=False)
    keys = {p.key for p in props.metadata_props}
    assert {"labels", "ftk_provenance", "ftk_tokenizer", "ftk_test_metrics"} <= keys


def test_cased_tokenizer_is_refused_by_name(tiny_preset, tmp_path):
    """The tiny preset keeps accents: the export names the key and the reason."""
    import keras_hub

    from ftk.export.onnx_text.settings import read_settings

    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(str(tiny_preset))
    pre.save_to_preset(str(tmp_path / "pre"))
    with pytest.raises(ExportError, match=r"export\.onnx_text.*strip_accents=False"):
        read_settings(tmp_path / "pre")


def test_onnx_text_needs_onnx_and_single_texts(tiny_preset, tiny_csv, tmp_path):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    with pytest.raises(ConfigError, match="export.onnx_text"):
        load_config(path, ["export.onnx_text=true", "export.onnx=false"])
    with pytest.raises(ConfigError, match="export.onnx_text"):
        load_config(
            None,
            [
                'run.task="text_regression"',
                'data.second_text_column="other"',
                'data.target_columns=["y"]',
                "export.onnx_text=true",
            ],
        )
