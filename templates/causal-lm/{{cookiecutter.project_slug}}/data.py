"""How this project reads its conversations: edit `load_data` to read your own data.

`load_data(config)` returns `ftk.Splits` (train / validation / test conversations). The default
reads `[data]` in config.toml with ftk's readers: JSON lines, JSON or CSV records with a prompt
and a response (or Alpaca's instruction/input/output, or chat `messages`), or
`example:chatterbot`.

To read from somewhere else, write the conversations to a .jsonl file, one per line:

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

Keep this module free of Keras imports: the backend is chosen after it is imported.
"""

from ftk import Config, Splits
from ftk.data.chat import load_chat_splits


def load_data(config: Config) -> Splits:
    """The conversations of this project, split into train / validation / test."""
    return load_chat_splits(config.data, config.resolve_path, seed=config.run.seed)
