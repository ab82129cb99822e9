"""OpenVINO IR of a text export (`export.openvino`): raw strings in, the model's outputs out.

Written from the export's own ONNX model and tokenizer preset (`onnx/model.onnx`,
`onnx/preprocessor/`) into `<version>/openvino/`:

- `model.xml/.bin`: the tensor model (`token_ids`, `segment_ids`, `padding_mask` in), converted
  by `openvino.convert_model`, weights kept in float32 (`save_model` would halve them to
  float16: 1e-3 off);
- `text_model.xml/.bin`: the same model behind keras-hub's tokenizer rebuilt in OpenVINO ops
  (`ftk.export.openvino.tokenizer`): `text` (strings `[batch]`) in. OpenVINO runs it with the
  `openvino-tokenizers` extension loaded (`import openvino_tokenizers`).

Both are verified against the Keras outputs on the export's held-out examples before
publishing, compiled with float32 inference (CPUs with bfloat16 units would otherwise run it in
bfloat16).

>>> import numpy as np, openvino as ov, openvino_tokenizers
>>> model = ov.Core().compile_model("saved_models/bbc_news/3/openvino/text_model.xml", "CPU")
>>> model([np.array(["Shares in the chip maker rose 4%."])])[0]     # probabilities
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ftk.errors import VerificationError

logger = logging.getLogger("ftk")

OPENVINO_DIR = "openvino"
TENSOR_MODEL = "model.xml"
TEXT_MODEL = "text_model.xml"
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
ONNX_MODEL = Path("onnx") / "model.onnx"
PREPROCESSOR = Path("onnx") / "preprocessor"


def _preprocessor(version_dir: Path):
    import keras_hub

    return keras_hub.models.TextClassifierPreprocessor.from_preset(str(version_dir / PREPROCESSOR))


def join(tokenizer, tensor_model):
    """Feed each input of `tensor_model` from the tokenizer's output of the same name (element
    types converted where they differ). Both models are consumed."""
    import openvino as ov
    from openvino import opset15 as ops

    produced = {r.output(0).get_any_name(): r.input_value(0) for r in tokenizer.get_results()}
    for parameter in tensor_model.get_parameters():
        source = produced[parameter.output(0).get_any_name()]
        wanted = parameter.get_element_type()
        if source.get_element_type() != wanted:
            source = ops.convert(source, wanted).output(0)
        parameter.output(0).replace(source)
    joined = ov.Model(tensor_model.get_results(), tokenizer.get_parameters(), "text_model")
    joined.validate_nodes_and_infer_types()
    return joined


def write_openvino(staging: Path) -> None:
    """Both IR models of the export in `staging` (its ONNX model and preprocessor written)."""
    import openvino as ov

    from ftk.export.openvino.tokenizer import build_tokenizer, tokenizer_settings

    out = staging / OPENVINO_DIR
    out.mkdir(parents=True, exist_ok=True)
    settings = tokenizer_settings(_preprocessor(staging))
    onnx_path = str(staging / ONNX_MODEL)
    ov.save_model(ov.convert_model(onnx_path), out / TENSOR_MODEL, compress_to_fp16=False)
    text_model = join(build_tokenizer(settings), ov.convert_model(onnx_path))
    ov.save_model(text_model, out / TEXT_MODEL, compress_to_fp16=False)


def compile_model(path: Path):
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (the string ops)

    core = ov.Core()
    return core.compile_model(core.read_model(str(path)), "CPU", COMPILE_CONFIG)


def _largest_diff(name: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> float:
    diff = float(np.max(np.abs(np.asarray(got, np.float32) - expected))) if expected.size else 0.0
    if not diff <= tolerance:
        raise VerificationError(
            f"The OpenVINO {name} differs from Keras by {diff:.2e} (> export.tolerance "
            f"{tolerance:g})."
        )
    return diff


def verify_openvino(version_dir: Path, texts: list[str], expected, tolerance: float) -> dict:
    """Run both IR models on `texts` (the whole batch, then the first alone) and compare with
    the Keras outputs `expected`; raises `VerificationError` beyond `tolerance`."""
    import tensorflow as tf

    version_dir = Path(version_dir)
    expected = np.asarray(expected, np.float32)
    folder = version_dir / OPENVINO_DIR
    text_model = compile_model(folder / TEXT_MODEL)
    batch = np.array(texts, dtype=str)
    result = {
        "openvino_text_max_abs_diff": max(
            _largest_diff("text model", text_model([batch])[0], expected, tolerance),
            _largest_diff("text model", text_model([batch[:1]])[0], expected[:1], tolerance),
        )
    }
    # The tensor model on keras-hub's ids (its TF path: what the SavedModel runs).
    preprocessor = _preprocessor(version_dir)
    ids = tf.function(lambda x: preprocessor(x=x))(tf.constant(list(texts)))
    tensor_model = compile_model(folder / TENSOR_MODEL)
    feeds = {p.get_any_name(): np.asarray(ids[p.get_any_name()]) for p in tensor_model.inputs}
    got = tensor_model(feeds)[0]
    result["openvino_max_abs_diff"] = _largest_diff("tensor model", got, expected, tolerance)
    logger.info(
        "Export: OpenVINO verified (raw text %.1e, token ids %.1e)",
        result["openvino_text_max_abs_diff"],
        result["openvino_max_abs_diff"],
    )
    return result
