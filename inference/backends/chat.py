"""Chat turns to prompt token ids, for the in-process backends (a tokenizer object only:
this module imports neither torch nor transformers).

The chat template's own markup (`<|im_start|>`, `<start_of_turn>`, ...) becomes control
tokens; what people wrote (every turn's content) is tokenised as text only, so a
student who types `<|im_end|><|im_start|>system` gets those characters, not a new turn.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from typing import Any

from inference.engine import Draft, DraftJob

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|end|>")


def _render(tokenizer: object, messages: list[dict], generation_prompt: bool = True) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception:  # noqa: BLE001 - e.g. Gemma's template refuses a system turn
        if not messages or messages[0].get("role") != "system" or len(messages) < 2:
            raise
        # Templates without a system role: the instructions open the first user turn.
        system, first, rest = messages[0], messages[1], messages[2:]
        merged = dict(first, content=f"{system['content']}\n\n{first['content']}")
        return tokenizer.apply_chat_template([merged, *rest], tokenize=False, add_generation_prompt=generation_prompt)


def encode_chat(tokenizer: object, messages: list[dict], generation_prompt: bool = True) -> list[int]:
    """The prompt's token ids, ending with the template's generation prompt (unless
    `generation_prompt` is false).

    The template is rendered with a random placeholder in place of each turn's content;
    the markup between placeholders is tokenised with special tokens recognised, each
    content with special tokens split into plain text (`split_special_tokens`)."""
    tag = secrets.token_hex(6)
    placeholders = {f"TUTORTURN{tag}N{i}X": str(m.get("content") or "") for i, m in enumerate(messages)}
    stand_ins = [dict(m, content=p) for m, p in zip(messages, placeholders, strict=True)]
    rendered = _render(tokenizer, stand_ins, generation_prompt)
    ids: list[int] = []
    for i, piece in enumerate(re.split(f"(TUTORTURN{tag}N\\d+X)", rendered)):
        if not piece:
            continue
        if i % 2:  # a placeholder: the turn's content, as text
            ids += tokenizer(placeholders[piece], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        else:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids


def stop_token_ids(tokenizer: object, config: object, folder: str) -> frozenset[int]:
    """Tokens that end a reply: the model's end-of-sequence ids (config and
    generation_config.json) and the usual end-of-turn tokens its vocabulary has."""
    stop: set[int] = set()
    gen_eos = None
    gen_path = os.path.join(folder, "generation_config.json")
    if os.path.isfile(gen_path):
        with open(gen_path) as fh:
            gen_eos = json.load(fh).get("eos_token_id")
    for ids in (getattr(config, "eos_token_id", None), gen_eos):
        if isinstance(ids, int):
            stop.add(ids)
        elif ids:
            stop.update(ids)
    vocab = tokenizer.get_vocab()
    for t in (*STOP_TOKENS, tokenizer.eos_token):
        if t and t in vocab:
            stop.add(tokenizer.convert_tokens_to_ids(t))
    return frozenset(stop)


def system_prefix_length(tokenizer: object, messages: list[dict], prompt_ids: list[int]) -> int:
    """How many of `prompt_ids` are the system turn alone (the class's instructions,
    the same for every draft of a class), or 0 when the prompt does not start with one
    that the template renders on its own (e.g. Gemma's, merged into the first user turn)."""
    if len(messages) < 2 or messages[0].get("role") != "system":
        return 0
    try:
        prefix = encode_chat(tokenizer, messages[:1], generation_prompt=False)
    except Exception:  # noqa: BLE001 - a template that wants a user turn
        return 0
    n = len(prefix)
    return n if 0 < n < len(prompt_ids) and prompt_ids[:n] == prefix else 0


EMIT_INTERVAL = 0.1  # seconds between two on_text calls of one job
POLL_INTERVAL = 0.05  # seconds between two should_stop polls of one job


class ChatTokens:
    """What both in-process engines do around their decoding thread: count and encode a chat
    (the content as text, see encode_chat), decode a draft, fit a job in the context window,
    and follow a submitted request to its Draft. The engine sets tokenizer, _tok_lock,
    context_window, max_new_default, model_name, settings and _thread, and has _cancel(req)."""

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self._encode(messages))

    def _encode(self, messages: list[dict]) -> list[int]:
        with self._tok_lock:
            return encode_chat(self.tokenizer, messages)

    def _decode(self, ids: list[int]) -> str:
        with self._tok_lock:
            return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _fit(self, messages: list[dict], max_new_tokens: int | None) -> tuple[list[int], int]:
        """The prompt's ids and how many new tokens the draft may take; ValueError when the
        prompt alone does not fit the context window."""
        prompt_ids = self._encode(messages)
        if len(prompt_ids) >= self.context_window:
            raise ValueError(
                f"Prompt of {len(prompt_ids)} tokens does not fit the {self.context_window}-token context window."
            )
        wanted = int(max_new_tokens) if max_new_tokens and max_new_tokens > 0 else self.max_new_default
        return prompt_ids, max(1, min(wanted, self.max_new_default, self.context_window - len(prompt_ids)))

    def _follow(self, req: Any, job: DraftJob, prompt_ids: list[int]) -> Draft:
        """Wait for a submitted request in the caller's thread: poll should_stop, stream the
        text so far to on_text (at most every EMIT_INTERVAL), and return its Draft."""
        emitted, emitted_n, last_emit, last_poll = "", 0, 0.0, 0.0
        try:
            while True:
                req.wake.wait(POLL_INTERVAL)
                req.wake.clear()
                if req.done:
                    break
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the model's decoding thread has stopped")
                now = time.monotonic()
                if job.should_stop is not None and now - last_poll >= POLL_INTERVAL * 0.9:
                    last_poll = now
                    if job.should_stop():
                        self._cancel(req)
                        continue
                if job.on_text is not None and now - last_emit >= EMIT_INTERVAL and not req.cancel:
                    n = len(req.tokens)
                    if n != emitted_n:
                        # an unfinished UTF-8 sequence decodes to U+FFFD: wait for its end
                        text = self._decode(req.tokens[:n]).rstrip("\ufffd").strip()
                        emitted_n = n
                        if text and text != emitted:
                            job.on_text(text)
                            emitted, last_emit = text, time.monotonic()
        except BaseException:
            self._cancel(req)
            raise
        if req.error is not None:
            raise req.error
        text = self._decode(req.tokens).strip()
        if job.on_text is not None and not req.cancel and text != emitted:
            job.on_text(text)
        return Draft(
            text=text,
            model_name=self.model_name,
            settings=dict(self.settings, max_new_tokens=req.max_new, cut_repeating=req.cut_repeating),
            prompt_tokens=len(prompt_ids),
            new_tokens=len(req.tokens),
            mean_token_prob=(sum(req.probs) / len(req.probs)) if req.probs else None,
            cancelled=req.cancel,
            first_token_s=(req.t_first - req.t0) if req.t_first is not None else None,
            seconds=(req.t_end or time.monotonic()) - req.t0,
        )
