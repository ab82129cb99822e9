"""What the raw-string ONNX model needs from an export's tokenizer preset (`onnx/preprocessor/`),
read from its JSON files (no Keras, no TensorFlow); settings it cannot reproduce are refused."""

from __future__ import annotations

import json
from pathlib import Path

from ftk.errors import ExportError

SPECIALS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")


def _problems(pre: dict, tok: dict, words: list[str]) -> list[str]:
    problems = []
    if not pre["class_name"].startswith("Bert"):
        problems.append(f"preprocessor {pre['class_name']} (only BERT WordPiece)")
    if not tok.get("split", True):
        problems.append("split=False")
    if tok.get("special_tokens") or tok.get("special_tokens_in_strings"):
        problems.append("special tokens in strings")
    if tok.get("suffix_indicator", "##") != "##" or tok.get("oov_token", "[UNK]") != "[UNK]":
        problems.append("a suffix_indicator other than ## or an oov_token other than [UNK]")
    if not (tok.get("lowercase") and tok.get("strip_accents")):
        problems.append("lowercase=False or strip_accents=False (an uncased model is needed)")
    # ortx's BertTokenizer looks these up when it is created.
    problems += [f"{s} not in the vocabulary" for s in SPECIALS if s not in words]
    if words and words[0] != "[PAD]":
        problems.append("[PAD] is not id 0 (padding is 0)")
    # Words with a character WordPiece cannot continue with ("##c" missing) become one [UNK]
    # by a regex: exact only when no vocabulary entry continues with such a character.
    suffix = {w[2:] for w in words if w.startswith("##") and len(w) == 3}
    # ("[unused0]"-style entries never match: keras-hub splits the brackets off first)
    bracketed = lambda w: w.startswith("[") and w.endswith("]")  # noqa: E731
    continued = [w[2:] if w.startswith("##") else w[1:] for w in words if not bracketed(w)]
    if any(c not in suffix for rest in continued for c in rest):
        problems.append('vocabulary entries continue with characters c that have no "##c"')
    if any(w != w.strip() or not w for w in words):
        # ortx splits the vocabulary on line breaks and drops empty lines: ids would shift.
        problems.append("empty or space-padded vocabulary lines")
    return problems


def read_settings(preset: Path) -> dict:
    """`vocab` (the vocabulary file's text), `words` and `sequence_length` of the keras-hub
    BERT preprocessor saved in `preset`; `ExportError` for one this model cannot reproduce."""
    preset = Path(preset)
    pre = json.loads((preset / "preprocessor.json").read_text(encoding="utf-8"))
    tok = json.loads((preset / "tokenizer.json").read_text(encoding="utf-8"))["config"]
    vocab_file = preset / "assets" / "tokenizer" / "vocabulary.txt"
    if tok.get("vocabulary") is not None or not vocab_file.is_file():
        raise ExportError(f"export.onnx_text: no vocabulary file in {preset}.")
    vocab = vocab_file.read_text(encoding="utf-8")
    words = vocab.splitlines()
    problems = _problems(pre, tok, words)
    if problems:
        raise ExportError(
            "export.onnx_text cannot rebuild this tokenizer in onnxruntime-extensions ops: "
            + "; ".join(problems)
            + ". Set export.onnx_text = false (the SavedModel and token-id ONNX model stay)."
        )
    return {
        "vocab": vocab,
        "words": words,
        "sequence_length": int(pre["config"]["sequence_length"]),
    }
