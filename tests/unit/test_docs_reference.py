"""The generated reference pages (docs/reference/) are current, and every config key is
documented: a field's docstring in ftk/config/schema.py is its description."""

import dataclasses
import difflib
from pathlib import Path

import pytest

from ftk import docs_reference
from ftk.config import load_config
from ftk.config.choices import CHOICES, PATTERNS
from ftk.config.keys import sections, valid_keys
from ftk.docs_reference.config import field_docs
from ftk.errors import ConfigError
from ftk.tasks.registry import all_tasks

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _first_difference(committed: str, generated: str) -> str:
    diff = difflib.unified_diff(
        committed.splitlines(), generated.splitlines(), "committed", "generated", n=0, lineterm=""
    )
    return "\n".join(list(diff)[:12])


@pytest.mark.parametrize("name", sorted(docs_reference.pages()))
def test_the_committed_reference_page_is_what_the_code_generates(name):
    path = DOCS / name
    generated = docs_reference.pages()[name]
    committed = path.read_text("utf-8") if path.is_file() else ""
    assert committed == generated, (
        f"docs/{name} is out of date with the code. Regenerate it: "
        f"{docs_reference.REGENERATE}\n{_first_difference(committed, generated)}"
    )


def test_every_config_key_is_in_the_configuration_reference():
    page = (DOCS / "reference" / "config.md").read_text("utf-8")
    missing = [key for key in valid_keys() if f'<a id="{key}"></a>`{key}`' not in page]
    assert missing == [], f"keys missing from docs/reference/config.md: {missing}"


def test_every_schema_field_has_a_description():
    docs = field_docs()
    undocumented = [
        f"{section}.{f.name}"
        for section, cls in sections().items()
        for f in dataclasses.fields(cls)
        if not docs.get(f"{section}.{f.name}", "").strip()
    ]
    assert undocumented == [], (
        "Give each of these fields a docstring (a string on the line after it) in "
        f"ftk/config/schema.py: {undocumented}"
    )


@pytest.mark.parametrize("key", sorted({*CHOICES, *PATTERNS}))
def test_each_key_listed_with_choices_or_a_pattern_is_checked_against_them(key):
    """`schema.CHOICES` / `PATTERNS` (what the reference lists) name keys the checks enforce."""
    owner = next((t.name for t in all_tasks() if key in t.only_keys), None)
    overrides = [f"run.task={owner}", "data.path=data"] if owner else []
    load_config(overrides=overrides)  # the defaults pass
    with pytest.raises(ConfigError, match=f"`{key}` must be"):
        load_config(overrides=[*overrides, f"{key}=no such value!"])


def test_check_names_the_stale_pages_and_how_to_regenerate_them(tmp_path, capsys):
    assert docs_reference.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "reference/config.md" in err and "reference/cli.md" in err
    assert "python -m ftk.docs_reference --write" in err
    assert docs_reference.main(["--write", "--docs-dir", str(tmp_path)]) == 0
    assert docs_reference.main(["--check", "--docs-dir", str(tmp_path)]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.md")) == [
        "index.md",
        "reference/cli.md",
        "reference/config.md",
    ]


def test_the_home_page_is_the_readme_with_links_into_docs():
    readme = docs_reference.README.read_text("utf-8")
    home = (docs_reference.DOCS_DIR / "index.md").read_text("utf-8")
    assert "](docs/" in readme and "](docs/" not in home
    assert "[Getting started](getting-started.md)" in home
    assert len(readme.splitlines()) <= 250, "the README is the front door: keep it short"
