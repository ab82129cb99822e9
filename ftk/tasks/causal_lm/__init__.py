"""Instruction tuning of a causal language model: conversations (JSON lines, JSON, CSV, or the
packaged chatterbot corpus) -> keras-hub's `CausalLM` (SmolLM2-135M-Instruct offline, any
keras-hub causal LM preset online), LoRA by default, the loss on the responses only; the
SavedModel takes prompt strings and returns generated text. docs/templates/causal-lm.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ftk.tasks.base import Task
from ftk.tasks.registry import register_task

if TYPE_CHECKING:
    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

logger = logging.getLogger("ftk")
ROUGE_PROMPTS = 32  # held-out prompts answered for ROUGE-L (the report shows generate.samples)


@register_task
class CausalLM(Task):
    """Generative fine-tuning: the model learns to write the responses of the conversations."""

    name = "causal_lm"
    cpu_compute = "decoder"
    title = "Instruction tuning (causal LM)"
    template = "causal-lm"
    only_keys = (
        "model.sequence_length",
        "model.quantize",
        "model.chat_template",
        "data.prompt_column",
        "data.response_column",
        "data.system_prompt",
        "data.packing",
        "generate.sampler",
        "generate.max_new_tokens",
        "generate.top_k",
        "generate.top_p",
        "generate.temperature",
        "generate.samples",
    )
    unused_keys = (
        "export.preset",
        "export.openvino",
        "export.onnx_text",
        "export.litert",
        "run.report_mistakes",
        "train.loss",
        "data.format",
        "data.label_column",
        "data.labels",
        "data.conflicting_labels",
        "train.label_smoothing",
        "train.class_weight",
        "recipe.name",
        "recipe.head_epochs",
        "recipe.head_learning_rate",
        "recipe.unfreeze_every",
        "recipe.lr_embeddings",
        "recipe.lr_lower",
        "recipe.lr_upper",
        "recipe.lr_head",
        "recipe.cv_folds",
        "tune.cache_features",
        "export.onnx_int8",
    )
    defaults = {
        "model": {"preset": "smollm2_135m_instruct", "lora_rank": 4, "dropout": 0.0},
        "data": {"path": "example:chatterbot", "validation_split": 0.05, "test_split": 0.08},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 3e-4,
            "weight_decay": 0.0,
            "early_stopping_patience": 1,
        },
        "recipe": {"name": "single"},
        "export": {"model_name": "causal_lm", "onnx": False, "verify_examples": 4},
    }
    objectives = {"val_loss": "min"}
    interpolation_metric = "loss"
    headline_metrics = ("perplexity", "loss")
    metric_titles = {"perplexity": "perplexity", "loss": "loss (nats per response token)"}
    signature = {
        "inputs": {"prompt": "DT_STRING [-1]"},
        "outputs": {"text": "DT_STRING [-1]", "token_ids": "DT_INT32 [-1, -1]"},
    }

    # -- config -----------------------------------------------------------------------------
    def validate(self, config: Config, fail) -> None:
        model, gen = config.model, config.generate
        from ftk.config.validation import one_of

        one_of(config, fail, "model.quantize", "model.chat_template", "generate.sampler")
        if not config.data.path:
            fail(
                "data.path", "a .jsonl, .json or .csv file of conversations, or example:chatterbot"
            )
        if not 16 <= model.sequence_length <= 32768:
            fail("model.sequence_length", "between 16 and 32768")
        if model.quantize != "none" and not model.lora_rank:
            fail("model.quantize", "'none' unless model.lora_rank > 0 (int8 weights are frozen)")
        if not 1 <= gen.max_new_tokens <= 4096:
            fail("generate.max_new_tokens", "between 1 and 4096")
        if gen.top_k < 1:
            fail("generate.top_k", ">= 1")
        if not 0.0 < gen.top_p <= 1.0:
            fail("generate.top_p", "in (0, 1]")
        if gen.temperature <= 0:
            fail("generate.temperature", "> 0")
        if not 0 <= gen.samples <= 64:
            fail("generate.samples", "between 0 and 64")

    # -- data -------------------------------------------------------------------------------
    def load_data(self, config: Config) -> Splits:
        from ftk.data.chat import load_chat_splits

        return load_chat_splits(config.data, config.resolve_path, seed=config.run.seed)

    def encode(self, examples, config: Config, training: bool):
        from ftk.tasks.causal_lm.chat import encode
        from ftk.tasks.causal_lm.model import chat_context

        prep, fmt = chat_context(config)
        encoded = encode(
            fmt,
            prep.tokenizer,
            examples.conversations,
            config.model.sequence_length,
            pack=training and config.data.packing,
        )
        if encoded.truncated or encoded.dropped:
            logger.warning(
                "%d of %d conversations were cut to model.sequence_length=%d (%d tokens cut); "
                "%d were left out (the prompt alone fills the window)",
                encoded.truncated,
                len(examples),
                config.model.sequence_length,
                encoded.tokens_cut,
                encoded.dropped,
            )
        return encoded

    def dataset(self, examples: Examples, config: Config, training: bool):
        import tensorflow as tf

        e = self.encode(examples, config, training)
        ds = tf.data.Dataset.from_tensor_slices(
            ({"token_ids": e.token_ids, "padding_mask": e.padding_mask}, e.targets, e.weights)
        )
        from ftk.data.batches import batched

        return batched(ds, len(e.token_ids), config, training)

    # -- model ------------------------------------------------------------------------------
    def build_model(self, info, config: Config, label_names: list[str]):
        from ftk.tasks.causal_lm.model import build_causal_lm

        return build_causal_lm(info, config.model)

    def prepare_model(self, model, config: Config) -> None:
        if config.model.quantize == "int8":
            model.backbone.quantize("int8")
            logger.info("model.quantize: the backbone's kernels are int8 (frozen; LoRA on top)")

    def loss(self, config: Config):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        )

    # -- evaluation -------------------------------------------------------------------------
    def predict(self, model, dataset):
        from ftk.tasks.causal_lm.model import response_nll

        return response_nll(model, dataset)

    def evaluate(self, examples, outputs, label_names: list[str], calibration=None) -> dict:
        from ftk.tasks.causal_lm.model import likelihood_metrics

        return likelihood_metrics(outputs)

    def measure(self, model, splits, config: Config, when: str) -> dict:
        """Generations for held-out prompts, their ROUGE-L and speed; before training also the
        test loss and perplexity of the pretrained model."""
        from ftk.tasks.causal_lm.model import (
            chat_context,
            generate_texts,
            likelihood_metrics,
            rouge_l,
        )

        prep, fmt = chat_context(config)
        test = splits.test
        n = min(len(test), max(ROUGE_PROMPTS, config.generate.samples))
        if not config.generate.samples:
            n = 0  # no generations: the likelihood only
        prompts = [fmt.split(c)[0] for c in test.conversations[:n]]
        answers, speed = [], 0.0
        for start in range(0, n, 8):
            texts, tps = generate_texts(model, prep, prompts[start : start + 8], config)
            answers.extend(texts)
            speed = max(speed, tps)
        result = {
            "rouge_l": rouge_l(answers, test.responses[:n]) if n else None,
            "rouge_l_examples": n,
            "generation_tokens_per_second": speed,
            "samples": [
                {"prompt": p, "reference": r, "answer": a}
                for p, r, a in zip(
                    test.inputs[: config.generate.samples],
                    test.responses[: config.generate.samples],
                    answers,
                    strict=False,
                )
            ],
        }
        if when == "before":
            result.update(
                likelihood_metrics(self.predict(model, self.dataset(test, config, False)))
            )
        logger.info(
            "%s training: ROUGE-L %s on %d held-out prompts%s",
            when.capitalize(),
            "—" if result["rouge_l"] is None else f"{result['rouge_l']:.3f}",
            n,
            f", test perplexity {result['perplexity']:.2f}" if "perplexity" in result else "",
        )
        return result

    # -- export -----------------------------------------------------------------------------
    def write_export(
        self, model, labels, config: Config, staging: Path, inputs, outputs, calibration=None
    ) -> None:
        from ftk.tasks.causal_lm.export import write_export

        write_export(model, config, staging, list(inputs))

    def serving_inputs(self, version_dir: Path) -> dict:
        import numpy as np

        from ftk.files import read_json
        from ftk.tasks.causal_lm.export import PROMPT_INPUT, REFERENCE

        prompts = read_json(Path(version_dir) / "assets.extra" / REFERENCE)["prompts"]
        return {PROMPT_INPUT: np.asarray([p.encode() for p in prompts], dtype=object)}

    def verify_export(self, version_dir: Path) -> dict:
        from ftk.tasks.causal_lm.verify import verify_export

        return verify_export(version_dir)

    def verification_summary(self, export: dict) -> str:
        n = export["examples"]
        if not export.get("greedy"):
            return f"sampled generation: {n} prompts answered, not compared token by token"
        same = export["savedmodel_exact"] + export["savedmodel_near_tie"]
        return (
            f"the same tokens as Keras' generate on {same}/{n} held-out prompts, also through "
            f"REST and gRPC; preset logits within {export['preset_max_abs_diff']:.1e}"
        )

    # -- report -----------------------------------------------------------------------------
    def report_sections(self, doc, run) -> None:
        from ftk.tasks.causal_lm.report import add_sections

        add_sections(doc, run)

    def feature_cache_refusal(self, config: Config) -> str | None:
        return "a causal LM trains through the whole network (no frozen-feature cache)"
