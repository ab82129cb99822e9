"""Raw-string ONNX model of a text export (`export.onnx_text`): `onnx/text_model.onnx` takes
`text` (strings `[batch]`) and returns what `onnx/model.onnx` returns, with keras-hub's BERT
tokenizer rebuilt in onnxruntime-extensions ops in front (`ftk.export.onnx_text.graph`).

It runs in plain onnxruntime once onnxruntime-extensions' ops are registered, in a process
that has NOT imported TensorFlow (next to TensorFlow's RE2, the extensions' regex ops give
wrong results), which is also where the export verifies it:

>>> import numpy as np, onnxruntime as ort, onnxruntime_extensions
>>> options = ort.SessionOptions()
>>> options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
>>> model = ort.InferenceSession("saved_models/bbc_news/3/onnx/text_model.onnx", options)
>>> model.run(None, {"text": np.array(["Shares in the chip maker rose 4%."], object)})[0]

Checked before publishing: the export's held-out examples against Keras (within
`export.tolerance`, or the export stops), and `ftk.export.edge_texts.EDGE_CASES` (odd Unicode:
recorded, not required) against keras-hub's tokenizer + the token-id model.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from ftk.errors import ExportError, VerificationError

logger = logging.getLogger("ftk")

TEXT_MODEL = Path("onnx") / "text_model.onnx"
TOKEN_MODEL = Path("onnx") / "model.onnx"
PREPROCESSOR = Path("onnx") / "preprocessor"
CHECK_TIMEOUT_S = 600


def _dtypes(model) -> dict[str, int]:
    from ftk.export.onnx_text.graph import IDS

    dtypes = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    if set(dtypes) != set(IDS):
        raise ExportError(
            f"export.onnx_text: the token-id model takes {sorted(dtypes)}, expected {sorted(IDS)}."
        )
    return dtypes


def write_onnx_text(staging: Path) -> None:
    """`onnx/text_model.onnx` in `staging` (its token-id model and preprocessor written)."""
    import onnx

    from ftk.export.onnx_text.graph import PRE, preprocessing_graph
    from ftk.export.onnx_text.settings import read_settings
    from ftk.export.onnx_text.tables import char_tables

    settings = read_settings(staging / PREPROCESSOR)
    model = onnx.load_model(str(staging / TOKEN_MODEL))
    pre = preprocessing_graph(settings, char_tables(settings["words"]), _dtypes(model))
    pre.ir_version = model.ir_version  # merge_models wants equal IR versions
    merged = onnx.compose.merge_models(
        pre, model, io_map=[(PRE + name, name) for name in sorted(_dtypes(model))]
    )
    del merged.metadata_props[:]  # merge_models keeps the first model's; keep the second's
    merged.metadata_props.extend(model.metadata_props)
    merged.metadata_props.add(
        key="ftk_tokenizer",
        value=json.dumps(
            {
                "ops": "ai.onnx.contrib",
                "onnxruntime_extensions": metadata.version("onnxruntime-extensions"),
                "sequence_length": settings["sequence_length"],
            }
        ),
    )
    onnx.checker.check_model(merged)  # (custom-domain nodes are not schema-checked)
    onnx.save_model(merged, str(staging / TEXT_MODEL))


def _token_model_outputs(version_dir: Path, texts: list[str]) -> np.ndarray:
    """keras-hub's tokenizer (its TF path, as in the SavedModel) + the token-id ONNX model."""
    import keras_hub
    import onnxruntime as ort
    import tensorflow as tf

    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(str(version_dir / PREPROCESSOR))
    ids = tf.function(lambda x: pre(x=x))(tf.constant(texts))
    session = ort.InferenceSession(
        str(version_dir / TOKEN_MODEL), providers=["CPUExecutionProvider"]
    )
    feeds = {i.name: np.asarray(ids[i.name]) for i in session.get_inputs()}
    return np.asarray(session.run(None, feeds)[0], np.float32)


def run_check(model: Path, groups: dict, tolerance: float) -> dict:
    """`check.compare` in a child process without TensorFlow."""
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases.json"
        cases.write_text(json.dumps({"groups": groups, "tolerance": tolerance}), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "ftk.export.onnx_text.check", str(model), str(cases)],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise VerificationError(f"The raw-string ONNX model did not run: {last[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verify_onnx_text(version_dir: Path, texts: list[str], expected, tolerance: float) -> dict:
    """Compare the raw-string model with the Keras outputs `expected` for `texts` (raises
    `VerificationError` beyond `tolerance`), and count the edge cases it answers differently."""
    from ftk.export.edge_texts import EDGE_CASES

    version_dir = Path(version_dir)
    groups = {
        "held_out": {"texts": list(texts), "expected": np.asarray(expected, np.float32).tolist()},
        "edge_cases": {
            "texts": EDGE_CASES,
            "expected": _token_model_outputs(version_dir, EDGE_CASES).tolist(),
        },
    }
    found = run_check(version_dir / TEXT_MODEL, groups, tolerance)
    held = found["held_out"]
    diff = max(held["max_abs_diff"], held["first_alone_max_abs_diff"])
    if not diff <= tolerance:
        raise VerificationError(
            f"The raw-string ONNX model differs from Keras by {diff:.2e} on the held-out "
            f"examples (> export.tolerance {tolerance:g})."
        )
    edge = found["edge_cases"]
    logger.info(
        "Export: raw-string ONNX verified (%.1e on %d held-out texts; %d of %d edge cases differ)",
        diff,
        held["texts"],
        edge["differing"],
        edge["texts"],
    )
    return {
        "onnx_text_max_abs_diff": diff,
        "onnx_text_edge_cases": {"texts": edge["texts"], "differing": edge["differing"]},
    }
