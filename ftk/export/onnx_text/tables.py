"""Per-character tables for the raw-string ONNX model, computed with the TensorFlow ops keras-hub
itself runs (`keras_hub.src.tokenizers.word_piece_tokenizer.pretokenize`), over every code
point: about 20 s at export time.

The ONNX graph cannot run NFD, mark stripping and NFKC case folding (onnxruntime-extensions has
no Unicode normaliser), so it maps characters with these tables instead:

* `map`: c -> NFKC_Casefold(strip_Mn(NFD(c))), applied per character BEFORE the word split;
  kept only where splitting the mapped character in context ("", "a", " ", "1" around it)
  gives the words keras-hub makes (keras-hub case-folds after splitting);
* characters whose keras-hub word contains a space (U+00B4 -> " \\u0301") map to `SENTINEL`:
  that word always fails WordPiece ([UNK]), as does a word holding the sentinel;
* `word_map`: punctuation and CJK characters, words of their own, whose folded word differs
  (U+2026 -> "...", U+FF01 -> "!"), applied to whole words after the split;
* `remove`: characters case folding deletes;
* `skipped`: the rest (fullwidth + = | ^ ~ $, enclosed alphanumerics, Kangxi radicals, CJK
  squares...): left alone, so words holding them can differ from keras-hub's;
* `classes`: nonspacing marks, keras-hub's whitespace, punctuation and CJK, as TensorFlow's RE2
  sees them (onnxruntime-extensions' RE2 has older Unicode tables);
* `suffix_chars`: the characters c with "##c" in the vocabulary.
"""

from __future__ import annotations

import numpy as np

SENTINEL = "\ue000"  # private use: in no vocabulary, split on by nothing


def _folded(t) -> list[str]:
    import tensorflow as tf
    from keras_hub.src.tokenizers import word_piece_tokenizer as w

    nfd = w.tf_text.normalize_utf8(t, "NFD")
    return [
        x.decode()
        for x in w.tf_text.case_fold_utf8(tf.strings.regex_replace(nfd, r"\p{Mn}", "")).numpy()
    ]


def _words(texts: list[str], keras: bool) -> list[list[str]]:
    """keras-hub's words (keras=True), or the same split without NFD, stripping and folding."""
    import tensorflow as tf
    from keras_hub.src.tokenizers import word_piece_tokenizer as w

    out = w.pretokenize(tf.constant(texts), lowercase=keras, strip_accents=keras).to_list()
    return [[x.decode() for x in ws] for ws in out]


def _classes(t) -> dict[str, np.ndarray]:
    import tensorflow as tf
    from keras_hub.src.tokenizers import word_piece_tokenizer as w

    patterns = {
        "mn": r"\p{Mn}",
        "ws": w.WHITESPACE_REGEX,
        "punct": w.PUNCTUATION_REGEX,
        "cjk": w.CJK_REGEX,
    }
    return {k: tf.strings.regex_full_match(t, p).numpy() for k, p in patterns.items()}


def char_tables(words: list[str]) -> dict:
    """The tables for a vocabulary `words` (see the module docstring)."""
    import tensorflow as tf

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    t = tf.constant(chars)
    cls = _classes(t)
    folded = _folded(t)
    alone = _words(chars, True)
    cand = [
        i for i, c in enumerate(chars) if not (cls["mn"][i] or cls["ws"][i]) and alone[i] != [c]
    ]
    ok = np.ones(len(cand), bool)
    for ctx in ("", "a", " ", "1"):
        theirs = _words([ctx + chars[i] + ctx for i in cand], True)
        ours = _words([ctx + (folded[i] or " ") + ctx for i in cand], False)
        ok &= np.array([x == y for x, y in zip(theirs, ours, strict=True)])
    tables: dict = {"map": {}, "word_map": {}, "remove": [], "skipped": []}
    for j, i in enumerate(cand):
        c, word = chars[i], alone[i]
        if word in ([], [""]):
            tables["remove"].append(c)
        elif (cls["punct"][i] or cls["cjk"][i]) and len(word) == 1:
            tables["word_map"][c] = SENTINEL if " " in word[0] else word[0]
        elif ok[j] and folded[i]:
            tables["map"][c] = folded[i]
        elif len(word) == 1 and " " in word[0]:
            tables["map"][c] = SENTINEL
        else:
            tables["skipped"].append(c)
    tables["suffix_chars"] = sorted({v[2:] for v in words if v.startswith("##") and len(v) == 3})
    tables["classes"] = {
        k: [c for c, x in zip(chars, flags, strict=True) if x] for k, flags in cls.items()
    }
    return tables
