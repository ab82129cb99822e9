"""keras-hub's BERT tokenizer and text-classifier packing as an OpenVINO model, op by op.

`build_tokenizer(tokenizer_settings(preprocessor))`: `text` (string `[batch]`) -> `token_ids`,
`segment_ids` (int32) and `padding_mask` (bool), `[batch, sequence_length]`, the ids keras-hub's
TF path gives (what the SavedModel's `serving_default` runs), built from openvino-tokenizers'
building blocks in keras-hub's order: strip accents (NFD, drop marks), cut at NUL, split on
whitespace/controls and isolate punctuation and CJK, lowercase per word (NFKC case fold, with
the full folds and ignorable characters ICU's NFKC_Casefold has), WordPiece, truncate,
`[CLS] ... [SEP]`, pad. Measured: identical ids on 342 real and edge-case texts and on 3,000
random Unicode strings (docs/results/2026-12-04-deploy.md). Each step's comment says which
difference it closes.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the string ops with ov.Core and NodeFactory)
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

from ftk.errors import ExportError

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


def tokenizer_settings(preprocessor) -> dict:
    """What the OpenVINO tokenizer needs from a keras-hub WordPiece preprocessor; refuses the
    settings it does not reproduce."""
    from keras_hub.tokenizers import WordPieceTokenizer

    tok = preprocessor.tokenizer
    if not isinstance(tok, WordPieceTokenizer):
        raise ExportError(
            f"export.openvino: only WordPiece (BERT-style) tokenizers, not {type(tok).__name__}."
        )
    if not tok.split or tok.special_tokens_in_strings:
        raise ExportError(
            "export.openvino: a tokenizer with split=False or special_tokens_in_strings=True."
        )
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
        words = _lowercase(words, skips)

    # 4. WordPiece (greedy longest match, whole word -> [UNK] if it cannot be covered or is
    #    over 100 bytes, like tf_text.FastWordpieceTokenizer).
    wordpiece = WordPieceTokenizationStep(
        vocab=s["vocabulary"],
        unk_token=s["oov_token"],
        suffix_indicator=s["suffix_indicator"],
        max_bytes_per_word=100,
    )
    tokens = wordpiece.get_ov_subgraph(list(words))  # ragged (begins, ends, ids) per text

    return ov.Model(_pack(tokens, s), [text], "keras_hub_bert_tokenizer")


def _lowercase(words: list, skips) -> list:
    """NFKC case folding per word, with the full folds and ignorable characters ICU's
    NFKC_Casefold has and OpenVINO's CharsMapNormalization lacks; empty words dropped."""
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
    return words


def _pack(tokens, s: dict) -> list:
    """Ragged token ids -> `[CLS] ... [SEP]`, truncated and padded to `sequence_length`:
    the `token_ids`, `segment_ids` and `padding_mask` results."""
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
    return outputs
