"""TensorFlow Datasets as a text source: a catalog name, or a prepared dataset's directory.

A catalog name that is not yet prepared in the TFDS data directory must be downloaded; TFDS
retries for minutes when offline, so ftk probes the network first and fails in seconds.
"""

from __future__ import annotations

from pathlib import Path

from ftk.config import DataConfig
from ftk.errors import DataError
from ftk.presets import host_reachable

DOWNLOAD_HOST = "storage.googleapis.com"


def _builder(name_or_dir: str):
    import tensorflow_datasets as tfds

    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        try:
            return tfds.builder_from_directory(str(path))
        except Exception as e:  # TFDS raises several types for a bad directory
            raise DataError(
                f"{path} is not a prepared TFDS dataset directory (with dataset_info.json): {e}"
            ) from None
    try:
        builder = tfds.builder(name_or_dir)
    except Exception as e:  # DatasetNotFoundError and friends
        raise DataError(
            f"Unknown TFDS dataset. Received: data.path={name_or_dir!r}. {str(e).splitlines()[0]}"
        ) from None
    if not builder.is_prepared():
        if not host_reachable(DOWNLOAD_HOST):
            raise DataError(
                f"TFDS dataset {name_or_dir!r} is not prepared in {builder.data_dir} and this "
                f"machine cannot reach {DOWNLOAD_HOST} to download it. Prepare it where you "
                "are online (`tfds build NAME`) and copy the data directory here, or set "
                "data.path to a prepared dataset directory."
            )
        builder.download_and_prepare()
    return builder


def load_tfds_split(name_or_dir: str, split: str, config: DataConfig):
    """`([(text, label), ...], label_names)` of one split, or `(None, names)` if it is absent."""
    import tensorflow_datasets as tfds

    builder = _builder(name_or_dir)
    features = builder.info.features
    for key, column in (
        ("data.text_column", config.text_column),
        ("data.label_column", config.label_column),
    ):
        if column not in features:
            raise DataError(
                f"TFDS dataset {name_or_dir!r} has no feature {column!r} (set by {key}). "
                f"Features: {list(features.keys())}. Received: {key}={column!r}"
            )
    label_feature = features[config.label_column]
    names = list(getattr(label_feature, "names", []) or [])
    prepared_splits = set(builder.info.splits.keys())
    if prepared_splits and split not in prepared_splits:
        return None, names
    ds = builder.as_dataset(split=split)
    records = [
        (ex[config.text_column], int(ex[config.label_column]) if names else ex[config.label_column])
        for ex in tfds.as_numpy(ds)
    ]
    return records, names
