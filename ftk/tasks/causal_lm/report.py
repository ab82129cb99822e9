"""The causal-LM sections of the run report: held-out loss, perplexity and ROUGE-L before and
after training, and the answers to the same held-out prompts, side by side."""

from __future__ import annotations

from ftk.report.document import Doc, RunFacts


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def add_sections(doc: Doc, facts: RunFacts) -> None:
    metrics = facts.metrics
    doc.heading("Test metrics")
    if not metrics:
        doc.missing("no metrics.json (the run stopped before the test evaluation)")
        return
    before, after = metrics.get("before", {}), metrics.get("after", {})
    rows = [
        ["loss (nats per response token)", _fmt(before.get("loss")), _fmt(metrics.get("loss"))],
        ["perplexity", _fmt(before.get("perplexity"), 2), _fmt(metrics.get("perplexity"), 2)],
        ["ROUGE-L", _fmt(before.get("rouge_l")), _fmt(after.get("rouge_l"))],
        [
            "generation tokens/s",
            _fmt(before.get("generation_tokens_per_second"), 1),
            _fmt(after.get("generation_tokens_per_second"), 1),
        ],
    ]
    doc.table(["metric", "before (pretrained)", "after (fine-tuned)"], rows)
    doc.para(
        f"{metrics.get('examples', 0)} held-out conversations, "
        f"{metrics.get('response_tokens', 0)} response tokens; ROUGE-L on the first "
        f"{after.get('rouge_l_examples', before.get('rouge_l_examples', 0))} prompts' answers "
        "against the reference answers."
    )
    doc.heading("Generations")
    samples_before = {s["prompt"]: s["answer"] for s in before.get("samples", [])}
    samples = after.get("samples", [])
    if not samples:
        doc.missing("no generations recorded (generate.samples = 0)")
        return
    doc.table(
        ["prompt", "reference", "before", "after"],
        [
            [s["prompt"], s["reference"], samples_before.get(s["prompt"], "—"), s["answer"]]
            for s in samples
        ],
    )
