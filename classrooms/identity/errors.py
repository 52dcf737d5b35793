"""Why a sign-in or a launch was refused: one exception, with a code for the logs, words for
the person, and words for the school admin."""

from __future__ import annotations


class SignInRefused(Exception):
    """Nobody was signed in and nothing was created.

    `reason` is a short code (logged, counted); `message` is what the person reads;
    `detail` is what the school admin reads on the sign-in page (plain words, no
    personal data).
    """

    def __init__(self, reason: str, message: str, *, detail: str = ""):
        super().__init__(f"{reason}: {detail or message}")
        self.reason = reason
        self.message = message
        self.detail = detail or message
