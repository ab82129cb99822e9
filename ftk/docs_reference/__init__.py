"""The generated reference pages of the documentation, and checking they are current.

- `docs/reference/config.md`: every `config.toml` key (`ftk.docs_reference.config`), from the
  schema's fields and their docstrings (`ftk/config/schema.py`) and the tasks;
- `docs/reference/cli.md`: every `ftk` command (`ftk.docs_reference.cli`), from the parsers;
- `docs/index.md`: the site's home page, the README with its links made relative to docs/.

```
python -m ftk.docs_reference --write   # regenerate them (make docs-reference)
python -m ftk.docs_reference --check   # exit 1 naming the pages that are out of date
```

Standard library and `ftk.config`, `ftk.tasks.registry`, `ftk.cli.parser` only: no Keras.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"  # the repository's docs/
README = DOCS_DIR.parent / "README.md"
SITE_NOTE = "The docs are a MkDocs site: `make docs` builds it offline into `build/site/`"
REGENERATE = "python -m ftk.docs_reference --write (or: make docs-reference)"


def pages() -> dict[str, str]:
    """`{path under docs/: its generated Markdown}`."""
    from ftk.docs_reference.cli import cli_markdown
    from ftk.docs_reference.config import config_markdown

    return {
        "reference/config.md": config_markdown(),
        "reference/cli.md": cli_markdown(),
        "index.md": home_markdown(README.read_text("utf-8")),
    }


def home_markdown(readme: str) -> str:
    """The README as the site's home page: `docs/x.md` links become `x.md`, and a link to the
    results folder (a directory listing on GitHub) becomes the performance page."""
    home = readme.replace("](docs/results/)", "](performance.md)").replace("](docs/", "](")
    return home.replace(SITE_NOTE, "`make docs` builds this site offline into `build/site/`")


def stale(docs_dir: Path = DOCS_DIR) -> list[str]:
    """The pages whose file under `docs_dir` differs from what would be generated now."""
    return [
        name
        for name, text in pages().items()
        if not (docs_dir / name).is_file() or (docs_dir / name).read_text("utf-8") != text
    ]


def write(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Write every page (only those that changed); returns the paths written."""
    written = []
    for name, text in pages().items():
        path = docs_dir / name
        if not path.is_file() or path.read_text("utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftk.docs_reference", description=__doc__.split("\n\n")[0]
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the pages")
    mode.add_argument("--check", action="store_true", help="exit 1 if a page is out of date")
    parser.add_argument("--docs-dir", type=Path, default=DOCS_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.docs_dir):
            print(f"wrote {path}")
        return 0
    if outdated := stale(args.docs_dir):
        print(f"Out of date: {', '.join(outdated)}. Regenerate: {REGENERATE}", file=sys.stderr)
        return 1
    return 0
