"""Shared fixtures: tiny, randomly initialised keras-hub presets built from a config dict
(never a hub download), and small labelled text datasets."""

import csv
import os
import random
import socket
import struct
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]

TOPICS = {
    "sport": "goal match team score coach league player win",
    "tech": "software chip phone computer internet data code app",
    "music": "song album band concert guitar singer tour chart",
}
FILLER = "the a of and in to today new said".split()
TINY_BACKBONE = {
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "max_sequence_length": 64,
}


def tiny_vocabulary() -> list[str]:
    words = sorted({w for text in TOPICS.values() for w in text.split()} | set(FILLER))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]


def make_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = rng.sample(words.split(), 3) + rng.sample(FILLER, 3)
            rng.shuffle(tokens)
            rows.append((" ".join(tokens), label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def save_tiny_preset(path: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """A randomly initialised 2-layer BERT saved as a local keras-hub preset directory."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    vocab = tiny_vocabulary()
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), dropout=dropout, **TINY_BACKBONE
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
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
    return save_tiny_preset(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def still_preset(tmp_path_factory) -> Path:
    """The tiny BERT without dropout: runs on different devices or backends can match."""
    return save_tiny_preset(tmp_path_factory.mktemp("still_bert"), dropout=0.0)


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "train.csv", make_rows(40))


def tiny_config_toml(preset: Path, data: Path, tmp: Path, backend: str = "tensorflow") -> str:
    """A project config for the tiny preset: fast enough for unit tests (recipe `single`)."""
    return f"""
[run]
run_dir = "{tmp / "runs"}"
[runtime]
backend = "{backend}"
[model]
preset = "{preset}"
sequence_length = 16
trainable = "all"
[data]
format = "csv"
path = "{data}"
[train]
epochs = 4
batch_size = 8
learning_rate = 3e-3
early_stopping_patience = 0
[recipe]
# Plain fine-tuning: the tiny random BERT learns its toy task reliably this way on every
# backend. tests/test_recipes.py runs the other recipes.
name = "single"
[export]
export_dir = "{tmp / "saved_models"}"
model_name = "tiny"
verify_examples = 8
"""


@pytest.fixture
def tfds_data_dir(tmp_path, monkeypatch):
    """An empty TFDS data directory, so no dataset is prepared and nothing touches ~."""
    from tensorflow_datasets.core import constants
    from tensorflow_datasets.core.utils import gcs_utils

    data_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setattr(constants, "DATA_DIR", str(data_dir))
    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True)
    return data_dir


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])
