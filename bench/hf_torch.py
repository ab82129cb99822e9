"""Row 2's other side: fine-tune the same MiniLM-L6 directory with Hugging Face Transformers and
plain PyTorch on this CPU, as a user would write it, then test accuracy.

The same texts and split as ftk (read with ftk's loader from the baked text project: the
`data.max_train_examples` cap is the same stratified sample), the same batch, sequence
length, learning rate and weight decay (none on biases and LayerNorm), every weight
trainable, one pass over the training examples; `--precision mixed_bfloat16` runs the forward
pass under `torch.autocast("cpu", torch.bfloat16)`, as Transformers' Trainer does with
`bf16=True`. Loads only from the local directory
(`local_files_only=True`, `HF_HUB_OFFLINE=1`).

Prints `BENCH {"skipped": ...}` when transformers is not installed (it lives in .venv-bench).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

from bench.common import block_rates, emit, log, peak_rss_mb, spread_subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=480)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--test-limit", type=int, default=0, help="0 = the whole test split")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--precision",
        choices=["float32", "mixed_bfloat16"],
        default="float32",
        help="mixed_bfloat16: torch.autocast(cpu, bfloat16) around the forward pass, float32 "
        "weights and optimizer (what Keras' mixed_bfloat16 policy does)",
    )
    args = parser.parse_args()
    if importlib.util.find_spec("transformers") is None:
        emit(skipped="transformers not installed")
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench.common import text_config
    from ftk.data.text import load_text_splits
    from ftk.presets.resolve import resolve_preset

    config = text_config("torch", [f"data.max_train_examples={args.train_examples}"])
    splits = load_text_splits(config.data, config.resolve_path, seed=config.run.seed)
    location = resolve_preset(config.model.preset, config.base_dir).location
    seq, batch = config.model.sequence_length, config.train.batch_size
    torch.manual_seed(config.run.seed)

    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        location, num_labels=len(splits.label_names), local_files_only=True
    )

    def encode(texts):
        return tokenizer(
            texts, padding="max_length", truncation=True, max_length=seq, return_tensors="pt"
        )

    train = encode(splits.train.inputs)
    labels = torch.as_tensor(np.asarray(splits.train.labels, np.int64))
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": config.train.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.train.learning_rate)
    generator = torch.Generator().manual_seed(config.run.seed)
    ends = []
    began = time.perf_counter()
    bf16 = args.precision == "mixed_bfloat16"

    def autocast():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16)

    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch):
            index = order[start : start + batch]
            with autocast():
                out = model(
                    input_ids=train["input_ids"][index],
                    attention_mask=train["attention_mask"][index],
                    token_type_ids=train["token_type_ids"][index],
                    labels=labels[index],
                )
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            ends.append(time.perf_counter())
    train_s = time.perf_counter() - began
    log(f"trained {len(ends)} steps in {train_s:.1f} s")

    keep = spread_subset(len(splits.test), args.test_limit)
    test_texts = [splits.test.inputs[i] for i in keep]
    test_labels = np.asarray(splits.test.labels)[keep]
    model.eval()
    predictions = []
    with torch.no_grad(), autocast():
        for start in range(0, len(test_texts), 32):
            logits = model(**encode(test_texts[start : start + 32])).logits
            predictions.append(logits.float().argmax(-1).numpy())
    accuracy = float(np.mean(np.concatenate(predictions) == test_labels))
    for i, value in enumerate(block_rates(ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    emit(
        summary=True,
        accuracy=accuracy,
        test_examples=len(test_labels),
        train_examples=len(labels),
        steps=len(ends),
        train_s=train_s,
        batch=batch,
        precision=args.precision,
        transformers=transformers.__version__,
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        attention=getattr(model.config, "_attn_implementation", None),
        peak_rss_mb=peak_rss_mb(),
    )


if __name__ == "__main__":
    main()
