"""Conversation readers and splits (`ftk.data.chat`): the record shapes, the errors that name
the place, and splits that keep a prompt's conversations on one side."""

import json

import pytest

from ftk.config.schema import DataConfig
from ftk.data.chat import load_chat_splits, read_chatterbot, read_records
from ftk.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_every_record_shape_reads_as_a_conversation(tmp_path):
    lines = [
        {"prompt": "Hi", "response": "Hello"},
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"instruction": "Greet", "input": "", "output": "Hey"},
        {
            "messages": [
                {"role": "system", "content": "Be brief"},
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"},
            ]
        },
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    got = read_records(path, DataConfig())
    assert got[0] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert got[1][0]["content"] == "Add\n\n2 and 3" and got[1][1]["content"] == "5"
    assert got[2][0]["content"] == "Greet"
    assert [m["role"] for m in got[3]] == ["system", "user", "assistant"]
    as_json = write(tmp_path / "d.json", json.dumps(lines))
    assert read_records(as_json, DataConfig()) == got
    csv = write(tmp_path / "d.csv", "question,answer\nHi,Hello\n")
    config = DataConfig(prompt_column="question", response_column="answer")
    assert read_records(csv, config) == [got[0]]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"prompt": "x"}\n', r"d\.jsonl:1 has no 'response' field"),
        ('{"prompt": "x", "response": ""}\n', r"response at .*d\.jsonl:1 must be non-empty"),
        ('{"prompt": "x", "response": "y"}\n{oops\n', r"d\.jsonl:2 is not valid JSON"),
        ('{"messages": [{"role": "user", "content": "x"}]}\n', "must be the assistant's reply"),
        ('{"messages": [{"role": "bot", "content": "x"}]}\n', r"Message 0 at .*role"),
        ('["a list"]\n', "Expected a JSON object"),
    ],
)
def test_a_bad_record_names_its_file_line_and_field(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_records(write(tmp_path / "d.jsonl", text), DataConfig())


def test_other_suffixes_are_refused_naming_what_is_read(tmp_path):
    with pytest.raises(DataError, match=r"\.jsonl, \.json or \.csv"):
        read_records(write(tmp_path / "d.txt", "x"), DataConfig())


def test_splits_keep_a_prompt_on_one_side_and_drop_duplicates(tmp_path):
    rows = [{"prompt": f"q{i % 30}", "response": f"a{i}"} for i in range(90)]
    rows.append(dict(rows[0]))  # an exact duplicate
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows))
    config = DataConfig(path=str(path), validation_split=0.1, test_split=0.2)
    splits = load_chat_splits(config, lambda v: tmp_path / v, seed=1)
    assert splits.duplicates_removed == 1 and splits.label_names == []
    sides = [
        {c[0]["content"] for c in getattr(splits, n).conversations}
        for n in ("train", "validation", "test")
    ]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(len(getattr(splits, n)) for n in ("train", "validation", "test")) == 90
    assert splits.test.inputs[0] == splits.test.conversations[0][0]["content"]
    again = load_chat_splits(config, lambda v: tmp_path / v, seed=1)
    assert again.fingerprint == splits.fingerprint


def test_the_packaged_chatterbot_corpus_reads():
    pairs = read_chatterbot()
    assert len(pairs) == 898
    assert all(p[0]["role"] == "user" and p[1]["role"] == "assistant" for p in pairs)
