# ruff: noqa
# Probe where keras-hub's and FastBert's normalizations differ on the mismatching edge cases.
from common import *
import unicodedata

fbn = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=True)
for s in ["한국어", "a\u00a0b", "…", "zero\u200bwidth", "ＡＢＣ", "ﬁ"]:
    cf = tf_text.case_fold_utf8(tf.constant([s]))
    nfd = tf_text.normalize_utf8(cf, "NFD")
    kh = tf.strings.regex_replace(nfd, r"\p{Mn}", "")
    fb = fbn.normalize(tf.constant([s]))
    show = lambda t: [f"U+{ord(c):04X}" for c in t.numpy()[0].decode()]
    print(repr(s), "keras-hub:", show(kh), "| fastbert:", show(fb))
v = vocab()
print(
    "jamo in vocab:",
    [w for w in v if len(w) <= 3 and any(0x1100 <= ord(c) <= 0x11FF for c in w)][:10],
)
print(
    "hangul syllables in vocab:", [w for w in v if any(0xAC00 <= ord(c) <= 0xD7A3 for c in w)][:10]
)
