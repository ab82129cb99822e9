"""Conversations to token ids (`ftk.tasks.causal_lm.chat`), with a character tokenizer: the
chat template, loss weights on the reply only, truncation with counts, and packing."""

import numpy as np

from ftk.tasks.causal_lm.chat import CHATML, ChatFormat, encode


class Chars:
    """One id per character (`ord`); `<s>` is the start token."""

    start_token, end_token, start_token_id = "<s>", "</s>", 1

    def __call__(self, texts):
        return [[ord(c) for c in t] for t in texts]


def conversation(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def test_chatml_prompt_and_reply_and_the_served_affixes():
    fmt = ChatFormat(CHATML, "chatml", None, None, system_prompt="Be brief.")
    prompt, reply = fmt.split(conversation("Hi?", "Hello."))
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert reply == "Hello.<|im_end|>\n"
    prefix, suffix = fmt.affixes()
    assert prefix + "Hi?" + suffix == prompt == fmt.prompt_text("Hi?")


def test_loss_weights_are_one_on_the_reply_tokens_only():
    fmt = ChatFormat(
        "{{ messages[0]['content'] }}|{{ messages[1]['content'] if messages|length > 1 else '' }}",
        "t",
        None,
        None,
    )
    e = encode(fmt, Chars(), [conversation("ab", "cd")], length=8)
    # ids: <s>=1, "ab|" then "cd": inputs are ids[:-1], targets ids[1:]
    assert e.token_ids[0, :5].tolist() == [1, ord("a"), ord("b"), ord("|"), ord("c")]
    assert e.targets[0, :5].tolist() == [ord("a"), ord("b"), ord("|"), ord("c"), ord("d")]
    assert e.weights[0].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert e.padding_mask[0].tolist() == [True] * 5 + [False] * 3


def test_truncation_is_counted_and_a_prompt_that_fills_the_window_is_left_out():
    fmt = ChatFormat(
        "{{ messages[0]['content'] }}{{ messages[1]['content'] if messages|length > 1 else '' }}",
        "t",
        None,
        None,
    )
    e = encode(
        fmt, Chars(), [conversation("ab", "cdefgh"), conversation("abcdefgh", "x")], length=4
    )
    assert len(e.token_ids) == 1 and e.truncated == 1 and e.dropped == 1
    assert e.to_json()["tokens_cut"] == (9 - 5) + 10
    assert e.weights[0].tolist() == [0, 0, 1, 1]  # targets a b | c d: the reply is c d


def test_packing_puts_short_conversations_in_one_window():
    fmt = ChatFormat(
        "{{ messages[0]['content'] }}{{ messages[1]['content'] if messages|length > 1 else '' }}",
        "t",
        None,
        None,
    )
    pairs = [conversation("a", "b"), conversation("c", "d"), conversation("e", "f")]
    alone = encode(fmt, Chars(), pairs, length=10)
    packed = encode(fmt, Chars(), pairs, length=10, pack=True)
    assert len(alone.token_ids) == 3 and len(packed.token_ids) == 1
    assert packed.weights.sum() == alone.weights.sum() == 3
    assert np.count_nonzero(packed.padding_mask) == 8  # 9 ids (3 x <s> a b) -> 8 inputs
