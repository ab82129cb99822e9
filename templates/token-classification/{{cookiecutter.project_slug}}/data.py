"""How this project reads its tagged sentences: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test sentences, each with its
words `tokens` and one BIO tag per word `tags`). The default reads `[data]` in config.toml with
ftk's readers: CoNLL-style files (word first, tag last, a blank line between sentences), JSON
lines (`{"tokens": [...], "tags": [...]}`), or `example:wnut16`.

To read from somewhere else, write the sentences to a .jsonl file, one per line:

    {"tokens": ["Ada", "lives", "in", "Paris"], "tags": ["B-person", "O", "O", "B-location"]}

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import Config, Splits
from ftk.data.tagged import load_tagged_splits


def load_data(config: Config) -> Splits:
    """The tagged sentences of this project, split into train / validation / test."""
    return load_tagged_splits(config.data, config.resolve_path, seed=config.run.seed)
