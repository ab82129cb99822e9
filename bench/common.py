"""Shared by the benchmark workers: the baked projects, their configs, the JSON-line protocol,
step timing and memory.

Workers print one `BENCH {json}` line per measurement on stdout; everything else (logs,
warnings) goes to stderr. Nothing here imports Keras: a worker sets its backend first.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "bench"  # gitignored: baked projects, images, exports, searches, logs
PROJECTS = WORK / "projects"
IMAGES = WORK / "images"
TEXT_PROJECT = PROJECTS / "bench_text"
IMAGE_PROJECT = PROJECTS / "bench_image"
PREFIX = "BENCH "

# The demo's settings (`make demo`): BBC News, MiniLM-L6, batch 16, 128 tokens, all weights.
TEXT_OVERRIDES = ["data.max_train_examples=480", "model.trainable=all", "run.quiet=true"]
# Image: EfficientNet-Lite0 at 96 px, batch 32 (the image demo's settings).
IMAGE_OVERRIDES = ["model.trainable=all", "run.quiet=true"]


def emit(**record) -> None:
    """One measurement for the orchestrator."""
    print(PREFIX + json.dumps(record), flush=True)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quiet_logs() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("FTK_PROGRESS", "0")


def set_backend(backend: str) -> None:
    """Select the Keras backend (before keras is imported), as a baked project does."""
    quiet_logs()
    from ftk.runtime.backend import set_backend as ftk_set_backend

    ftk_set_backend(backend)


def set_precision(policy: str) -> None:
    """The Keras dtype policy, set as a run's `Runtime` sets it (after `set_backend`, before
    any model is built)."""
    import keras

    keras.config.set_dtype_policy(policy)


def bake_projects() -> None:
    """Bake the text and image templates once into build/bench/projects (their config.toml is
    what the workers load), and write the image data the image project reads."""
    from ftk.cli.new import bake

    PROJECTS.mkdir(parents=True, exist_ok=True)
    if not TEXT_PROJECT.exists():
        bake("text-classification", PROJECTS, True, ["project_name=Bench Text"])
    write_images()
    if not IMAGE_PROJECT.exists():
        bake(
            "image-classification",
            PROJECTS,
            True,
            ["project_name=Bench Image", f"path={IMAGES / 'train'}", "image_size=96"],
        )


def write_images(per_class: int = 64) -> str:
    """Images for the image project: Fashion-MNIST (Debian's dataset-fashion-mnist, as the
    image demo) when installed, else random 28x28 grayscale PNGs in 10 classes (what they show
    does not matter for steps/s). Returns the source written."""
    marker = IMAGES / "source.txt"
    if marker.exists():
        return marker.read_text().strip()
    from ftk.data.image_examples import FASHION_MNIST_DIR

    IMAGES.parent.mkdir(parents=True, exist_ok=True)
    if FASHION_MNIST_DIR.is_dir():
        import subprocess

        subprocess.run(
            [
                sys.executable,
                "-m",
                "ftk.data.image_examples",
                str(IMAGES),
                "--source",
                "fashion_mnist",
                "--train",
                str(per_class * 10),
                "--validation",
                "100",
                "--test",
                "200",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        source = "fashion_mnist"
    else:
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for split, count in (("train", per_class), ("validation", 10), ("test", 20)):
            for label in range(10):
                folder = IMAGES / split / f"class_{label}"
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(count):
                    pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
                    Image.fromarray(pixels, "L").save(folder / f"{i:05d}.png")
        source = "random"
    marker.write_text(source + "\n")
    return source


def text_config(backend: str = "tensorflow", extra: list[str] = ()):
    from ftk.config import load_config

    overrides = [*TEXT_OVERRIDES, f"runtime.backend={backend}", *extra]
    return load_config(TEXT_PROJECT / "config.toml", overrides)


def image_config(backend: str = "tensorflow", extra: list[str] = ()):
    from ftk.config import load_config

    overrides = [
        *IMAGE_OVERRIDES,
        f"runtime.backend={backend}",
        f"data.validation_path={IMAGES / 'validation'}",
        f"data.test_path={IMAGES / 'test'}",
        *extra,
    ]
    return load_config(IMAGE_PROJECT / "config.toml", overrides)


def task_config(task: str, backend: str = "tensorflow", extra: list[str] = ()):
    return (text_config if task == "text" else image_config)(backend, extra)


def step_timer():
    """A Keras callback recording `time.perf_counter()` at the end of every training batch."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepTimer()


def block_rates(ends: list[float], warmup: int, repeats: int) -> list[float]:
    """Steps/s of `repeats` equal consecutive blocks of steps after the first `warmup` steps.

    `ends[i]` is the end time of step i; a block of n steps runs from the end of the step
    before it to the end of its last step."""
    timed = len(ends) - warmup
    size = timed // repeats
    if warmup < 1 or size < 1:
        raise ValueError(f"{len(ends)} steps cannot give {repeats} blocks after {warmup} warm-up")
    rates = []
    for r in range(repeats):
        start = warmup - 1 + r * size
        rates.append(size / (ends[start + size] - ends[start]))
    return rates


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread_subset(count: int, limit: int) -> list[int]:
    """`limit` indices spread evenly over `count` (all when `limit` is 0 or larger): a test
    split is sorted by label, so its first examples are all one class."""
    if not limit or limit >= count:
        return list(range(count))
    return [round(i * (count - 1) / (limit - 1)) for i in range(limit)] if limit > 1 else [0]
