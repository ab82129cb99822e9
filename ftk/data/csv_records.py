"""Labelled CSV files, shared by the text and image readers: header row, one input column
(a text, or an image path) and one label column, every problem named by `file:line`."""

from __future__ import annotations

import csv
from pathlib import Path

from ftk.errors import DataError


def not_utf8(path, e: UnicodeDecodeError, replace_hint: bool = True) -> DataError:
    """The error for a file that is not UTF-8, with the way out."""
    hint = (
        ", or set data.decode_errors='replace' to replace undecodable bytes with U+FFFD"
        if replace_hint
        else ""
    )
    return DataError(
        f"{path} is not UTF-8 text ({e.reason} at byte {e.start}). Re-encode it as UTF-8{hint}."
    )


def read_records(
    path: Path,
    input_column: str,
    label_column: str,
    decode_errors: str = "strict",
    what: str = "a CSV file",
    input_key: str = "data.text_column",
    input_role: str = "",
    replace_hint: bool = True,
) -> list[tuple[str, str, str]]:
    """`(input, label, origin)` for every row; labels are stripped and must not be empty.

    `input_column` (the config key `input_key`) names the inputs and `label_column` the
    labels; a missing column lists the columns found. `input_role` (like
    `" for the image paths"`) goes into that message; `what` says what kind of file was
    expected; `replace_hint` whether a UTF-8 error suggests data.decode_errors='replace'.
    """
    if not path.is_file():
        raise DataError(f"data.format='csv' needs {what}. Received: {str(path)!r} (not a file)")
    records = []
    try:
        # utf-8-sig: spreadsheets often start CSV files with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig", errors=decode_errors) as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            for key, column, role in (
                (input_key, input_column, input_role),
                ("data.label_column", label_column, ""),
            ):
                if column not in columns:
                    raise DataError(
                        f"{path} has no column {column!r}{role} (set by {key}). "
                        f"Columns found: {columns}. Received: {key}={column!r}"
                    )
            for line, record in enumerate(reader, start=2):
                value, label = record[input_column], record[label_column]
                if value is None or label is None:
                    raise DataError(f"{path}:{line} has fewer columns than the header.")
                if not label.strip():
                    raise DataError(f"Empty label at {path}:{line}. Every row needs a label.")
                records.append((value, label.strip(), f"{path}:{line}"))
    except UnicodeDecodeError as e:
        raise not_utf8(path, e, replace_hint) from None
    except csv.Error as e:
        raise DataError(f"{path} is not a valid CSV file: {e}") from None
    return records
