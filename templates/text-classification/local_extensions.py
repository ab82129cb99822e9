"""Jinja extension for this template: where the template lives, as an absolute path.

cookiecutter's `_repo_dir` is relative when the template is given as a relative path, and the
post-gen hook runs in the new project's directory, so the hook reads `__template_dir` instead.
"""

import sys
from pathlib import Path

from jinja2.ext import Extension


def _template_dir() -> Path:
    # cookiecutter appends the template being baked to sys.path while it renders; prefer it to
    # __file__, which is stale when one process bakes from several copies of the template.
    candidate = Path(sys.path[-1]).resolve()
    if (candidate / Path(__file__).name).is_file():
        return candidate
    return Path(__file__).resolve().parent


class TemplateDir(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(_template_dir())
