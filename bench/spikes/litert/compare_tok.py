# ruff: noqa
# Step 2: token-id parity of the LiteRT-friendly tokenizer vs the exported keras-hub tokenizer graph.
import numpy as np, sys, json
from common import *

ref_tok, _ = split_exported()
tok = tf.function(make_litert_tokenizer(), input_signature=[tf.TensorSpec([None], tf.string)])
bbc = texts()
bbc_titles = [t.split("\n")[0] for t in bbc]
res = {}
for name, data in [("bbc_full", bbc), ("bbc_titles", bbc_titles), ("edge", EDGE)]:
    bad = []
    for i in range(0, len(data), 32):
        b = data[i : i + 32]
        r = [x.numpy() for x in ref_tok(tf.constant(b))]
        c = [x.numpy() for x in tok(tf.constant(b))]
        for j in range(len(b)):
            if not all(np.array_equal(r[k][j], c[k][j].astype(r[k].dtype)) for k in range(3)):
                bad.append(
                    (
                        i + j,
                        b[j][:60],
                        r[0][j][: int(r[2][j].sum())].tolist(),
                        c[0][j][: int(c[2][j].sum())].tolist(),
                    )
                )
    res[name] = (len(data), len(bad))
    print(f"{name}: {len(bad)}/{len(data)} mismatches")
    for x in bad[:12]:
        print("  ", repr(x[1]), "\n     ref", x[2][:20], "\n     new", x[3][:20])
