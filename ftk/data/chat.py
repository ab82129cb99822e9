"""Conversations for instruction tuning: readers, and seeded train/validation/test splits.

Every example is a conversation, a list of `{"role", "content"}` messages ending with the
assistant's reply (the response the loss is computed on). Readers:

- JSON lines (`.jsonl`), a JSON list (`.json`) or CSV (`.csv`) with a prompt and a response
  column (`data.prompt_column`, `data.response_column`; `prompt` / `response` by default), or
  Alpaca's `instruction` / `input` / `output` (found by name), or a `messages` list in the chat
  format (`[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]`);
- `example:chatterbot`: the English question/answer pairs of PyPI `chatterbot-corpus` (BSD).

A split keeps every conversation with the same prompt on one side, so the held-out prompts are
never seen in training (the corpus answers many questions in several ways). Standard library
and NumPy only.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftk.config.schema import DataConfig
from ftk.data.splits import Examples, Splits, carve, drop_duplicates
from ftk.errors import DataError

EXAMPLE_CHATTERBOT = "example:chatterbot"
CHATTERBOT_REQUIREMENT = "chatterbot-corpus==1.3.3"
ROLES = ("system", "user", "assistant")


@dataclass
class Conversations(Examples):
    """Examples whose `inputs` are the last user message (what a served model is sent) and
    whose `conversations` are the whole exchanges, each ending with the assistant's reply.
    `labels` stays all zeros (no classes)."""

    conversations: list[list[dict]] = field(default_factory=list)

    @property
    def responses(self) -> list[str]:
        return [c[-1]["content"] for c in self.conversations]


def _check_messages(messages, origin: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"`messages` must be a non-empty list of messages at {origin}.")
    out = []
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ROLES
            or not isinstance(m.get("content"), str)
        ):
            raise DataError(
                f"Message {i} at {origin} must be {{'role': one of {list(ROLES)}, 'content': "
                f"text}}. Received: {str(m)[:120]}"
            )
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "assistant":
        raise DataError(
            f"The last message at {origin} must be the assistant's reply (the response "
            f"trained on). Received role {out[-1]['role']!r}."
        )
    if not any(m["role"] == "user" for m in out[:-1]):
        raise DataError(f"The conversation at {origin} has no user message before the reply.")
    return out


def to_conversation(record: dict, config: DataConfig, origin: str) -> list[dict]:
    """One record (a JSON object or a CSV row) as a conversation."""
    if not isinstance(record, dict):
        raise DataError(f"Expected a JSON object at {origin}. Received: {str(record)[:120]}")
    if "messages" in record:
        return _check_messages(record["messages"], origin)
    prompt_key, response_key = config.prompt_column, config.response_column
    if prompt_key not in record and "instruction" in record and "output" in record:
        prompt = str(record["instruction"])
        if str(record.get("input") or "").strip():
            prompt = f"{prompt}\n\n{record['input']}"
        response = record["output"]
    else:
        missing = [k for k in (prompt_key, response_key) if k not in record]
        if missing:
            raise DataError(
                f"{origin} has no {' and no '.join(repr(k) for k in missing)} field. Expected "
                f"data.prompt_column={prompt_key!r} and data.response_column={response_key!r}, "
                "Alpaca's instruction/input/output, or a `messages` list. Received fields: "
                f"{sorted(record)}"
            )
        prompt, response = record[prompt_key], record[response_key]
    for key, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"The {key} at {origin} must be non-empty text. Received: {value!r}")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def read_records(path: Path, config: DataConfig) -> list[list[dict]]:
    """The conversations in a `.jsonl`, `.json` or `.csv` file."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e}).") from None
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((json.loads(line), f"{path}:{n}"))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{n} is not valid JSON ({e.msg}).") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}).") from None
        if not isinstance(data, list):
            raise DataError(
                f"{path} must hold a JSON list of records. Received a {type(data).__name__}."
            )
        records = [(r, f"{path}[{i}]") for i, r in enumerate(data)]
    elif suffix == ".csv":
        rows = csv.DictReader(text.splitlines())
        records = [(r, f"{path}:{i + 2}") for i, r in enumerate(rows)]
    else:
        raise DataError(
            f"`data.path` must be a .jsonl, .json or .csv file, or {EXAMPLE_CHATTERBOT!r}. "
            f"Received: {path}"
        )
    if not records:
        raise DataError(f"No examples found in {path}.")
    return [to_conversation(r, config, origin) for r, origin in records]


def chatterbot_dir() -> Path:
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"`data.path = {EXAMPLE_CHATTERBOT!r}` needs the package {CHATTERBOT_REQUIREMENT}. "
            f"Install it with: pip install --no-deps {CHATTERBOT_REQUIREMENT}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "english"


def read_chatterbot() -> list[list[dict]]:
    """The unique English question/answer pairs of chatterbot-corpus (its YAML files; the
    first two turns of each conversation), in file order."""
    import yaml

    pairs, seen = [], set()
    for path in sorted(chatterbot_dir().glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for turns in data.get("conversations", []):
            if len(turns) < 2 or not all(isinstance(t, str) for t in turns[:2]):
                continue
            prompt, response = turns[0].strip(), turns[1].strip()
            if prompt and response and (prompt, response) not in seen:
                seen.add((prompt, response))
                pairs.append(
                    [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": response},
                    ]
                )
    return pairs


def read_conversations(value: str, config: DataConfig, resolve) -> list[list[dict]] | None:
    """`value` (a `data.*path`) read as conversations; `None` for an empty value."""
    if not value:
        return None
    if value == EXAMPLE_CHATTERBOT:
        return read_chatterbot()
    path = resolve(value)
    if not path.is_file():
        raise DataError(f"No such data file: {path}. Received: {value!r}")
    return read_records(path, config)


def _prompt_key(conversation: list[dict]) -> str:
    return json.dumps(conversation[:-1], sort_keys=True)


def _to_examples(conversations: list[list[dict]]) -> Conversations:
    return Conversations(
        inputs=[
            next(m["content"] for m in reversed(c[:-1]) if m["role"] == "user")
            for c in conversations
        ],
        labels=np.zeros([len(conversations)], np.int32),
        conversations=conversations,
    )


def _take(pool: list[list[dict]], fraction: float, rng: random.Random) -> tuple[list, list]:
    """(taken, rest): about `fraction` of the conversations, whole prompts at a time."""
    groups: dict[str, list] = {}
    for c in pool:
        groups.setdefault(_prompt_key(c), []).append(c)
    keys = list(groups)
    rng.shuffle(keys)
    target, taken, rest = round(len(pool) * fraction), [], []
    for key in keys:
        (taken if len(taken) < target else rest).extend(groups[key])
    return taken, rest


def _fingerprint(splits: dict[str, list]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        for c in splits[name]:
            digest.update(f"{name}\t{json.dumps(c, sort_keys=True)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def load_chat_splits(config: DataConfig, resolve, seed: int) -> Splits:
    """Train, validation and test conversations from `[data]`, exact duplicates dropped."""
    found = {}
    for name, value in (
        ("path", config.path),
        ("validation_path", config.validation_path),
        ("test_path", config.test_path),
    ):
        found[name] = read_conversations(value, config, resolve)
    pool, duplicates = drop_duplicates(found["path"] or [], lambda c: json.dumps(c, sort_keys=True))
    if not pool:
        raise DataError(f"No examples found. Received: data.path={config.path!r}")
    rng = random.Random(seed)
    train, validation, test = carve(
        pool, found["validation_path"], found["test_path"], config, rng, _take
    )
    if not train or not test:
        raise DataError(
            f"After splitting, train has {len(train)} and test {len(test)} conversations; both "
            "need some. Add data, or lower data.validation_split / data.test_split."
        )
    rng.shuffle(train)
    return Splits(
        train=_to_examples(train),
        validation=_to_examples(validation),
        test=_to_examples(test),
        label_names=[],
        fingerprint=_fingerprint({"train": train, "validation": validation, "test": test}),
        duplicates_removed=duplicates,
    )
