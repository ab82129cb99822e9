"""Jinja extension for this template: where the template lives, as an absolute path.

cookiecutter's `_repo_dir` is relative when the template is given as a relative path, and the
post-gen hook runs in the new project's directory, so the hook reads `__template_dir` instead.
"""

from pathlib import Path

from jinja2.ext import Extension


class TemplateDir(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(Path(__file__).resolve().parent)
