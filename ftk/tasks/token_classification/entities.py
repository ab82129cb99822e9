"""Words' tags -> entities, and entity-level scores (seqeval, the CoNLL rules).

An entity starts at a `B-<type>` word, or at an `I-<type>` word that does not continue an
entity of the same type (conlleval's and seqeval's default reading), and runs over the
following `I-<type>` words. Its score is the mean of its words' top probabilities; its offsets
are character offsets in the sentence (`sentence[start:end] == text`). The served graph
(`ftk.tasks.token_classification.export`) decodes the same way in TensorFlow ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def tag_tables(label_names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The entity types, each tag's type index (-1 for `O`) and whether it is a `B-` tag."""
    types = sorted({name[2:] for name in label_names if name != "O"})
    type_of = np.asarray([types.index(n[2:]) if n != "O" else -1 for n in label_names], np.int32)
    is_begin = np.asarray([n.startswith("B-") for n in label_names], bool)
    return types, type_of, is_begin


def word_tags(probabilities: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tag id and its probability for each word, read at its first piece (`O`, 0.0 for a word
    past the end, `position = -1`)."""
    kept = positions >= 0
    rows = probabilities[np.where(kept, positions, 0)]
    tags = np.where(kept, rows.argmax(-1), 0).astype(np.int32)
    scores = np.where(kept, rows.max(-1), 0.0).astype(np.float32)
    return tags, scores


def spans(tags: np.ndarray, type_of: np.ndarray, is_begin: np.ndarray) -> list[tuple[int, int]]:
    """`(first word, last word + 1)` of each entity in a sentence's tag ids."""
    out, previous = [], -1
    for i, tag in enumerate(tags):
        kind = int(type_of[tag])
        if kind >= 0 and (is_begin[tag] or kind != previous):
            out.append([i, i + 1])
        elif kind >= 0:
            out[-1][1] = i + 1
        previous = kind
    return [tuple(s) for s in out]


def decode(
    sentence: str,
    tags: np.ndarray,
    scores: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    label_names: list[str],
) -> list[dict[str, Any]]:
    """The entities of one sentence from its words' tags, scores and byte offsets."""
    types, type_of, is_begin = tag_tables(label_names)
    data = sentence.encode("utf-8")
    out = []
    for first, last in spans(tags, type_of, is_begin):
        begin, end = int(starts[first]), int(ends[last - 1])
        prefix = len(data[:begin].decode("utf-8"))
        text = data[begin:end].decode("utf-8")
        out.append(
            {
                "text": text,
                "type": types[type_of[tags[first]]],
                "start": prefix,
                "end": prefix + len(text),
                "score": float(np.mean(scores[first:last])),
            }
        )
    return out


def gold_predictions(
    probabilities: np.ndarray, gold_positions: list[np.ndarray], label_names: list[str]
) -> list[list[str]]:
    """The predicted tag of every gold word (its first piece's argmax)."""
    out = []
    for probs, positions in zip(probabilities, gold_positions, strict=True):
        tags, _ = word_tags(probs, positions)
        out.append([label_names[t] for t in tags])
    return out


def wrong_spans(
    tokens: list[list[str]],
    gold: list[list[str]],
    probabilities: np.ndarray,
    gold_positions: list[np.ndarray],
    label_names: list[str],
    count: int = 20,
) -> list[dict[str, Any]]:
    """The `count` most confident predicted entities that are not gold entities (a wrong type
    or wrong boundaries included), each with what the gold tags say over the same words."""
    _, type_of, is_begin = tag_tables(label_names)
    ids = {name: i for i, name in enumerate(label_names)}
    out = []
    for words, tags, probs, positions in zip(
        tokens, gold, probabilities, gold_positions, strict=True
    ):
        predicted, scores = word_tags(probs, positions)
        gold_ids = np.asarray([ids[t] for t in tags], np.int32)
        truth = {
            (a, b, label_names[gold_ids[a]][2:]) for a, b in spans(gold_ids, type_of, is_begin)
        }
        for a, b in spans(predicted, type_of, is_begin):
            kind = label_names[predicted[a]][2:]
            if (a, b, kind) not in truth:
                out.append(
                    {
                        "span": " ".join(words[a:b]),
                        "predicted": kind,
                        "gold": " ".join(tags[a:b]),
                        "score": float(np.mean(scores[a:b])),
                        "sentence": " ".join(words),
                    }
                )
    return sorted(out, key=lambda x: -x["score"])[:count]


def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Entity precision, recall and F1 (micro over entities, as seqeval and conlleval report
    them), macro-F1 over types, per-type scores, and word accuracy."""
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    words = [
        (g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)
    ]
    per_type = {
        name: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for name, v in report.items()
        if not name.endswith(" avg")
    }
    micro = report["micro avg"]
    return {
        "entity_precision": float(micro["precision"]),
        "entity_recall": float(micro["recall"]),
        "entity_f1": float(micro["f1-score"]),
        "entity_macro_f1": float(report["macro avg"]["f1-score"]),
        "word_accuracy": float(np.mean([g == p for g, p in words])) if words else 0.0,
        "entities": int(micro["support"]),
        "num_examples": len(gold),
        "per_type": per_type,
    }
