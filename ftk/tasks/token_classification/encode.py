"""Sentences -> word pieces, with each word's first piece and its place in the sentence.

One TensorFlow function (`encode`) serves training, evaluation, the Keras reference and the
SavedModel, so a served sentence is cut exactly as the training sentences were:

1. the raw sentence is split into words the way BERT's basic tokenizer splits (whitespace
   dropped; every punctuation mark and CJK character its own word), keeping each word's byte
   offsets in the *original* string;
2. each word goes through the keras-hub tokenizer (lowercasing, accents, WordPiece);
3. the pieces are packed as `[CLS] pieces [SEP]` into `model.sequence_length`; a word whose
   first piece falls past the end is not predicted (`position = -1`).

Training sentences are the gold words joined by spaces; a gold word that the basic tokenizer
splits further ("@user", "U.S.") is labelled on its first piece only, the others are masked
out of the loss (`align`). A gold word's prediction is its first piece's (`gold_positions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftk.errors import DataError

BATCH = 256  # sentences encoded per call


def _patterns() -> tuple[str, str]:
    from keras_hub.src.tokenizers import word_piece_tokenizer as wp

    return wp.WHITESPACE_PUNCTUATION_AND_CJK_REGEX, wp.PUNCTUATION_AND_CJK_REGEX


def split_words(sentences):
    """Ragged `[batch, (words)]` words with their byte offsets (start, end) in `sentences`."""
    import tensorflow_text as tf_text

    split, keep = _patterns()
    return tf_text.regex_split_with_offsets(
        sentences, delim_regex_pattern=split, keep_delim_regex_pattern=keep
    )


def encode(tokenizer, sentences, sequence_length: int) -> dict:
    """Graph ops (call inside a `tf.function`): string `[batch]` -> the model's inputs
    (`token_ids`, `segment_ids`, `padding_mask`, `[batch, sequence_length]`) and per word
    `position` (its first piece, -1 past the end or none), `start` and `end` (byte offsets),
    `[batch, words]`, padded with -1 / 0."""
    import tensorflow as tf

    words, starts, ends = split_words(sentences)
    pieces = tokenizer(words.flat_values)  # ragged [total words, (pieces)]
    if not isinstance(pieces, tf.RaggedTensor):
        pieces = tf.RaggedTensor.from_tensor(pieces)
    counts = tf.cast(pieces.row_lengths(), tf.int32)
    ids = tf.RaggedTensor.from_row_splits(
        pieces.flat_values, tf.gather(pieces.row_splits, words.row_splits)
    )
    limit = sequence_length - 2
    ids = ids[:, :limit]
    # Each word's first piece: the pieces before it in its sentence, +1 for [CLS].
    before = tf.cumsum(counts, exclusive=True)
    row_first = tf.gather(tf.concat([before, [tf.reduce_sum(counts)]], 0), words.row_splits[:-1])
    first = before - tf.gather(row_first, words.value_rowids()) + 1
    position = tf.where((counts > 0) & (first <= limit), first, -1)
    batch = tf.shape(ids.row_splits)[0] - 1
    cls = tf.fill([batch, 1], tf.cast(tokenizer.cls_token_id, ids.dtype))
    sep = tf.fill([batch, 1], tf.cast(tokenizer.sep_token_id, ids.dtype))
    packed = tf.concat([cls, ids, sep], axis=1)
    shape = [None, sequence_length]
    token_ids = packed.to_tensor(tokenizer.pad_token_id, shape=shape)
    padding_mask = tf.ones_like(packed, tf.bool).to_tensor(False, shape=shape)
    return {
        "token_ids": tf.cast(token_ids, tf.int32),
        "segment_ids": tf.zeros_like(token_ids, tf.int32),
        "padding_mask": padding_mask,
        "position": words.with_flat_values(position).to_tensor(-1),
        "start": tf.cast(starts.to_tensor(0), tf.int32),
        "end": tf.cast(ends.to_tensor(0), tf.int32),
    }


def encode_numpy(tokenizer, sentences: list[str], sequence_length: int) -> dict[str, list]:
    """`encode` on a list of sentences, in batches: each key a list of per-sentence NumPy
    arrays (word arrays trimmed to the sentence's own words)."""
    import tensorflow as tf

    fn = tf.function(lambda s: encode(tokenizer, s, sequence_length))
    out: dict[str, list] = {}
    for begin in range(0, len(sentences), BATCH):
        batch = fn(tf.constant(sentences[begin : begin + BATCH], tf.string))
        words = split_words(tf.constant(sentences[begin : begin + BATCH]))[0].row_lengths()
        for key, value in batch.items():
            value = value.numpy()
            for row, n in zip(value, words.numpy(), strict=True):
                out.setdefault(key, []).append(row[:n] if key in WORD_KEYS else row)
    return out


WORD_KEYS = ("position", "start", "end")


def words_per_token(tokens: list[list[str]], origins: list[str]) -> list[np.ndarray]:
    """How many basic-tokenizer words each gold word becomes (1 for most; "@user" is 2)."""
    import tensorflow as tf

    flat = [t for sentence in tokens for t in sentence]
    counts = split_words(tf.constant(flat or [""], tf.string))[0].row_lengths().numpy()
    out, offset = [], 0
    for sentence, origin in zip(tokens, origins, strict=True):
        row = counts[offset : offset + len(sentence)]
        if (row == 0).any():
            word = sentence[int(np.argmax(row == 0))]
            raise DataError(f"The word {word!r} at {origin} has no letters, digits or marks.")
        out.append(row)
        offset += len(sentence)
    return out


@dataclass
class Encoding:
    """A split encoded for the model: inputs, per-piece targets and loss weights, and each gold
    word's first-piece position (-1 past `model.sequence_length`)."""

    inputs: dict[str, np.ndarray]
    targets: np.ndarray  # [n, sequence_length] tag ids (0 where unlabelled)
    weights: np.ndarray  # [n, sequence_length] 1.0 on each gold word's first piece
    gold_positions: list[np.ndarray]
    truncated: int  # gold words past the end


def align(examples, tag_ids: dict[str, int], tokenizer, sequence_length: int) -> Encoding:
    """Encode tagged sentences and put each gold word's tag on its first piece."""
    encoded = encode_numpy(tokenizer, examples.inputs, sequence_length)
    n = len(examples)
    targets = np.zeros([n, sequence_length], np.int32)
    weights = np.zeros([n, sequence_length], np.float32)
    gold_positions, truncated = [], 0
    splits = words_per_token(examples.tokens, examples.origins)
    for i, (tags, parts) in enumerate(zip(examples.tags, splits, strict=True)):
        first_word = np.concatenate([[0], np.cumsum(parts)[:-1]]).astype(np.int64)
        positions = encoded["position"][i][first_word]
        gold_positions.append(positions)
        kept = positions >= 0
        truncated += int((~kept).sum())
        targets[i, positions[kept]] = [tag_ids[t] for t, k in zip(tags, kept, strict=True) if k]
        weights[i, positions[kept]] = 1.0
    inputs = {key: np.stack(encoded[key]) for key in ("token_ids", "segment_ids", "padding_mask")}
    return Encoding(inputs, targets, weights, gold_positions, truncated)
