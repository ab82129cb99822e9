"""What every task builder shares: argument checks and keras-hub load errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ftk.errors import PresetError
from ftk.presets.resolve import PresetInfo


def check_num_classes(num_classes: int) -> None:
    if num_classes < 2:
        raise PresetError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")


@contextmanager
def preset_errors(info: PresetInfo, what: str) -> Iterator[None]:
    """Turn keras-hub's errors while loading `info` into a `PresetError` naming the preset.

    Example:

    >>> with preset_errors(info, "a text classifier"):
    ...     keras_hub.models.TextClassifier.from_preset(info.location, num_classes=3)
    """
    try:
        yield
    except PresetError:
        raise
    except (ValueError, FileNotFoundError, KeyError, AttributeError) as e:
        raise PresetError(
            f"keras-hub could not load {what} from {info.source}: {e}. "
            f"Received: model.preset={info.name!r}"
        ) from e
