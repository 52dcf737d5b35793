"""A small fake model with the engine's interface, for fast unit tests and benchmarks
of the path around the model. It never stands in for the real model in end-to-end tests."""

from __future__ import annotations

import time

from inference.engine import Draft, DraftJob


class FakeEngine:
    context_window = 2048

    def __init__(self, config: dict):
        self.model_name = "fake"
        # Seconds per generated word: a stub of fixed, configurable speed.
        self.seconds_per_token = float(config.get("FAKE_SECONDS_PER_TOKEN", 0.0))
        self.reply = config.get("FAKE_REPLY", "")

    def count_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def draft(self, job: DraftJob) -> Draft:
        started = time.monotonic()
        question = next((m["content"] for m in reversed(job.messages) if m["role"] == "user"), "")
        # Not the question quoted back: the draft checks would take that for an echo.
        text = self.reply or (
            f"What do you already know about this? Your question has {len(question.split())} words: "
            "pick the one that matters most, and tell me what you would try first."
        )
        words = text.split()[: job.max_new_tokens]
        out: list[str] = []
        first = None
        for word in words:
            if job.should_stop and job.should_stop():
                return Draft(
                    text=" ".join(out), model_name=self.model_name, cancelled=True, seconds=time.monotonic() - started
                )
            if self.seconds_per_token:
                time.sleep(self.seconds_per_token)
            out.append(word)
            if first is None:
                first = time.monotonic() - started
            if job.on_text:
                job.on_text(" ".join(out))
        return Draft(
            text=" ".join(out),
            model_name=self.model_name,
            settings={"max_new_tokens": job.max_new_tokens},
            prompt_tokens=self.count_tokens(job.messages),
            new_tokens=len(out),
            mean_token_prob=0.9,
            first_token_s=first,
            seconds=time.monotonic() - started,
        )
