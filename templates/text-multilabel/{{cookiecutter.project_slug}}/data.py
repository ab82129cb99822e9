"""How this project reads its texts and their labels: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test examples: `inputs` the
texts, `labels` a float32 0/1 array `[n, labels]`; `label_names` the labels' names). The default
reads `[data]` in config.toml with ftk's readers: a CSV or TSV file (`data.text_column`, the
labels in `data.label_column` separated by `data.label_separator`, or one 0/1 column per label
in `data.target_columns`), or `example:wikidata_films`.

To read from somewhere else, write a CSV file with a header:

    text,label
    "A detective hunts a killer across a frozen city.","Crime, Thriller"

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import Config, Splits
from ftk.data.multilabel import load_multilabel_splits


def load_data(config: Config) -> Splits:
    """The labelled texts of this project, split into train / validation / test."""
    return load_multilabel_splits(config.data, config.resolve_path, seed=config.run.seed)
