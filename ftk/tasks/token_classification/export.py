"""The token classifier's exports: a SavedModel that takes raw sentences and returns their
entities, and ONNX of the tensor model (token ids in, per-piece probabilities out).

`serving_default`: `text` (string `[batch]`) ->
`entity_text`, `entity_type` (string `[batch, max_entities]`, "" past each sentence's own),
`entity_start`, `entity_end` (int32 character offsets, `text[start:end]`; -1 past the end),
`entity_score` (float32, the mean of the entity's words' top probabilities; 0 past the end),
`num_entities` (int32 `[batch]`). The words are cut, tokenized and decoded in the graph
exactly as `ftk.tasks.token_classification.encode` and `.entities` do in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ftk.tasks.token_classification.encode import encode
from ftk.tasks.token_classification.entities import tag_tables

TEXT_INPUT = "text"
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
OUTPUTS = (
    "entity_text",
    "entity_type",
    "entity_start",
    "entity_end",
    "entity_score",
    "num_entities",
)


def decode_entities(sentences, probabilities, words: dict, label_names: list[str]) -> dict:
    """Graph ops: per-piece probabilities `[batch, length, tags]` and the words of `encode` ->
    the padded entity outputs (see the module docstring)."""
    types, type_of, is_begin = tag_tables(label_names)
    position = words["position"]
    kept = position >= 0
    rows = tf.gather(probabilities, tf.maximum(position, 0), batch_dims=1)  # [b, w, tags]
    tag = tf.where(kept, tf.argmax(rows, -1, output_type=tf.int32), 0)
    score = tf.where(kept, tf.reduce_max(rows, -1), 0.0)
    kind = tf.gather(tf.constant(type_of), tag)
    previous = tf.pad(kind[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    begins = (kind >= 0) & (tf.gather(tf.constant(is_begin), tag) | (kind != previous))
    index = tf.cumsum(tf.cast(begins, tf.int32), axis=1) - 1  # entity of each word, in its row
    counts = tf.reduce_sum(tf.cast(begins, tf.int32), axis=1)
    batch, most = tf.shape(kind)[0], tf.maximum(tf.reduce_max(counts), 0)
    rows_index = tf.range(batch)[:, None] * most + index
    segment = tf.where(kind >= 0, rows_index, batch * most)  # words outside entities: dropped
    n = batch * most + 1
    first = tf.math.unsorted_segment_min(words["start"], segment, n)[:-1]
    last = tf.math.unsorted_segment_max(words["end"], segment, n)[:-1]
    mean = tf.math.unsorted_segment_mean(score, segment, n)[:-1]
    kinds = tf.math.unsorted_segment_max(kind, segment, n)[:-1]
    shape = tf.stack([batch, most])
    first, last = tf.reshape(first, shape), tf.reshape(last, shape)
    valid = tf.range(most)[None, :] < counts[:, None]
    text = tf.broadcast_to(sentences[:, None], shape)
    first = tf.where(valid, first, 0)
    span = tf.strings.substr(text, first, tf.where(valid, last - first, 0))
    start = tf.strings.length(tf.strings.substr(text, tf.zeros_like(first), first), "UTF8_CHAR")
    names = tf.gather(types + [""], tf.where(valid, tf.reshape(kinds, shape), len(types)))
    return {
        "entity_text": tf.where(valid, span, ""),
        "entity_type": names,
        "entity_start": tf.where(valid, start, -1),
        "entity_end": tf.where(valid, start + tf.strings.length(span, "UTF8_CHAR"), -1),
        "entity_score": tf.where(valid, tf.reshape(mean, shape), 0.0),
        "num_entities": counts,
    }


def serve_function(model, tokenizer, label_names: list[str], sequence_length: int):
    """The `serving_default` `tf.function`: raw sentences -> entities."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    def serve(text):
        encoded = encode(tokenizer, text, sequence_length)
        logits = model({k: encoded[k] for k in MODEL_INPUTS}, training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return decode_entities(text, probabilities, encoded, label_names)

    return serve


def write_savedmodel(model, tokenizer, label_names: list[str], sequence_length: int, path: Path):
    import keras

    tokenizer(tf.constant(["build"]))  # builds the tokenizer's lookup tables
    archive = keras.export.ExportArchive()
    archive.track(tokenizer)  # the model's variables are tracked through the endpoint
    archive.add_endpoint(
        "serving_default", serve_function(model, tokenizer, label_names, sequence_length)
    )
    archive.write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "labels.txt").write_text("\n".join(label_names) + "\n", encoding="utf-8")


def write_onnx(model, sample: dict, path: Path, metadata: dict[str, str]) -> None:
    """ONNX of the tensor model: `token_ids`, `segment_ids`, `padding_mask` (`[batch, length]`)
    -> `probabilities` `[batch, length, tags]`."""
    from ftk.export.onnx import convert_function, tensor_specs

    specs = tensor_specs({k: np.asarray(sample[k]) for k in MODEL_INPUTS})
    names = [spec.name for spec in specs]

    @tf.function(input_signature=specs)
    def forward(*inputs):
        logits = model(dict(zip(names, inputs, strict=True)), training=False)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    convert_function(forward, specs, path, metadata)
