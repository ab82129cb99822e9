"""Builders shared by the tests of every tier: the tiny random presets and toy data, project
configs, cookiecutter bakes, image folders, a baked project's `train.py` in a fresh process.

Fixtures that wrap these live in `tests/conftest.py`; a test imports the plain functions from
here (`from helpers import make_rows`), never from another test module.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# Every cookiecutter template of the kit (`templates/_shared` is not one).
TEMPLATES = sorted(p for p in (REPO / "templates").iterdir() if (p / "cookiecutter.json").is_file())
TEXT_TEMPLATE = REPO / "templates" / "text-classification"
IMAGE_TEMPLATE = REPO / "templates" / "image-classification"
LM_TEMPLATE = REPO / "templates" / "causal-lm"

TOPICS = {
    "sport": "goal match team score coach league player win",
    "tech": "software chip phone computer internet data code app",
    "music": "song album band concert guitar singer tour chart",
}
LABELS = sorted(TOPICS)  # ["music", "sport", "tech"]: the order ftk infers
FILLER = "the a of and in to today new said".split()
TINY_BACKBONE = {
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "max_sequence_length": 64,
}


# --- toy text data ------------------------------------------------------------------------------


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


def examples(n_per_class: int = 30, seed: int = 0):
    """`make_rows` as ftk's `Examples` (label ids in `LABELS` order)."""
    import numpy as np

    from ftk.data.splits import Examples

    rows = make_rows(n_per_class, seed)
    return Examples([t for t, _ in rows], np.array([LABELS.index(y) for _, y in rows], np.int32))


# --- tiny random models ---------------------------------------------------------------------------


def save_tiny_preset(
    path: Path, seed: int = 0, dropout: float = 0.1, strip_accents: bool = False
) -> Path:
    """A randomly initialised 2-layer BERT saved as a local keras-hub preset directory
    (`strip_accents`: an uncased BERT's tokenizer, its vocabulary with "##c" for every
    character its words continue with)."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    vocab = tiny_vocabulary()
    if strip_accents:
        vocab += sorted({f"##{c}" for w in vocab[5:] for c in w[1:]})
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), dropout=dropout, **TINY_BACKBONE
    )
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocab, lowercase=True, strip_accents=strip_accents
    )
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
    return path


def build_classifier(tiny_preset: Path, **model):
    """The text classifier ftk builds on the tiny preset (sequence length 16, 3 labels)."""
    from ftk.config import ModelConfig
    from ftk.models.text import build_text_classifier
    from ftk.presets.resolve import resolve_preset

    info = resolve_preset(str(tiny_preset))
    return build_text_classifier(info, ModelConfig(sequence_length=16, **model), len(LABELS))


def save_tiny_resnet(path: Path) -> Path:
    """A keras-hub ResNet image classifier preset directory (`save_to_preset`), randomly
    initialised, like one a user trained or downloaded."""
    import keras_hub

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
    )
    converter = keras_hub.layers.ResNetImageConverter(image_size=(64, 64), scale=1 / 255.0)
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone,
        num_classes=1000,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(converter),
    )
    classifier.save_to_preset(str(path))
    return path


def save_length_model(path: Path, input_name: str):
    """A SavedModel whose serving_default takes one string input and scores its length."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])
        def serve(self, values):
            n = tf.cast(tf.strings.length(values), tf.float32)
            probabilities = tf.stack([n / (n + 1.0), 1.0 / (n + 1.0)], axis=-1)
            class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {
                "probabilities": probabilities,
                "class_id": class_id,
                "class_name": tf.gather(tf.constant(["long", "short"]), class_id),
            }

    module = Model()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return tf.saved_model.load(str(path))


# --- project configs ------------------------------------------------------------------------------


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
# backend. tests/integration/test_recipe_runs.py runs the other recipes.
name = "single"
[export]
export_dir = "{tmp / "saved_models"}"
model_name = "tiny"
verify_examples = 8
"""


def write_tiny_config(
    directory: Path,
    preset: Path,
    data: Path,
    *export_lines: str,
    backend: str = "tensorflow",
    recipe: str = "single",
) -> Path:
    """`tiny_config_toml` written to `directory/config.toml` (runs and exports below
    `directory`), with `recipe.name = recipe` and `export_lines` added to its [export] table."""
    directory.mkdir(parents=True, exist_ok=True)
    text = tiny_config_toml(preset, data, directory, backend)
    text = text.replace('name = "single"', f'name = "{recipe}"')
    path = directory / "config.toml"
    path.write_text(text + "".join(f"{line}\n" for line in export_lines), encoding="utf-8")
    return path


def image_run_config(tmp_path: Path, preset: Path, folder: Path, *overrides: str):
    """The image task on the tiny ResNet preset and a `colour_photos` folder: 3 epochs,
    `last_n:1`, 40x40 pixels, exports as `colours`."""
    from ftk.config import load_config

    return load_config(
        None,
        [
            'run.task="image_classification"',
            f"run.run_dir={tmp_path / 'runs'}",
            f"model.preset={preset}",
            "model.image_size=40",
            "model.trainable=last_n:1",
            f"data.path={folder}",
            "data.test_split=0.3",
            "train.epochs=3",
            "train.batch_size=8",
            "train.learning_rate=3e-3",
            f"export.export_dir={tmp_path / 'saved_models'}",
            "export.model_name=colours",
            "export.verify_examples=9",
            *overrides,
        ],
    )


# --- images ---------------------------------------------------------------------------------------

RED_BLUE = {"red": (210, 40, 40), "blue": (40, 40, 210)}
RED_GREEN_BLUE = {"red": (210, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 210)}


def colour_photos(
    root: Path,
    colours: dict = RED_BLUE,
    per_class: int = 10,
    size: tuple[int, int] = (24, 24),
    noise: int = 30,
    suffixes: tuple[str, ...] = (".jpg",),
) -> Path:
    """`root/<colour>/<i><suffix>`: noisy solid-colour photos (height, width = `size`), the
    suffixes taken in turn; seeded, so every call writes the same files."""
    import numpy as np
    from PIL import Image

    for k, (label, rgb) in enumerate(colours.items()):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            jitter = np.random.default_rng(10 * k + i).integers(-noise, noise, (*size, 3))
            pixels = np.clip(np.array(rgb) + jitter, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}{suffixes[i % len(suffixes)]}")
    return root


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --- cookiecutter ---------------------------------------------------------------------------------


# The files of a baked project (a template without an offline preset has no
# requirements-nodeps.txt).
BAKED_FILES = {
    ".gitignore",
    "README.md",
    "config.toml",
    "data.py",
    "pyproject.toml",
    "requirements.txt",
    "requirements-nodeps.txt",
    "train.py",
    "tests/test_project.py",
    "serving/models.config",
    "serving/docker-compose.yml",
    *(
        f"launch/{name}"
        for name in (
            "Dockerfile",
            "shared-volume.yaml",
            "slurm.sbatch",
            "tfjob.yaml",
            "trainjob.yaml",
        )
    ),
}


def cookiecutter_config(root: Path) -> Path:
    """A cookiecutter user config keeping its clones and replays below `root` (point
    COOKIECUTTER_CONFIG at it)."""
    home = root / "cc-home"
    home.mkdir(parents=True, exist_ok=True)
    config = root / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n"
    )
    return config


def bake(tmp_path: Path, template: Path = TEXT_TEMPLATE, **answers) -> Path:
    """The template baked without input into `tmp_path/out` with `answers`; the project."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(template), no_input=True, output_dir=str(tmp_path / "out"), extra_context=answers
        )
    )


def files(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


def assert_no_jinja(project: Path) -> None:
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, path


def run_train_py(project: Path, *overrides: str, check: bool = True, timeout: float = 1500):
    """The baked project's `python train.py --quiet --set ...` in a fresh process (its own
    backend from config.toml: KERAS_BACKEND is not passed on)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    command = [sys.executable, "train.py", "--quiet"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def only_run_dir(project: Path) -> Path:
    """The one run directory of a project that has trained once."""
    (run_dir,) = [p for p in (project / "runs").iterdir() if not p.name.startswith(".")]
    return run_dir


def h5_arrays(path: Path, optimizer: bool = False) -> dict:
    """Every array of a Keras `.weights.h5` (or adapter) file by its path inside the file;
    the optimizer's variables only with `optimizer=True`."""
    import h5py
    import numpy as np

    out = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and (optimizer or "optimizer" not in name):
                out[name] = np.asarray(obj)

        f.visititems(visit)
    return out


def h5_names(path: Path) -> list[str]:
    """Every group and dataset name in an HDF5 file."""
    import h5py

    names = []
    with h5py.File(path, "r") as f:
        f.visit(names.append)
    return names


# --- searches -------------------------------------------------------------------------------------


def head_search(tmp_path: Path, preset: Path, data: Path, *overrides: str):
    """A head-only search on the tiny config (val_loss, 4 epochs a trial, no ONNX): the config
    file and the loaded config."""
    from ftk.config import load_config

    path = write_tiny_config(tmp_path, preset, data)
    return path, load_config(
        path,
        [
            "model.trainable=head",
            "export.onnx=false",
            "tune.objective=val_loss",
            "tune.epochs=4",
            *overrides,
        ],
    )


def read_trials(directory: Path) -> list[dict]:
    """The rows of a search's `trials.csv`."""
    with (directory / "trials.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- TensorFlow Datasets --------------------------------------------------------------------------


def prepare_tfds(data_dir: Path, name: str, features: dict, splits: dict[str, list[dict]]) -> Path:
    """A dataset TFDS prepares from examples given here (no download): `name` is the builder
    class's name (TFDS derives the dataset's name from it), `features` the FeaturesDict's
    mapping, `splits` `{split: [example, ...]}`. The prepared directory."""
    import tensorflow_datasets as tfds

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(rows) for split, rows in splits.items()}

    def _generate_examples(self, rows):
        yield from enumerate(rows)

    with tfds.core.registered.skip_registration():
        builder_class = type(
            name,
            (tfds.core.GeneratorBasedBuilder,),
            {
                "VERSION": tfds.core.Version("1.0.0"),
                "_info": _info,
                "_split_generators": _split_generators,
                "_generate_examples": _generate_examples,
            },
        )
    builder = builder_class(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    path = Path(builder.data_dir)
    assert (path / "dataset_info.json").is_file()
    return path


# --- crashes --------------------------------------------------------------------------------------


@contextlib.contextmanager
def power_cut_after_epoch(epoch: int = 1):
    """While inside, training raises RuntimeError("power cut") at the end of `epoch` (from 0):
    a crashed run to resume."""
    import keras
    import pytest

    from ftk.training import fit as training

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index == epoch:
                raise RuntimeError("power cut")

    standard = training.callbacks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "callbacks", lambda *a, **k: [*standard(*a, **k), Crash()])
        yield


def record_probes(monkeypatch, module, reachable: bool) -> list[str]:
    """`module.host_reachable` answers `reachable` without a connection; the hosts it was asked
    about, in order."""
    hosts = []

    def host_reachable(host, *args, **kwargs):
        hosts.append(host)
        return reachable

    monkeypatch.setattr(module, "host_reachable", host_reachable)
    return hosts


TINY_LLAMA = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def save_tiny_llama(path: Path, seed: int = 0) -> Path:
    """A tiny random Llama (2 layers, hidden 32) with SmolLM2's real tokenizer and chat template,
    as a Hugging Face directory (the layout of the offline `smollm2_135m_instruct` preset)."""
    from gguf import GGUFReader
    from safetensors.numpy import save_file

    from ftk.convert.gguf_llama import gguf_path, hf_tokenizer

    reader = GGUFReader(str(gguf_path()))
    meta = {
        k: f.contents() for k, f in reader.fields.items() if k.startswith(("tokenizer.", "llama."))
    }
    tokenizer, tokenizer_config = hf_tokenizer(meta)
    vocab = len(tokenizer["model"]["vocab"])
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        **TINY_LLAMA,
    }
    import numpy as np

    rng = np.random.default_rng(seed)
    h, f, heads, kv = 32, 64, 4, 2
    d = h // heads

    def w(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    weights = {
        "model.embed_tokens.weight": w(vocab, h),
        "model.norm.weight": np.ones(h, np.float32),
    }
    for i in range(2):
        p = f"model.layers.{i}."
        weights.update(
            {
                p + "input_layernorm.weight": np.ones(h, np.float32),
                p + "post_attention_layernorm.weight": np.ones(h, np.float32),
                p + "self_attn.q_proj.weight": w(heads * d, h),
                p + "self_attn.k_proj.weight": w(kv * d, h),
                p + "self_attn.v_proj.weight": w(kv * d, h),
                p + "self_attn.o_proj.weight": w(h, heads * d),
                p + "mlp.gate_proj.weight": w(f, h),
                p + "mlp.up_proj.weight": w(f, h),
                p + "mlp.down_proj.weight": w(h, f),
            }
        )
    path.mkdir(parents=True)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    for name, content in (
        ("config.json", config),
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", tokenizer_config),
    ):
        (path / name).write_text(json.dumps(content), encoding="utf-8")
    return path


def lm_conversations(n: int) -> list[dict]:
    """Prompt/response records a tiny model can learn (a colour per item)."""
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
    return [
        {"prompt": f"What colour is item {i}?", "response": f"Item {i} is {colours[i % 8]}."}
        for i in range(n)
    ]


def train_on_backend(config: Path, tmp_path: Path, backend: str, *overrides: str) -> Path:
    """The project of `config` trained for 2 epochs in a fresh process on `backend` (runs and
    exports under `tmp_path`, no ONNX: a JAX or torch run exports from a TensorFlow process),
    with `overrides` (`section.key=value`) last; returns its run directory."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = "import sys; from ftk.cli.main import train_main; sys.exit(train_main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "--config", str(config)]
    for override in (
        f"runtime.backend={backend}",
        f"run.run_dir={tmp_path / 'runs'}",
        f"export.export_dir={tmp_path / 'saved_models'}",
        "train.epochs=2",
        "export.onnx=false",
        *overrides,
    ):
        command += ["--set", override]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def kit_switches_on_torch(config: Path, tmp_path: Path) -> dict:
    """The project of `config` on torch with the kit's switches at once: LoRA adapters, the
    head phase, WiSE-FT's interpolation and 2-fold cross-validation, exported from a TensorFlow
    process. Checks the run has each one's files; returns its summary."""
    run_dir = train_on_backend(
        config,
        tmp_path,
        "torch",
        "model.lora_rank=4",
        'recipe.name="two_phase"',
        "recipe.interpolate=true",
        "recipe.cv_folds=2",
    )
    assert json.loads((run_dir / "run.json").read_text())["backend"] == "torch"
    assert len(json.loads((run_dir / "cv.json").read_text())["folds"]) == 2
    assert (run_dir / "interpolation.json").is_file() and (run_dir / "adapter.weights.h5").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["export"]["savedmodel_max_abs_diff"] <= 1e-4
    return summary
