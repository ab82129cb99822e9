"""Single texts or text pairs, as the model, the SavedModel and the verification take them.

An example's input is a string, or a `[first, second]` list for a pair; the keras-hub
preprocessor packs a pair `(first, second)` of string tensors as `[CLS] a [SEP] b [SEP]` with
segment ids 0 and 1, when it is given as `preprocessor(x=pair)` (a positional tuple is read as
`(x, y)`). The SavedModel of a pair model takes two inputs, `text` and `text_pair`.
"""

from __future__ import annotations

import numpy as np

TEXT_INPUT = "text"
PAIR_INPUT = "text_pair"


def is_pairs(inputs: list) -> bool:
    return bool(inputs) and isinstance(inputs[0], list | tuple)


def columns(inputs: list) -> list[list[str]]:
    """`[texts]`, or `[firsts, seconds]` for pairs."""
    if is_pairs(inputs):
        return [[pair[0] for pair in inputs], [pair[1] for pair in inputs]]
    return [list(inputs)]


def text_tensors(inputs: list):
    """A string tensor, or a tuple of two (what the preprocessor reads as a pair)."""
    import tensorflow as tf

    tensors = tuple(tf.constant(column, tf.string) for column in columns(inputs))
    return tensors if len(tensors) == 2 else tensors[0]


def raw_batches(inputs: list, batch_size: int = 32):
    """Batches of `(x,)` of raw texts or pairs for a keras-hub task's own preprocessor (what
    `model.predict` takes; the 1-tuple keeps a pair from being read as `(x, y)`)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(text_tensors(inputs)).batch(batch_size)
    return ds.map(lambda *x: ((x if len(x) == 2 else x[0]),))


def serving_arrays(inputs: list) -> dict[str, np.ndarray]:
    """`serving_default`'s keyword arguments: `{"text": ...}` (and `"text_pair"`), as object
    arrays of UTF-8 bytes."""
    names = (TEXT_INPUT, PAIR_INPUT)
    return {
        name: np.asarray([t.encode("utf-8") for t in column], dtype=object)
        for name, column in zip(names, columns(inputs), strict=False)
    }


def shown(text) -> str:
    """An input as the report shows it: a pair's two texts joined by ` ‖ `."""
    return " ‖ ".join(text) if isinstance(text, list | tuple) else text


def text_dataset(examples, config, training: bool):
    """Batches of `(texts or pairs, float32 targets [n, k])` for Keras (regression numbers,
    multi-label 0/1 vectors)."""
    import tensorflow as tf

    from ftk.data.batches import batched

    targets = np.asarray(examples.labels, np.float32)
    ds = tf.data.Dataset.from_tensor_slices((text_tensors(examples.inputs), targets))
    return batched(ds, len(examples), config, training)


def inputs_only(x, y):
    """`(x,)`: a 1-tuple, so that Keras does not read a pair `x = (a, b)` as `(x, y)`."""
    return (x,)
