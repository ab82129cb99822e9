"""Matplotlib figures drawn off-screen (an Agg canvas per figure: no pyplot, no global backend
change, safe on headless machines) and saved as PNG atomically."""

from __future__ import annotations

import io
from pathlib import Path


def new_figure(size: tuple[float, float], dpi: int = 100):
    """A matplotlib `Figure` of `size` inches at `dpi` on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, exactly `size * dpi` pixels (no tight bounding box)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_png(fig, path) -> Path:
    """Write the figure to `path` via a temporary file and a rename (never half a PNG)."""
    from ftk.files import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, png_bytes(fig))
    return path
