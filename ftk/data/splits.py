"""Labelled examples, the label map, and seeded, stratified train/validation/test splits.

Task-independent: an example's input is whatever the task reads (text, an image path).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from ftk.config.schema import DataConfig
from ftk.data.conflicts import Conflicts, resolve
from ftk.errors import DataError


@dataclass(frozen=True)
class Row:
    """One raw example: its input (a text, or an image's path), its label name, and where it
    came from (for errors)."""

    input: str
    label: str
    origin: str

    @property
    def text(self) -> str:
        return self.input


@dataclass(frozen=True)
class Skipped:
    """A file that was left out, and why (`"not an image file (.txt)"`, `"truncated ..."`)."""

    path: str
    reason: str


@dataclass
class Examples:
    """Inputs (texts, or image paths) with integer label ids."""

    inputs: list[str] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros([0], np.int32))

    @property
    def texts(self) -> list[str]:
        return self.inputs

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass
class Splits:
    """Train, validation and test examples, the label names (index = id), a fingerprint, how
    many exact duplicates were dropped from the pool before splitting, the files a reader
    left out (`Skipped`), and the examples found under more than one label and what was done
    with them (`Conflicts`, `data.conflicting_labels`)."""

    train: Examples
    validation: Examples
    test: Examples
    label_names: list[str]
    fingerprint: str
    duplicates_removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    conflicts: Conflicts = field(default_factory=Conflicts)

    def label_summary(self) -> str:
        """What the run's log says about the labels ("5 labels")."""
        return f"{len(self.label_names)} labels"

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per label in each split (`{"examples": n}` for a task without labels)."""
        if not self.label_names:
            return {n: {"examples": len(getattr(self, n))} for n in ("train", "validation", "test")}
        out = {}
        for name in ("train", "validation", "test"):
            counter = Counter(getattr(self, name).labels.tolist())
            out[name] = {label: counter.get(i, 0) for i, label in enumerate(self.label_names)}
        return out


def label_map(rows: list[Row], config: DataConfig) -> list[str]:
    """The label names: `data.labels` if given (every label must be one of them), else sorted."""
    found = sorted({row.label for row in rows})
    if not config.labels:
        if len(found) < 2:
            where = rows[0].origin.rsplit(":", 1)[0] if rows else "the data"
            raise DataError(
                f"Found {len(found)} label(s) in {where} ({found}); a classifier needs at least 2. "
                "Check data.path and data.label_column (or the label folders)."
            )
        return found
    allowed = set(config.labels)
    for row in rows:
        if row.label not in allowed:
            raise DataError(
                f"Unknown label {row.label!r} at {row.origin}. Expected one of data.labels="
                f"{config.labels}; add it there or fix the data."
            )
    missing = [label for label in config.labels if label not in set(found)]
    if missing:
        raise DataError(
            f"Label(s) {missing} from data.labels have no examples in {config.path!r}. "
            "Every class needs training examples; remove them from data.labels or add data."
        )
    return list(config.labels)


def _to_examples(rows: list[Row], ids: dict[str, int]) -> Examples:
    return Examples(
        inputs=[row.input for row in rows],
        labels=np.asarray([ids[row.label] for row in rows], dtype=np.int32),
    )


def _stratified_take(
    rows: list[Row], fraction: float, rng: random.Random, keep_each: bool = True
) -> tuple[list, list]:
    """Split `rows` into (taken, rest): `round(len(rows) * fraction)` rows in all, shared out
    over labels in proportion (largest remainders). With `keep_each`, every label with 2+ rows
    gives at least one row to each side."""
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    labels = sorted(by_label)
    exact = {label: len(by_label[label]) * fraction for label in labels}
    quota = {label: int(exact[label]) for label in labels}
    short = round(len(rows) * fraction) - sum(quota.values())
    for label in sorted(labels, key=lambda lb: exact[lb] - quota[lb], reverse=True)[:short]:
        quota[label] += 1
    taken, rest = [], []
    for label in labels:
        group = by_label[label][:]
        rng.shuffle(group)
        k = quota[label]
        if keep_each and fraction > 0 and len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)
        taken.extend(group[:k])
        rest.extend(group[k:])
    return taken, rest


def _fingerprint(splits: dict[str, list[Row]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        for row in splits[name]:
            digest.update(f"{name}\t{row.label}\t".encode())
            digest.update(row.input.encode("utf-8", errors="replace"))
    return f"sha256:{digest.hexdigest()}"


def build_splits(
    pool: list[Row],
    validation: list[Row] | None,
    test: list[Row] | None,
    config: DataConfig,
    seed: int,
) -> Splits:
    """Carve missing validation/test splits out of `pool` (stratified, seeded), map labels."""
    if not pool:
        raise DataError(f"No examples found. Received: data.path={config.path!r}")
    pool, duplicates, conflicts = resolve(pool, config.conflicting_labels)
    names = label_map(pool, config)
    strict = DataConfig(**{**config.__dict__, "labels": names})
    for rows in (validation, test):
        if rows is not None:
            label_map(rows + pool, strict)  # unknown labels in the extra files are errors
    rng = random.Random(seed)
    train = list(pool)
    if test is None:
        test, train = _stratified_take(train, config.test_split, rng)
    if validation is None:
        fraction = config.validation_split / max(1e-9, 1.0 - config.test_split)
        validation, train = _stratified_take(train, min(fraction, 0.9), rng)
    if config.max_train_examples and len(train) > config.max_train_examples:
        keep = config.max_train_examples / len(train)
        train, _ = _stratified_take(train, keep, rng, keep_each=False)
    missing = sorted({row.label for row in pool} - {row.label for row in train})
    if missing:
        raise DataError(
            f"Label(s) {missing} have no training examples after splitting; add data for them "
            "or lower data.validation_split / data.test_split."
        )
    if not test:
        raise DataError(
            "The test split is empty. Give data.test_path, or data.test_split > 0 with enough data."
        )
    rng.shuffle(train)
    ids = {name: i for i, name in enumerate(names)}
    return Splits(
        train=_to_examples(train, ids),
        validation=_to_examples(validation, ids),
        test=_to_examples(test, ids),
        label_names=names,
        fingerprint=_fingerprint({"train": train, "validation": validation, "test": test}),
        duplicates_removed=duplicates,
        conflicts=conflicts,
    )


def drop_duplicates(items: list, key) -> tuple[list, int]:
    """`items` without the exact duplicates (by `key(item)`), first kept; and how many went."""
    kept, seen = [], set()
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept, len(items) - len(kept)


def random_take(items: list, fraction: float, rng: random.Random) -> tuple[list, list]:
    """`(taken, rest)`: `round(len(items) * fraction)` items drawn at random (for `carve`)."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    n = round(len(items) * fraction)
    return shuffled[:n], shuffled[n:]


def carve(pool: list, validation, test, config: DataConfig, rng: random.Random, take):
    """`(train, validation, test)`: the splits not given (None) carved out of `pool` with
    `take(items, fraction, rng) -> (taken, rest)`, then the training cap applied to a shuffled
    copy (`data.max_train_examples`). For tasks
    without class labels (conversations, tagged sentences); labelled data: `build_splits`."""
    train = pool
    if test is None:
        test, train = take(train, config.test_split, rng)
    if validation is None:
        fraction = config.validation_split / max(1e-9, 1.0 - config.test_split)
        validation, train = take(train, min(fraction, 0.9), rng)
    if config.max_train_examples and len(train) > config.max_train_examples:
        train = list(train)
        rng.shuffle(train)
        train = train[: config.max_train_examples]
    return train, validation, test
