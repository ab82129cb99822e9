"""How this project finds its images: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test examples and
the label names). The default reads `[data]` in config.toml with ftk's readers: a folder of
`<label>/<image>`, a CSV file of image paths and labels, or a TFDS dataset. Every image is
decoded once up front (`data.on_bad_images`).

To read from somewhere else, build `Row`s of image paths and let ftk check, split and label them:

    rows = [Row(path, label, origin=f"catalog.db:{id}") for id, path, label in query()]
    rows, bad = check_images(rows, config.data.on_bad_images)
    return build_splits(rows, None, None, config.data, seed=config.run.seed)

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import (  # noqa: F401  (check_images, Row, build_splits: for custom readers)
    Config,
    Row,
    Splits,
    build_splits,
    check_images,
    load_image_splits,
)


def load_data(config: Config) -> Splits:
    """The images of this project, checked and split into train / validation / test."""
    return load_image_splits(config.data, config.resolve_path, seed=config.run.seed)
