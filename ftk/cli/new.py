"""`ftk new`: bake a project from this repository's cookiecutter templates.

The templates live next to the `ftk` package in a checkout (`templates/`, with the menu in
`cookiecutter.json`); `--templates DIR` or `FTK_TEMPLATES` points at another checkout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ftk.errors import ConfigError

MENU_FILE = "cookiecutter.json"


def templates_root(explicit: Path | None = None) -> Path:
    """The repository directory holding `cookiecutter.json` (the menu) and `templates/`."""
    candidates = [explicit] if explicit else []
    if not explicit and os.environ.get("FTK_TEMPLATES"):
        candidates.append(Path(os.environ["FTK_TEMPLATES"]))
    if not candidates:
        candidates.append(Path(__file__).resolve().parents[2])  # the checkout: ftk/cli/new.py
    for root in candidates:
        if (root / MENU_FILE).is_file() and (root / "templates").is_dir():
            return root
    raise ConfigError(
        f"No ftk templates in {candidates[0]} (it needs {MENU_FILE} and templates/). Pass "
        "--templates <a checkout of the ftk repository>, or run: cookiecutter <repository URL>"
    )


def template_names(root: Path) -> dict[str, Path]:
    """Template name -> its directory, in the menu's order."""
    menu = json.loads((root / MENU_FILE).read_text(encoding="utf-8"))["templates"]
    return {name: (root / entry["path"]).resolve() for name, entry in menu.items()}


def parse_answers(answers: list[str]) -> dict[str, str]:
    """`["project_name=Tickets", ...]` -> `{"project_name": "Tickets"}`."""
    out = {}
    for item in answers:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set takes KEY=VALUE (a template question and its answer). Received: {item!r}"
            )
        out[key.strip()] = value
    return out


def bake(
    template: str | None,
    output_dir: Path = Path("."),
    no_input: bool = False,
    answers: list[str] = (),
    templates: Path | None = None,
) -> Path:
    """Bake `template` (or ask, from the menu) into `output_dir`; returns the project directory.

    Unknown question names and a project directory that exists already are refused before
    anything is written; the templates' hooks check the answers' values."""
    from cookiecutter.exceptions import (
        CookiecutterException,
        FailedHookException,
        OutputDirExistsException,
    )
    from cookiecutter.main import cookiecutter

    root = templates_root(templates)
    names = template_names(root)
    if template is not None and template not in names:
        raise ConfigError(
            f"Unknown template {template!r}. Templates: {', '.join(names)}. "
            f"Received: ftk new {template}"
        )
    extra = parse_answers(list(answers))
    if template is None and (no_input or extra):
        template = next(iter(names))  # the menu's first, as cookiecutter --no-input takes
    source = names[template] if template else root
    if template:
        questions = json.loads((source / MENU_FILE).read_text(encoding="utf-8"))
        unknown = sorted(k for k in extra if k not in questions or k.startswith("_"))
        if unknown:
            asked = ", ".join(k for k in questions if not k.startswith("_"))
            raise ConfigError(
                f"{template} has no question {unknown[0]!r}. Its questions: {asked}. "
                f"Received: --set {unknown[0]}=..."
            )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    from ftk.runtime.native_logs import captured_stderr

    output: list[str] = []
    try:
        # The template's hook reports a refused answer on stderr, and cookiecutter then logs a
        # traceback: keep the hook's message for the one-line error, and nothing else.
        with captured_stderr() as output:
            project = cookiecutter(
                str(source), no_input=no_input, output_dir=str(output_dir), extra_context=extra
            )
    except OutputDirExistsException as e:
        raise ConfigError(
            f"The project directory exists already ({e}); nothing was overwritten. Pick another "
            "project_name or --output-dir."
        ) from None
    except FailedHookException:
        said = [line.strip()[len("ERROR: ") :] for line in output if line.startswith("ERROR: ")]
        raise ConfigError(
            f"The template refused an answer: {said[-1] if said else '(no message)'} "
            "Nothing was written."
        ) from None

    except (CookiecutterException, ValueError) as e:
        raise ConfigError(f"Cannot bake {template or 'the menu'}: {e}") from None
    sys.stderr.write("".join(output))  # what a bake that worked said (warnings)
    return Path(project)
