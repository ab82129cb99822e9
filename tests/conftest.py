"""Shared fixtures and the tiers. Plain builders (tiny presets, toy data, configs, bakes) are in
`helpers.py`; the fixtures here wrap them, built once per run (shared by the xdist workers:
`built_once`) or once per worker session where no test changes them.

The tier of a test is the folder it is in (`unit/`, `integration/`, `templates/`, `system/`):
`pytest_collection_modifyitems` marks it with that name, so `-m unit` selects a tier too.
"""

import fcntl
import os
import shutil
import socket
from pathlib import Path

import pytest
from helpers import (
    RED_GREEN_BLUE,
    colour_photos,
    cookiecutter_config,
    make_rows,
    save_tiny_preset,
    save_tiny_resnet,
    write_csv,
)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Under pytest-xdist (`make test`: -n 2) each worker, and every process its tests start, gets
# its share of the cores for TensorFlow's and OpenMP's (oneDNN, torch) thread pools, which are
# otherwise as large as the machine, once per worker. FTK_TEST_THREADS=all keeps the defaults.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1 and os.environ.get("FTK_TEST_THREADS") != "all":
    SHARE = str(max(1, (os.cpu_count() or 1) // WORKERS))
    for _name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, SHARE)

TIERS = ("unit", "integration", "templates", "system")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Mark every test with its tier, the first folder below tests/; run the slowest tiers first
    (system, integration, templates, unit; files in their order within a tier), so that under
    xdist (`--dist loadscope --no-loadscope-reorder`) the last files to start are short ones."""
    order = ("system", "integration", "templates", "unit")
    for item in items:
        tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {TIERS}, not {tier}/")
        item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: order.index(Path(item.path).resolve().relative_to(TESTS).parts[0]))


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(path)` once for the whole run: under pytest-xdist the workers share the folder
    (the first to take the lock builds it; the others wait, then reuse it). Read-only after."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True)
                build(path)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", "", None}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Every test runs offline: any non-local connection or DNS lookup from Python fails it."""
    attempts = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def is_local(address) -> bool:
        return not isinstance(address, tuple) or address[0] in _LOCAL_HOSTS

    def connect(self, address):
        if not is_local(address):
            attempts.append(address)
            raise OSError(f"network disabled in tests: {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not is_local(address):
            attempts.append(address)
            raise OSError(f"network disabled in tests: {address}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOCAL_HOSTS:
            attempts.append(host)
            raise socket.gaierror(f"network disabled in tests: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert not attempts, f"test tried to reach the network: {attempts}"


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "tiny_bert", save_tiny_preset)


@pytest.fixture(scope="session")
def still_preset(tmp_path_factory) -> Path:
    """The tiny BERT without dropout: runs on different devices or backends can match."""
    return built_once(tmp_path_factory, "still_bert", lambda p: save_tiny_preset(p, dropout=0.0))


@pytest.fixture(scope="session")
def uncased_preset(tmp_path_factory) -> Path:
    """The tiny BERT with an uncased tokenizer (lowercase, strip_accents), like MiniLM-L6's."""
    return built_once(
        tmp_path_factory, "uncased_bert", lambda p: save_tiny_preset(p, strip_accents=True)
    )


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "train.csv", make_rows(40))


@pytest.fixture
def tfds_data_dir(tmp_path, monkeypatch):
    """An empty TFDS data directory, so no dataset is prepared and nothing touches ~."""
    from tensorflow_datasets.core import constants
    from tensorflow_datasets.core.utils import gcs_utils

    data_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setattr(constants, "DATA_DIR", str(data_dir))
    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True)
    return data_dir


@pytest.fixture
def isolated_cookiecutter(tmp_path, monkeypatch):
    """Keep cookiecutter's clones and replays inside the test's directory."""
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(cookiecutter_config(tmp_path)))


@pytest.fixture(scope="session")
def pretrained_tiny(tmp_path_factory) -> Path:
    """A tiny BERT briefly trained on the toy topics, saved as a keras-hub preset: its frozen
    features carry the labels, so head-only tuning has something to find (a random tiny BERT's
    pooled output does not)."""
    return built_once(tmp_path_factory, "pretrained_tiny", save_pretrained_tiny)


def save_pretrained_tiny(path: Path) -> None:
    import keras
    import keras_hub
    import tensorflow as tf
    from helpers import TINY_BACKBONE, tiny_vocabulary

    keras.utils.set_random_seed(0)
    vocab = tiny_vocabulary()
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), **TINY_BACKBONE)
    classifier = keras_hub.models.BertTextClassifier(
        backbone,
        num_classes=3,
        preprocessor=keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16),
    )
    rows = make_rows(40, seed=5)
    labels = sorted({label for _, label in rows})
    data = tf.data.Dataset.from_tensor_slices(
        ([t for t, _ in rows], [labels.index(label) for _, label in rows])
    )
    classifier.compile(
        optimizer=keras.optimizers.AdamW(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier.fit(data.shuffle(200, seed=0).batch(8), epochs=6, verbose=0)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))


@pytest.fixture(scope="session")
def topics_csv(tmp_path_factory) -> Path:
    """180 toy examples (another seed than `tiny_csv`): the searches' data."""
    return write_csv(tmp_path_factory.mktemp("topics") / "train.csv", make_rows(60, seed=1))


@pytest.fixture(scope="session")
def resnet_preset(tmp_path_factory) -> Path:
    """A tiny random keras-hub ResNet preset directory (`helpers.save_tiny_resnet`)."""
    return built_once(tmp_path_factory, "tiny_resnet", save_tiny_resnet)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """30 photos of three colours (JPEG and PNG) plus a truncated JPEG, a hidden file and a text
    file: what the image task must check, skip and report."""
    root = colour_photos(
        tmp_path / "photos", RED_GREEN_BLUE, size=(20, 28), noise=25, suffixes=(".png", ".jpg")
    )
    (root / "red" / "cut.jpg").write_bytes((root / "red" / "1.jpg").read_bytes()[:200])
    (root / "green" / "._1.png").write_bytes(b"AppleDouble")  # hidden: ignored
    (root / "blue" / "labels.txt").write_text("blue things\n")
    return root
