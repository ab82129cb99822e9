"""Conversations to token ids: the chat template, response-only loss weights, truncation and
packing. NumPy only; the tokenizer is passed in (a keras-hub tokenizer).

The prompt (everything before the assistant's reply, with the template's generation prompt)
and the response (the reply and the template's end-of-turn token) are tokenized apart, so the
loss weights are exact: 1 on the response's tokens, 0 on the prompt's and on padding. The ids
start with the tokenizer's start token, as keras-hub's `generate` starts them, so a prompt is
the same sequence in training and in generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PLAIN = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% else %}{{ message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
)
_SENTINEL = "\u0000FTK_PROMPT\u0000"


@dataclass(frozen=True)
class ChatFormat:
    """A chat template and the tokens around it."""

    template: str  # Jinja source
    name: str  # "tokenizer", "chatml" or "plain"
    start_token: str | None
    end_token: str | None
    system_prompt: str = ""

    def render(self, messages: list[dict], generation_prompt: bool) -> str:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(self.template).render(
            messages=messages,
            add_generation_prompt=generation_prompt,
            bos_token=self.start_token or "",
            eos_token=self.end_token or "",
        )
        # The start token is added as an id (as `generate` adds it), not as text.
        if self.start_token and text.startswith(self.start_token):
            text = text[len(self.start_token) :]
        return text

    def with_system(self, messages: list[dict]) -> list[dict]:
        if self.system_prompt and messages[0]["role"] != "system":
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return messages

    def split(self, conversation: list[dict]) -> tuple[str, str]:
        """(prompt text, response text) of a conversation ending with the assistant's reply."""
        messages = self.with_system(conversation)
        prompt = self.render(messages[:-1], generation_prompt=True)
        full = self.render(messages, generation_prompt=False)
        if full.startswith(prompt):
            return prompt, full[len(prompt) :]
        return prompt, messages[-1]["content"] + (self.end_token or "")

    def affixes(self) -> tuple[str, str]:
        """The text before and after a single user message, as a served model wraps a raw
        prompt (`prefix + prompt + suffix`)."""
        text = self.render(
            self.with_system([{"role": "user", "content": _SENTINEL}]), generation_prompt=True
        )
        prefix, _, suffix = text.partition(_SENTINEL)
        return prefix, suffix

    def prompt_text(self, prompt: str) -> str:
        prefix, suffix = self.affixes()
        return prefix + prompt + suffix


def chat_format(choice: str, preset_dir: str, tokenizer, system_prompt: str = "") -> ChatFormat:
    """`model.chat_template`: the tokenizer's own template (`auto`, when the preset directory
    has one in `tokenizer_config.json`), ChatML, or plain text."""
    start = getattr(tokenizer, "start_token", None)
    end = getattr(tokenizer, "end_token", None)
    template, name = CHATML, "chatml"
    if choice == "plain":
        template, name = PLAIN, "plain"
    elif choice == "auto":
        config = Path(preset_dir) / "tokenizer_config.json"
        if config.is_file():
            own = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(own, str) and own.strip():
                template, name = own, "tokenizer"
    return ChatFormat(template, name, start, end, system_prompt)


def token_lists(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text (no start or end token added)."""
    out = tokenizer(texts)
    if hasattr(out, "to_list"):  # a tf.RaggedTensor
        return out.to_list()
    if isinstance(out, list):
        return [list(map(int, row)) for row in out]
    return [list(map(int, row)) for row in np.asarray(out)]


@dataclass
class Encoded:
    """Training arrays: `token_ids`, `padding_mask` (`[n, length]`), `targets` (the next
    token), `weights` (1 on response tokens), and what truncation cost."""

    token_ids: np.ndarray
    padding_mask: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    truncated: int = 0  # conversations whose response was cut
    dropped: int = 0  # conversations whose prompt alone filled the window
    tokens_cut: int = 0

    def to_json(self) -> dict:
        return {
            "sequences": int(len(self.token_ids)),
            "response_tokens": int(self.weights.sum()),
            "truncated": self.truncated,
            "dropped": self.dropped,
            "tokens_cut": self.tokens_cut,
        }


def sequences(fmt: ChatFormat, tokenizer, conversations: list[list[dict]]):
    """For each conversation, its ids (start token first) and a 0/1 response mask."""
    texts = [fmt.split(c) for c in conversations]
    prompts = token_lists(tokenizer, [p for p, _ in texts])
    responses = token_lists(tokenizer, [r for _, r in texts])
    start = getattr(tokenizer, "start_token_id", None)
    head = [] if start is None else [int(start)]
    for p, r in zip(prompts, responses, strict=True):
        yield head + p + r, [0] * (len(head) + len(p)) + [1] * len(r)


def encode(
    fmt: ChatFormat,
    tokenizer,
    conversations: list[list[dict]],
    length: int,
    pack: bool = False,
    pad_id: int = 0,
) -> Encoded:
    """Windows of `length` inputs: each conversation alone (truncated at the end), or, with
    `pack`, several whole conversations per window, in order."""
    windows: list[tuple[list[int], list[int]]] = []
    truncated = dropped = cut = 0
    for ids, mask in sequences(fmt, tokenizer, conversations):
        if sum(mask[: length + 1]) == 0:  # the prompt fills the window: nothing to learn
            dropped += 1
            cut += len(ids)
            continue
        if len(ids) > length + 1:
            truncated += 1
            cut += len(ids) - length - 1
            ids, mask = ids[: length + 1], mask[: length + 1]
        if pack and windows and len(windows[-1][0]) + len(ids) <= length + 1:
            windows[-1][0].extend(ids)
            windows[-1][1].extend(mask)
        else:
            windows.append((list(ids), list(mask)))
    n = len(windows)
    token_ids = np.full([n, length], pad_id, np.int32)
    padding = np.zeros([n, length], bool)
    targets = np.full([n, length], pad_id, np.int32)
    weights = np.zeros([n, length], np.float32)
    for i, (ids, mask) in enumerate(windows):
        k = len(ids) - 1
        token_ids[i, :k] = ids[:-1]
        padding[i, :k] = True
        targets[i, :k] = ids[1:]
        weights[i, :k] = mask[1:]
    return Encoded(token_ids, padding, targets, weights, truncated, dropped, cut)
