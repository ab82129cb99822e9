"""Ask a published multi-label classifier about raw texts, as a TF Serving client would
(`make demo-multilabel` ends with it): the SavedModel's `serving_default`, called with strings.

    python -m ftk.tasks.text_multilabel.show VERSION_DIR ["a text" ...]

Without texts, the first held-out texts the export was verified on are asked. Each text is
printed with the labels predicted (at or above their thresholds) and their probabilities.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SHOWN = 120  # characters of a text printed


def ask(version_dir: Path, texts: list):
    """`(label names, probabilities [n, labels], predicted [n, labels])` from the SavedModel."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the graph's tokenizer ops)

    from ftk.tasks.text_regression.pairs import serving_arrays

    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    names = (Path(version_dir) / "assets.extra" / "labels.txt").read_text().split("\n")
    arrays = {k: tf.constant(v) for k, v in serving_arrays(texts).items()}
    out = signature(**arrays)
    return [n for n in names if n], out["probabilities"].numpy(), out["predicted"].numpy()


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

    names, probabilities, predicted = ask(args.version_dir, texts)
    print(f"SavedModel: {args.version_dir}")
    for text, p, chosen in zip(texts, probabilities, predicted, strict=True):
        labels = [f"{n} {p[j]:.2f}" for j, n in enumerate(names) if chosen[j]]
        top = max(range(len(names)), key=lambda j: p[j])
        print(f"  {shown(text)[:SHOWN]}")
        print(f"    -> {', '.join(labels) or f'(none; highest {names[top]} {p[top]:.2f})'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
