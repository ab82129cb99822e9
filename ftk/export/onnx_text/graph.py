"""The raw-string pre-processing graph: `text` (string `[batch]`) -> `token_ids`, `segment_ids`,
`padding_mask` `[batch, sequence_length]`, the ids keras-hub's TF path gives on the texts the
export is verified on, built from onnxruntime-extensions (ortx) ops:

1. `StringRegexReplace`: CJK ideograph -> " c " (keras-hub's first step);
2. `StringRegexReplace`: remove nonspacing marks and the characters case folding deletes;
3. `StringRegexSplitWithOffsets` + `StringMapping`: per character, the NFKC case fold of its
   accent-stripped form (`tables.char_tables`), rows joined again;
4. `StringRegexSplitWithOffsets`: keras-hub's own whitespace / punctuation / CJK split;
5. words over 100 UTF-8 bytes, and words WordPiece cannot finish, become `[UNK]` (keras-hub gives
   one `[UNK]` for such a word; ortx the pieces before the failure and then `[UNK]`);
   punctuation that folds to several characters (U+2026 -> "...") is mapped per word;
6. a `Loop` over the rows (ortx's `BertTokenizer` takes one text per call): join the row's words
   with " ", `BertTokenizer(do_basic_tokenize=0)` (WordPiece, `[CLS]`/`[SEP]`, truncation),
   pad with 0 to `sequence_length` like keras-hub's packer.

Steps 1-5 run on the whole batch (RE2 compiles each pattern on every call: ~0.7 ms for the big
ones).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ftk.export.onnx_text.ops import (
    CONTRIB,
    char_class,
    const,
    join_rows,
    node,
    outer_constants,
    pad_nodes,
    sconst,
)

OPSET = 17  # the token-id model's (ftk.export.onnx.OPSET)
TEXT = "text"  # the SavedModel's input name
PRE = "pre_"  # prefix of this graph's outputs before the merge
MAX_BYTES_PER_WORD = 100  # keras-hub / tf_text FastWordpieceTokenizer (ortx counts characters)
IDS = ("token_ids", "segment_ids", "padding_mask")


def _not_in(chars: list[str]) -> str:
    return f"[^{char_class(chars)}]" if chars else "."


def _patterns(tables: dict) -> dict[str, str]:
    cls = {k: f"[{char_class(v)}]" for k, v in tables["classes"].items()}
    mapped = f"[{char_class(tables['map'])}]"
    return {
        "cjk_re": cls["cjk"],
        "rm_re": f"[{char_class(tables['classes']['mn'] + tables['remove'])}]",
        # split out only the characters the table maps (runs of others stay one piece); a split
        # pattern needs a capture group (the op uses RE2::FindAndConsume)
        "char_re": f"({mapped})",
        "char_keep": mapped,
        "split_re": "(" + "|".join([cls["ws"], cls["punct"], cls["cjk"]]) + ")",
        "keep_re": "|".join([cls["punct"], cls["cjk"]]),
        # WordPiece fails at a non-first character with no "##c": one [UNK] for the word
        "unk_re": f"^(?s).+{_not_in(tables['suffix_chars'])}.*$",
        "long_re": f"^(?s).{{{MAX_BYTES_PER_WORD + 1},}}$",
    }


def word_nodes(tables: dict, texts: str, rows: str) -> list[onnx.NodeProto]:
    """Steps 1-5, batched: `texts` [M] -> `words` [W] (what BertTokenizer then tokenizes) and
    their row splits `wrows` [M+1]."""
    p = _patterns(tables)
    vectors = ("cjk_re", "rm_re", "unk_re", "long_re")
    table = lambda m: "\n".join(f"{k}\t{v}" for k, v in sorted(m.items()))  # noqa: E731
    return [
        *(sconst(k, v, k in vectors) for k, v in p.items()),
        sconst("cjk_to", r" \0 ", True),
        sconst("unk", "[UNK]", True),
        *(sconst(f"b{n}_re", r, True) for n, r in _BYTE_CLASSES),
        *(sconst(f"b{n}", "b" * n, True) for n, _ in _BYTE_CLASSES),
        sconst("long_mark", "\ue001", True),
        node("StringRegexReplace", [texts, "cjk_re", "cjk_to"], ["e_t1"]),
        node("StringRegexReplace", ["e_t1", "rm_re", "empty1"], ["e_t2"]),
        node(
            "StringRegexSplitWithOffsets",
            ["e_t2", "char_re", "char_keep"],
            ["e_chars", "e_cb", "e_ce", "e_crows"],
        ),
        node("StringMapping", ["e_chars"], ["e_mapped"], map=table(tables["map"])),
        *join_rows("e_mapped", "e_crows", rows, "e_t3"),
        node(
            "StringRegexSplitWithOffsets",
            ["e_t3", "split_re", "keep_re"],
            ["e_words0", "e_wb", "e_we", "wrows"],
        ),
        # over 100 UTF-8 bytes -> [UNK]: spell each character as its byte count, mark the long
        # ones. (StringEqual cannot broadcast [0] against [1]: one extra word keeps the input
        # non-empty and is sliced off again.)
        helper.make_node("Concat", ["e_words0", "empty1"], ["e_l0"], axis=0),
        node("StringRegexReplace", ["e_l0", "b2_re", "b2"], ["e_l1"]),
        node("StringRegexReplace", ["e_l1", "b3_re", "b3"], ["e_l2"]),
        node("StringRegexReplace", ["e_l2", "b4_re", "b4"], ["e_l3"]),
        node("StringRegexReplace", ["e_l3", "long_re", "long_mark"], ["e_l4"]),
        node("StringEqual", ["e_l4", "long_mark"], ["e_long0"]),
        helper.make_node("Slice", ["e_long0", "zero1", "minus1", "axes0"], ["e_long"]),
        helper.make_node("Where", ["e_long", "unk", "e_words0"], ["e_words1"]),
        node("StringRegexReplace", ["e_words1", "unk_re", "unk"], ["e_words2"]),
        node("StringMapping", ["e_words2"], ["words"], map=table(tables["word_map"])),
    ]


_BYTE_CLASSES = (
    (2, r"[\x{80}-\x{7FF}]"),
    (3, r"[\x{800}-\x{FFFF}]"),
    (4, r"[\x{10000}-\x{10FFFF}]"),
)


def loop_body(settings: dict) -> onnx.GraphProto:
    """Step 6 for row `i`: its words joined, WordPiece, `[CLS] ... [SEP]`, padded."""
    length = settings["sequence_length"]
    nodes = [
        const("b_length", [length]),
        helper.make_node("Unsqueeze", ["i", "axes0"], ["b_i"]),
        helper.make_node("Add", ["b_i", "one1"], ["b_i1"]),
        helper.make_node("Slice", ["wrows", "b_i", "b_i1", "axes0"], ["b_r0"]),
        helper.make_node("Add", ["b_i1", "one1"], ["b_i2"]),
        helper.make_node("Slice", ["wrows", "b_i1", "b_i2", "axes0"], ["b_r1"]),
        helper.make_node("Slice", ["words", "b_r0", "b_r1", "axes0"], ["b_w"]),
        node("StringJoin", ["b_w", "space", "axis0"], ["b_s"]),
        node(
            "BertTokenizer",
            ["b_s"],
            ["t_ids", "t_types", "t_mask"],
            vocab_file=settings["vocab"],  # the vocabulary's text, not a path
            suffix_indicator="##",
            unk_token="[UNK]",
            max_length=length,  # at most length - 2 pieces + [CLS] + [SEP]
            do_basic_tokenize=0,
            do_lower_case=0,
        ),
    ]
    for name, out in zip(
        ("t_ids", "t_types", "t_mask"), ("ids_row", "types_row", "mask_row"), strict=True
    ):
        nodes += pad_nodes(name, "b_length", out)
    nodes.append(helper.make_node("Identity", ["cond"], ["cond_out"]))
    scalar = lambda n, t: helper.make_tensor_value_info(n, t, [])  # noqa: E731
    rows = ("ids_row", "types_row", "mask_row")
    return helper.make_graph(
        nodes,
        "row",
        [scalar("i", TensorProto.INT64), scalar("cond", TensorProto.BOOL)],
        [scalar("cond_out", TensorProto.BOOL)]
        + [helper.make_tensor_value_info(n, TensorProto.INT64, [length]) for n in rows],
    )


def preprocessing_graph(settings: dict, tables: dict, dtypes: dict[str, int]) -> onnx.ModelProto:
    """`text` -> `pre_token_ids`, `pre_segment_ids`, `pre_padding_mask` in the token-id model's
    element types `dtypes`."""
    length = settings["sequence_length"]
    true = helper.make_tensor("t", TensorProto.BOOL, [], [True])
    nodes = outer_constants() + [
        helper.make_node("Shape", [TEXT], ["n_rows"]),
        helper.make_node("Squeeze", ["n_rows"], ["trips"]),  # the Loop's trip count
        # one extra "" row: ortx string ops crash on a batch of 0 strings
        helper.make_node("Concat", [TEXT, "empty1"], ["texts1"], axis=0),
        helper.make_node("Add", ["n_rows", "one1"], ["rows1"]),
        *word_nodes(tables, "texts1", "rows1"),
        helper.make_node("Constant", [], ["true"], value=true),
        helper.make_node(
            "Loop",
            ["trips", "true"],
            ["ids_rows", "types_rows", "mask_rows"],
            body=loop_body(settings),
        ),
        # a batch of 0 gives [0] scan outputs: the reshape makes every output [batch, length]
        const("row_shape", [-1, length]),
    ]
    outputs = []
    for rows, name in zip(("ids_rows", "types_rows", "mask_rows"), IDS, strict=True):
        nodes += [
            helper.make_node("Reshape", [rows, "row_shape"], [f"{rows}_2d"]),
            helper.make_node("Cast", [f"{rows}_2d"], [PRE + name], to=dtypes[name]),
        ]
        outputs.append(helper.make_tensor_value_info(PRE + name, dtypes[name], [None, length]))
    graph = helper.make_graph(
        nodes,
        "ortx_bert_preprocessing",
        [helper.make_tensor_value_info(TEXT, TensorProto.STRING, [None])],
        outputs,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)]
    )
