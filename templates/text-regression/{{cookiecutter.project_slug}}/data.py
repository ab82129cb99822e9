"""How this project reads its texts and their numbers: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test examples: `inputs` the
texts, `labels` a float32 array `[n, targets]`; `label_names` the targets' names). The default
reads `[data]` in config.toml with ftk's readers: a CSV or TSV file (`data.text_column`, the
numbers in `data.target_columns`), or one of the `example:vader_*` corpora.

To read from somewhere else, write a CSV file with a header:

    text,sentiment
    "A gorgeous, witty film.",3.2

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import Config, Splits
from ftk.data.scored import load_scored_splits


def load_data(config: Config) -> Splits:
    """The scored texts of this project, split into train / validation / test."""
    return load_scored_splits(config.data, config.resolve_path, seed=config.run.seed)
