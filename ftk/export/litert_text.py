"""LiteRT (TensorFlow Lite) model of a text export (`export.litert` on text tasks):
`litert/model.tflite` takes `text` (strings `[batch]`) and returns what `onnx/model.onnx`
returns, the tokenizer inside.

The SavedModel's tokenizer ops (`CaseFoldUTF8`, `NormalizeUTF8`, `RegexSplitWithOffsets`, ...)
have no LiteRT kernels; converted as they are they need Flex (select TF ops), which the pip
interpreter does not have. So the model is rebuilt from ops that do have TF Text LiteRT kernels:
`FastBertTokenizer` (`lower_case_nfd_strip_accents`: NFD, lower case, accents stripped, then
BERT's split and WordPiece) and a dense `[CLS] ... [SEP]` packer, in front of the Keras model,
weights frozen in, converted with builtin ops plus TF Text's custom ops (no Flex). It runs in
TF's interpreter with TF Text's kernels registered:

>>> import numpy as np, tensorflow_text
>>> from tensorflow.lite.python.interpreter import InterpreterWithCustomOps
>>> model = InterpreterWithCustomOps(
...     model_path="saved_models/bbc_news/4/litert/model.tflite",
...     custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)
>>> run = model.get_signature_runner("serving_default")
>>> run(text=np.array([b"Shares in the chip maker rose 4%."]))["probabilities"]

`FastBertTokenizer` normalises before it splits; keras-hub splits on whitespace first, so the two
differ on some inputs (Unicode spaces, zero-width and format characters, some compatibility
characters). Checked before publishing: the held-out examples against Keras (the export stops
beyond `export.tolerance`), and `EDGE_CASES` against the SavedModel (counted, recorded).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ftk.errors import ExportError, VerificationError

logger = logging.getLogger("ftk")

LITERT_MODEL = Path("litert") / "model.tflite"


def _tokenizer_settings(preprocessor) -> dict:
    from keras_hub.tokenizers import WordPieceTokenizer

    tok = preprocessor.tokenizer
    problems = []
    if not isinstance(tok, WordPieceTokenizer):
        problems.append(f"a {type(tok).__name__} (only WordPiece)")
    elif not (tok.lowercase and tok.strip_accents and tok.split):
        problems.append("a cased tokenizer (lowercase and strip_accents are needed)")
    elif tok.special_tokens_in_strings:
        problems.append("special_tokens_in_strings=True")
    if problems:
        raise ExportError(
            f"export.litert cannot rebuild this tokenizer from TF Text's LiteRT ops: "
            f"{'; '.join(problems)}. Set export.litert = false."
        )
    vocab = list(tok.get_vocabulary())
    return {
        "vocab": vocab,
        "cls": vocab.index("[CLS]"),
        "sep": vocab.index("[SEP]"),
        "length": int(preprocessor.sequence_length),
    }


def litert_tokenizer(settings: dict):
    """`text` -> `token_ids`, `segment_ids` (int32), `padding_mask` (bool), `[batch, length]`:
    `[CLS] pieces[:length - 2] [SEP]`, zero-padded, like keras-hub's packer on one segment."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    tokenizer = tf_text.FastBertTokenizer(
        vocab=settings["vocab"],
        suffix_indicator="##",
        unknown_token="[UNK]",
        token_out_type=tf.int32,
        lower_case_nfd_strip_accents=True,
    )
    length = settings["length"]

    def tokenize(text):
        pieces = tokenizer.tokenize(text)
        # Dense packing: `combine_segments`' ragged concat becomes RaggedGather, which has no
        # LiteRT kernel; RaggedTensorToTensor (with its shape cutting the pieces) has one.
        body = pieces.to_tensor(default_value=0, shape=[None, length - 2])
        n = tf.minimum(tf.cast(pieces.row_lengths(), tf.int32), length - 2)[:, tf.newaxis]
        column = tf.fill(tf.stack([tf.shape(body)[0], 1]), 0)
        ids = tf.concat([column + settings["cls"], body, column], axis=1)
        position = tf.range(length, dtype=tf.int32)[tf.newaxis, :]
        ids = tf.where(tf.equal(position, n + 1), settings["sep"], ids)
        return {
            "token_ids": ids,
            "segment_ids": tf.zeros_like(ids),
            "padding_mask": tf.less(position, n + 2),
        }

    return tokenize


def write_text_litert(model, staging: Path, task) -> None:
    """Convert tokenizer + `model` + `task.tensor_head` to `litert/model.tflite` in `staging`."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    tokenize = litert_tokenizer(_tokenizer_settings(model.preprocessor))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return task.tensor_head(model(tokenize(text), training=False))

    # Weights frozen in first, as for images (ftk.tasks.classification.litert); freezing drops
    # the output names, which a wrapper restores (the signature's outputs: `probabilities`...).
    concrete = serve.get_concrete_function()
    names = sorted(concrete.structured_outputs)  # the flattening order of a dict
    frozen = convert_variables_to_constants_v2(concrete)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def named(text):
        return dict(zip(names, frozen(text), strict=True))

    holder = tf.Module()  # (the converter writes a signature only with a trackable object)
    holder.serve = named
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [named.get_concrete_function()], holder
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # TF Text's tokenizer ops, with LiteRT kernels
    path = staging / LITERT_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())


def litert_runner(path: Path):
    """`texts -> {output name: float32 array}` for the `.tflite` model at `path`, in TF's
    interpreter with TF Text's kernels registered."""
    import tensorflow_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    interpreter = InterpreterWithCustomOps(
        model_path=str(path),
        custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
    )
    run = interpreter.get_signature_runner()

    def outputs(texts: list[str]) -> dict[str, np.ndarray]:
        found = run(text=np.array([t.encode("utf-8") for t in texts], dtype=object))
        return {k: np.asarray(v, np.float32) for k, v in found.items()}

    return outputs


def _savedmodel_outputs(version_dir: Path, texts: list[str], name: str) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return np.asarray(serve(text=tf.constant(texts))[name], np.float32)


def verify_text_litert(version_dir: Path, texts: list[str], expected, tolerance: float) -> dict:
    """The held-out `texts` (as one batch and the first alone) against the Keras outputs
    `expected` (`VerificationError` beyond `tolerance`); `EDGE_CASES` against the SavedModel,
    counted."""
    from ftk.export.edge_texts import EDGE_CASES

    path = Path(version_dir) / LITERT_MODEL
    expected = np.asarray(expected, np.float32)
    run = litert_runner(path)
    (name, got), *_ = run(list(texts)).items()
    alone = run(list(texts[:1]))[name]
    diff = max(float(np.abs(got - expected).max()), float(np.abs(alone - expected[:1]).max()))
    if not diff <= tolerance:
        raise VerificationError(
            f"The LiteRT model differs from Keras by {diff:.2e} on the held-out examples "
            f"(> export.tolerance {tolerance:g})."
        )
    edge = np.abs(run(EDGE_CASES)[name] - _savedmodel_outputs(version_dir, EDGE_CASES, name))
    differing = int((edge.max(axis=1) > tolerance).sum())
    logger.info(
        "Export: LiteRT verified (%.1e on %d held-out texts; %d of %d edge cases differ)",
        diff,
        len(texts),
        differing,
        len(EDGE_CASES),
    )
    return {
        "litert_max_abs_diff": diff,
        "litert_edge_cases": {"texts": len(EDGE_CASES), "differing": differing},
    }
