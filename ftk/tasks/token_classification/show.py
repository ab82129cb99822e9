"""Ask a published entity tagger about raw sentences, as a TF Serving client would get them
(`make demo-ner` ends with it): the SavedModel's `serving_default`, called with strings.

    python -m ftk.tasks.token_classification.show VERSION_DIR ["a sentence" ...]

Without sentences, the first held-out sentences the export was verified on are asked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def ask(version_dir: Path, sentences: list[str]) -> list[list[dict]]:
    """The entities the SavedModel at `version_dir` finds in each sentence."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (registers the graph's tokenizer ops)

    from ftk.tasks.token_classification.verify import served_entities

    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = {k: v.numpy() for k, v in signature(text=tf.constant(sentences)).items()}
    return [served_entities(outputs, i) for i in range(len(sentences))]


def show(version_dir: Path, sentences: list[str]) -> str:
    lines = [f"SavedModel: {version_dir}"]
    for sentence, entities in zip(sentences, ask(version_dir, sentences), strict=True):
        lines.append(f"\n{sentence}")
        for e in entities or [{"text": "(no entities)", "type": "", "start": "", "end": ""}]:
            where = f"[{e['start']}:{e['end']}]" if e["type"] else ""
            score = f"{e['score']:.3f}" if e["type"] else ""
            lines.append(f"  {e['type']:<12} {where:<10} {score:<6} {e['text']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ftk.tasks.token_classification.verify import read_reference

    parser = argparse.ArgumentParser(prog="python -m ftk.tasks.token_classification.show")
    parser.add_argument("version_dir", type=Path, help="saved_models/<model_name>/<version>")
    parser.add_argument("sentences", nargs="*", help="raw sentences (default: held-out ones)")
    parser.add_argument("--held-out", type=int, default=4, help="held-out sentences to add")
    args = parser.parse_args(argv)
    held_out = read_reference(args.version_dir)[0]["texts"][: args.held_out]
    print(show(args.version_dir, args.sentences + held_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
