"""Token classification: the readers, the word-piece alignment, the entity decoding (NumPy and
the served TensorFlow graph agree; both chunk as seqeval does) and the entity metrics."""

import json
import random

import numpy as np
import pytest

from ftk.data.tagged import load_tagged_splits, read_conll, read_jsonl, tag_names
from ftk.errors import DataError
from ftk.tasks.token_classification.entities import (
    decode,
    entity_metrics,
    spans,
    tag_tables,
    word_tags,
)

NAMES = tag_names(["loc", "per"])  # O, B-loc, I-loc, B-per, I-per


def test_conll_reader_takes_the_first_and_last_columns_and_skips_docstart(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n",
        encoding="utf-8",
    )
    sentences = read_conll(path)
    assert [(t, g) for t, g, _ in sentences] == [
        (["EU", "rejects"], ["B-ORG", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
    assert sentences[1][2] == f"{path}:6"


@pytest.mark.parametrize(
    "text, message",
    [
        ("Paris\n", "train.conll:1 has one column"),
        ("Paris LOC\n", "Tag 'LOC' at .*train.conll:1 is not IOB2"),
    ],
)
def test_conll_reader_names_the_line_of_a_bad_row(tmp_path, text, message):
    path = tmp_path / "train.conll"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_conll(path)


def test_jsonl_reader_and_its_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"tokens": ["in", "Paris"], "tags": ["O", "B-loc"]}) + "\n")
    assert read_jsonl(path)[0][:2] == (["in", "Paris"], ["O", "B-loc"])
    path.write_text(json.dumps({"tokens": ["in", "Paris"], "tags": ["O"]}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1 has 2 tokens but 1 tags"):
        read_jsonl(path)
    path.write_text(json.dumps({"words": ["Paris"]}) + "\n")
    with pytest.raises(DataError, match=r'train.jsonl:1 needs "tokens" and "tags"'):
        read_jsonl(path)


def test_splits_count_entities_and_put_o_first(tmp_path):
    from ftk.config.schema import DataConfig

    lines = []
    for i in range(20):
        lines.append(json.dumps({"tokens": [f"w{i}", "Paris"], "tags": ["O", "B-loc"]}))
        lines.append(json.dumps({"tokens": ["Ann", f"v{i}"], "tags": ["B-per", "O"]}))
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    config = DataConfig(path="d.jsonl", validation_split=0.1, test_split=0.2)
    splits = load_tagged_splits(config, lambda p: tmp_path / p, seed=0)
    assert splits.label_names == NAMES
    counts = splits.counts()
    assert sum(c["sentences"] for c in counts.values()) == 40
    assert sum(c.get("loc", 0) for c in counts.values()) == 20
    assert splits.train.inputs[0] == " ".join(splits.train.tokens[0])


def test_spans_chunk_exactly_as_seqeval():
    from seqeval.metrics.sequence_labeling import get_entities

    types, type_of, is_begin = tag_tables(NAMES)
    rng = random.Random(0)
    for _ in range(500):
        tags = [rng.choice(NAMES) for _ in range(rng.randint(0, 10))]
        ids = np.asarray([NAMES.index(t) for t in tags], np.int32)
        ours = sorted((types[type_of[ids[a]]], a, b - 1) for a, b in spans(ids, type_of, is_begin))
        assert ours == sorted(get_entities(tags)), tags


def test_entity_metrics_match_seqeval_by_hand():
    gold = [["B-per", "I-per", "O", "B-loc"], ["B-loc", "O"]]
    predicted = [["B-per", "I-per", "O", "B-per"], ["B-loc", "O"]]
    metrics = entity_metrics(gold, predicted)
    # 3 gold entities, 3 predicted, 2 right (the last word of the first sentence is wrong).
    assert metrics["entity_precision"] == pytest.approx(2 / 3)
    assert metrics["entity_recall"] == pytest.approx(2 / 3)
    assert metrics["per_type"]["loc"]["recall"] == pytest.approx(0.5)
    assert metrics["word_accuracy"] == pytest.approx(5 / 6)


def _random_words(sentences, rng):
    """Words of `encode` (positions, byte offsets) with every word predicted."""
    import tensorflow as tf

    from ftk.tasks.token_classification.encode import split_words

    words, starts, ends = split_words(tf.constant(sentences))
    n = words.row_lengths().numpy()
    width = max(n)
    position = np.full([len(sentences), width], -1, np.int32)
    for i, k in enumerate(n):
        position[i, :k] = np.arange(1, k + 1)
        if k > 3 and rng.random() < 0.5:
            position[i, k - 1] = -1  # a word past the end of the sequence
    return {
        "position": position,
        "start": starts.to_tensor(0).numpy().astype(np.int32),
        "end": ends.to_tensor(0).numpy().astype(np.int32),
    }, n


def test_served_graph_decodes_the_same_entities_as_numpy():
    import tensorflow as tf

    from ftk.tasks.token_classification.export import decode_entities

    sentences = [
        "Ann Smith flew from São Paulo to New York , on Monday .",
        "naïve café owners in Zürich met @paul_walk and U.S. officials",
        "nothing here",
        "Ünïcödé Ünïcödé Ünïcödé words after accents",
    ]
    rng = np.random.default_rng(0)
    for trial in range(20):
        words, n = _random_words(sentences, random.Random(trial))
        logits = rng.normal(size=[len(sentences), 20, len(NAMES)]) * 4
        probabilities = tf.nn.softmax(logits).numpy().astype(np.float32)
        served = decode_entities(tf.constant(sentences), probabilities, words, NAMES)
        served = {k: v.numpy() for k, v in served.items()}
        for i, sentence in enumerate(sentences):
            k = n[i]
            tags, scores = word_tags(probabilities[i], words["position"][i, :k])
            expected = decode(
                sentence, tags, scores, words["start"][i, :k], words["end"][i, :k], NAMES
            )
            assert served["num_entities"][i] == len(expected)
            for j, entity in enumerate(expected):
                assert sentence[entity["start"] : entity["end"]] == entity["text"]
                assert served["entity_text"][i, j].decode() == entity["text"]
                assert served["entity_type"][i, j].decode() == entity["type"]
                assert served["entity_start"][i, j] == entity["start"]
                assert served["entity_end"][i, j] == entity["end"]
                assert served["entity_score"][i, j] == pytest.approx(entity["score"], abs=1e-6)
            assert (served["entity_start"][i, len(expected) :] == -1).all()


def test_alignment_labels_the_first_piece_of_each_gold_word(tiny_preset):
    from ftk.data.tagged import to_examples
    from ftk.presets.resolve import resolve_preset
    from ftk.tasks.token_classification.encode import align
    from ftk.tasks.token_classification.model import build_tokenizer

    tokenizer = build_tokenizer(resolve_preset(str(tiny_preset)))
    examples = to_examples(
        [
            (["coach", "@player", "song"], ["B-per", "O", "B-loc"], "t:1"),
            (["chip"] * 20, ["B-loc"] + ["I-loc"] * 19, "t:2"),
        ]
    )
    ids = {name: i for i, name in enumerate(NAMES)}
    encoding = align(examples, ids, tokenizer, sequence_length=8)
    # [CLS] coach @ player song [SEP]: "@player" is two words; only "@" (its first piece) counts.
    assert encoding.gold_positions[0].tolist() == [1, 2, 4]
    assert encoding.weights[0].tolist() == [0, 1, 1, 0, 1, 0, 0, 0]
    assert encoding.targets[0, [1, 2, 4]].tolist() == [ids["B-per"], ids["O"], ids["B-loc"]]
    # 20 words, room for 6 pieces: the rest are past the end, not predicted.
    assert (encoding.gold_positions[1] >= 0).sum() == 6
    assert encoding.truncated == 14
    assert encoding.inputs["token_ids"].shape == (2, 8)
