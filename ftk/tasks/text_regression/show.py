"""Ask a published text regressor about raw texts, as a TF Serving client would
(`make demo-regression` ends with it): the SavedModel's `serving_default`, called with strings.

    python -m ftk.tasks.text_regression.show VERSION_DIR ["a text" ...]
    python -m ftk.tasks.text_regression.show VERSION_DIR ["first ||| second" ...]   # pairs

Without texts, the first held-out texts (or pairs) the export was verified on are asked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def ask(version_dir: Path, texts: list):
    """`(target names, float32 [len(texts), targets])` from the SavedModel at `version_dir`;
    `texts` are strings, or `[first, second]` pairs for a pair model."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the graph's tokenizer ops)

    from ftk.tasks.text_regression.pairs import serving_arrays

    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    names = (Path(version_dir) / "assets.extra" / "labels.txt").read_text().split("\n")
    arrays = {k: tf.constant(v) for k, v in serving_arrays(texts).items()}
    return [n for n in names if n], signature(**arrays)["values"].numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("texts", nargs="*")
    args = parser.parse_args(argv)
    texts = [t.split(" ||| ") if " ||| " in t else t for t in args.texts]
    if not texts:
        from ftk.tasks.text_regression.verify import read_reference

        texts = read_reference(args.version_dir)["texts"][:5]
    from ftk.tasks.text_regression.pairs import shown

    names, values = ask(args.version_dir, texts)
    print(f"SavedModel: {args.version_dir}")
    for text, row in zip(texts, values, strict=True):
        numbers = "  ".join(f"{n} {v:+.2f}" for n, v in zip(names, row, strict=True))
        print(f"  {numbers}   {shown(text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
