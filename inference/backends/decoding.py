"""Decoding that does not loop, shared by the in-process backends.

Each draft's logits are changed from its own generated tokens only (never its batch
mates', never the prompt's: a tutor repeats the student's numbers on purpose), so a
draft's text still does not depend on what it is batched with.

Config keys (TUTOR_MODEL / TUTOR_MODELS): REPETITION_PENALTY (1.0 = off), NO_REPEAT_NGRAM
(0 = off: n-grams of this many tokens are not generated twice), STOP_REPEATS (true:
a draft whose end repeats one block three times is cut after the first copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_PERIOD = 64  # longest repeated block looked for, in tokens
MIN_REPEATED = 12  # tokens a repetition must span before it counts as a loop


@dataclass(frozen=True)
class Decoding:
    repetition_penalty: float = 1.0
    no_repeat_ngram: int = 0
    stop_repeats: bool = True

    @classmethod
    def from_config(cls, config: dict) -> Decoding:
        def flag(value: object) -> bool:
            return str(value).strip().lower() not in ("0", "false", "no", "off", "")

        penalty = float(config.get("REPETITION_PENALTY") or 1.1)
        if penalty < 1.0:
            raise ValueError(f"REPETITION_PENALTY={penalty}: use 1.0 (off) or more, e.g. 1.1.")
        return cls(
            repetition_penalty=penalty,
            no_repeat_ngram=max(0, int(config.get("NO_REPEAT_NGRAM") or 0)),
            stop_repeats=flag(config.get("STOP_REPEATS", True)),
        )

    def settings(self) -> dict:
        return {
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram": self.no_repeat_ngram,
            "stop_repeats": self.stop_repeats,
        }

    @property
    def changes_logits(self) -> bool:
        return self.repetition_penalty != 1.0 or self.no_repeat_ngram > 0

    def apply(self, logits: torch.Tensor, generated: list[int]) -> None:
        """Change one draft's next-token logits [vocab] in place (as transformers'
        RepetitionPenaltyLogitsProcessor and NoRepeatNGramLogitsProcessor do)."""
        if not generated:
            return
        if self.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(generated)), device=logits.device)
            picked = logits[seen]
            logits[seen] = torch.where(picked < 0, picked * self.repetition_penalty, picked / self.repetition_penalty)
        n = self.no_repeat_ngram
        if n and len(generated) >= n:
            head = tuple(generated[len(generated) - n + 1 :]) if n > 1 else ()
            banned = {
                generated[i + n - 1] for i in range(len(generated) - n + 1) if tuple(generated[i : i + n - 1]) == head
            }
            if banned:
                logits[torch.tensor(sorted(banned), device=logits.device)] = float("-inf")


def repeated_tail(tokens: list[int]) -> int:
    """How many tokens to cut when the draft ends with one block repeated (three copies
    or more, spanning at least MIN_REPEATED tokens): all the copies but the first. 0 when
    the end does not repeat."""
    n = len(tokens)
    last = tokens[-1] if tokens else None
    for period in range(1, min(MAX_PERIOD, n // 3) + 1):
        if tokens[n - 1 - period] != last:
            continue
        copies = max(3, -(-MIN_REPEATED // period))
        span = copies * period
        if span > n:
            continue
        block = tokens[n - period :]
        if all(tokens[n - (c + 1) * period : n - c * period] == block for c in range(1, copies)):
            return span - period
    return 0
