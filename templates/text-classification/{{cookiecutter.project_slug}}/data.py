"""How this project reads its examples: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test examples and
the label names). The default reads `[data]` in config.toml with ftk's readers: a folder of
`<label>/*.txt`, a CSV file, or a TFDS dataset.

To read from somewhere else, build `Row`s and let ftk check, split and label them:

    rows = [Row(text, label, origin=f"tickets.db:{id}") for id, text, label in query()]
    return build_splits(rows, None, None, config.data, seed=config.run.seed)

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import (  # noqa: F401  (Row, build_splits: for custom readers)
    Config,
    Row,
    Splits,
    build_splits,
    load_text_splits,
)


def load_data(config: Config) -> Splits:
    """The examples of this project, split into train / validation / test."""
    return load_text_splits(config.data, config.resolve_path, seed=config.run.seed)
