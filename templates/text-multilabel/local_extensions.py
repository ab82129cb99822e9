"""Jinja extension for this template: `template_dir`, the template's absolute path (see
`templates/_shared/ftk_template.py`)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "_shared"))

from ftk_template import template_dir_extension  # noqa: E402

TemplateDir = template_dir_extension(HERE)
