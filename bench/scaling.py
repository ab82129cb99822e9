"""Row 7: one epoch of fine-tuning (all weights) on `--examples` training texts, in this fresh
process: the epoch's wall time (median of `--epochs` timed epochs after one warm-up step, each a
`fit` over the whole training split as ftk's pipeline gives it) and this process's peak RSS.

The orchestrator runs it at 1x, 4x and 16x the examples: time should grow linearly with the
data, memory should not.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from bench.common import emit, log, peak_rss_mb, set_backend, text_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, required=True)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    args = parser.parse_args()
    set_backend("tensorflow")
    from bench.steps import ftk_model

    config = text_config(
        "tensorflow",
        [
            f"data.max_train_examples={args.examples}",
            f"model.sequence_length={args.sequence_length}",
        ],
    )
    _, splits, _, model, train = ftk_model(config)
    if len(splits.train) != args.examples:
        raise RuntimeError(f"asked for {args.examples} training examples, got {len(splits.train)}")
    before = peak_rss_mb()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        model.fit(train.repeat(), steps_per_epoch=1, epochs=1, verbose=0)  # tracing
        after_warmup = peak_rss_mb()
        seconds = []
        for i in range(args.epochs):
            began = time.perf_counter()
            model.fit(train, epochs=1, verbose=0)
            seconds.append(time.perf_counter() - began)
            log(f"{args.examples} examples: epoch {i} in {seconds[-1]:.1f} s")
    for i, value in enumerate(seconds):
        emit(rep=i, epoch_s=value)
    emit(
        summary=True,
        examples=args.examples,
        steps=-(-args.examples // config.train.batch_size),
        median_epoch_s=statistics.median(seconds),
        peak_rss_mb=peak_rss_mb(),
        peak_rss_after_build_mb=before,
        peak_rss_after_warmup_mb=after_warmup,
    )


if __name__ == "__main__":
    main()
