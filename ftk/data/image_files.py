"""Image files: read `<label>/<image>` folders and CSV files of image paths, and check that
every image decodes, before anything is handed to TensorFlow.

Every reader returns `Row`s whose input is an image's absolute path and whose origin names the
file (and CSV line) it came from, so an error can point at it. `check_images` decodes every
image once, up front, so a corrupt file stops the run before training starts (or is left out
with `on_bad="skip"`), never half-way through an epoch. `ftk.data.images` (the pipeline) and
`ftk.data.tfds` (ImageFolder folders) both read folders with `scan_image_folder`.

Pillow only: TensorFlow and Keras are not imported here.

Example:

```python
rows, skipped = scan_image_folder(Path("flowers"))     # flowers/rose/1.jpg, ...
rows, bad = check_images(rows, on_bad="skip")
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ftk.data.csv_records import read_records
from ftk.data.splits import Row, Skipped
from ftk.errors import ConfigError, DataError
from ftk.progress import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
ON_BAD = ("error", "skip")
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)
MAX_LISTED = 20  # bad files listed in one error message


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _scan_class_folder(class_dir: Path) -> tuple[list[Row], list[Skipped]]:
    rows, skipped = [], []
    for entry in _visible(class_dir):
        if entry.is_dir():
            reason = "a folder inside a class folder (not read: images must sit in <label>/)"
            skipped.append(Skipped(str(entry), reason))
        elif not _is_image_name(entry):
            suffix = entry.suffix or "no suffix"
            skipped.append(Skipped(str(entry), f"not an image file ({suffix})"))
        else:
            path = os.path.abspath(entry)
            rows.append(Row(path, class_dir.name, path))
    return rows, skipped


def scan_image_folder(path: Path) -> tuple[list[Row], list[Skipped]]:
    """`<path>/<label>/<image>`: one example per image file, the folder name is the label.

    Hidden files and folders (names starting with ".") are ignored. Other files without an
    image suffix (`IMAGE_SUFFIXES`, any case) and folders nested in a class folder are returned
    as `Skipped`. A class folder without any image is an error naming it.

    Example:

    ```python
    rows, skipped = scan_image_folder(Path("flowers"))   # flowers/rose/1.jpg, ...
    rows[0].label, rows[0].input                          # ("rose", "/abs/flowers/rose/1.jpg")
    ```
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            "data.format='folder' needs a directory with one sub-folder of images per label. "
            f"Received: data.path={str(path)!r} (not a directory)"
        )
    class_dirs = [p for p in _visible(path) if p.is_dir()]
    if not class_dirs:
        raise DataError(
            f"No class folders found in {path}. Expected one sub-folder per label, each holding "
            f"image files ({' '.join(IMAGE_SUFFIXES)})."
        )
    rows, skipped, empty = [], [], []
    for class_dir in class_dirs:
        found, left_out = _scan_class_folder(class_dir)
        rows.extend(found)
        skipped.extend(left_out)
        if not found:
            empty.append(f"{class_dir} ({len(left_out)} other file(s))" if left_out else class_dir)
    if empty:
        raise DataError(
            f"Class folder(s) without images: {', '.join(map(str, empty))}. Each label folder "
            f"needs image files ({' '.join(IMAGE_SUFFIXES)}); add images or remove the folder."
        )
    return rows, skipped


def _resolve_listed(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return os.path.abspath(path if path.is_absolute() else base / path)


def _csv_row(value: str, label: str, where: str, base: Path) -> Row:
    if not value.strip():
        raise DataError(f"Empty image path at {where}. Every row needs an image path.")
    image = _resolve_listed(value.strip(), base)
    if not os.path.isfile(image):
        raise DataError(
            f"Image not found: {image} (listed at {where} as {value.strip()!r}; relative paths "
            f"are read from the CSV file's folder {base})."
        )
    return Row(image, label, where)


def read_image_csv(path: Path, path_column: str = "path", label_column: str = "label") -> list[Row]:
    """A CSV file with a header row: one image path and one label per row.

    Relative paths are resolved against the CSV file's folder; every listed file must exist.
    In a config, `data.image_column` names the path column and `data.label_column` the labels.

    Example:

    ```python
    # labels.csv:  path,label \\n  img/1.png,cat \\n  /data/2.jpg,dog
    rows = read_image_csv(Path("labels.csv"))
    rows[0].input, rows[0].origin        # ("/abs/img/1.png", "labels.csv:2")
    ```
    """
    path = Path(path)
    records = read_records(
        path,
        path_column,
        label_column,
        what="a CSV file of image paths and labels",
        input_key="data.image_column",
        input_role=" for the image paths",
        replace_hint=False,  # replacing bytes in a path cannot find the file
    )
    return [_csv_row(value, label, where, path.parent) for value, label, where in records]


# --------------------------------------------------------------------------------------------
# Checking every image up front
# --------------------------------------------------------------------------------------------


def image_problem(path: str) -> str | None:
    """Why the image at `path` cannot be used, or `None` when it decodes completely.

    Decodes all of it with Pillow (`Image.open` + `load`; `Image.verify` misses truncation).
    JPEGs are decoded at 1/8 scale (`draft`), which still reads every byte, so truncated and
    corrupt files are still caught, twice as fast. Pillow's global
    `ImageFile.LOAD_TRUNCATED_IMAGES = True`, if some code sets it, would let truncated
    files through.

    Example:

    ```python
    image_problem("cat.jpg")       # None
    image_problem("notes.png")     # "not an image (Pillow cannot identify its content)"
    ```
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as image:
            image.draft(None, (1, 1))
            image.load()
    except UnidentifiedImageError:
        return "not an image (Pillow cannot identify its content)"
    except Image.DecompressionBombError as e:
        return f"too large to decode safely ({e})"
    except Exception as e:  # any decoder failure makes the file unusable
        return f"corrupt or truncated ({type(e).__name__}: {e})"
    return None


def _bad_images_error(bad: list[tuple[Row, str]], total: int) -> DataError:
    """One line: each bad file (up to MAX_LISTED) with its reason, then what to do."""
    listed = []
    for row, reason in bad[:MAX_LISTED]:
        where = "" if row.origin == row.input else f" (listed at {row.origin})"
        listed.append(f"{row.input}{where}: {reason}")
    if len(bad) > MAX_LISTED:
        listed.append(f"... and {len(bad) - MAX_LISTED} more")
    return DataError(
        f"{len(bad)} of {total} image(s) cannot be decoded: "
        + "; ".join(listed)
        + ". Fix or remove these files, or leave them out with data.on_bad_images='skip'."
    )


def check_images(
    rows: Iterable[Row], on_bad: str = "error", workers: int = DEFAULT_WORKERS
) -> tuple[list[Row], list[Skipped]]:
    """Decode every image once (`image_problem`); returns (usable rows, skipped files).

    `on_bad="error"` raises one `DataError` listing every bad file and why (the first
    `MAX_LISTED`, then a count); `on_bad="skip"` leaves them out and returns them as
    `Skipped`. Grayscale, palette, RGBA, CMYK and 16-bit images are fine: the pipeline
    converts them to RGB. Files are decoded by `workers` threads (Pillow releases the GIL
    while decoding); the output keeps the input order.

    Example:

    ```python
    rows, skipped = check_images(rows, on_bad="skip")
    for s in skipped:
        print(s.path, s.reason)
    ```
    """
    if on_bad not in ON_BAD:
        raise ConfigError(
            f"`on_bad` must be 'error' (stop and list every bad image) or 'skip' (leave them "
            f"out). Received: on_bad={on_bad!r}"
        )
    rows = list(rows)
    unique = list(dict.fromkeys(row.input for row in rows))
    bar_kw = {"total": len(unique), "desc": "Checking images", "unit": "image"}
    if workers > 1 and len(unique) > 1:
        with ThreadPoolExecutor(min(workers, len(unique))) as pool:
            found = progress(pool.map(image_problem, unique), **bar_kw)
            problems = dict(zip(unique, found, strict=True))
    else:
        problems = {path: image_problem(path) for path in progress(unique, **bar_kw)}
    bad = [(row, problems[row.input]) for row in rows if problems[row.input]]
    if bad and on_bad == "error":
        raise _bad_images_error(bad, len(rows))
    kept = [row for row in rows if not problems[row.input]]
    skipped = [
        Skipped(row.input, reason if row.origin == row.input else f"{reason} ({row.origin})")
        for row, reason in bad
    ]
    return kept, skipped
