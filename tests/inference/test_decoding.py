"""Decoding that does not loop: the repetition rules, and a draft that has started
repeating is cut after its first copy, with both in-process engines. Seconds."""

from __future__ import annotations

import pytest

from inference.engine import DraftJob, engine_for_config

torch = pytest.importorskip("torch")
from inference.backends.decoding import Decoding, repeated_tail  # noqa: E402
from tests.inference.test_any_model import config, messages  # noqa: E402
from tests.inference.tiny_models import build_model  # noqa: E402

GLAD = [40, 41, 42, 43, 44, 45, 13]  # "I'm glad you're here."


def test_it_finds_a_block_repeated_three_times_at_the_end():
    assert repeated_tail([1, 2, 3] + GLAD * 3) == 2 * len(GLAD)
    assert repeated_tail([1, 2, 3] + GLAD * 2) == 0  # twice is not yet a loop
    assert repeated_tail([12] * 11) == 0 and repeated_tail([12] * 12) == 11  # "12 12 12 ..."
    assert repeated_tail([5, 6] * 6) == 10
    assert repeated_tail([5, 6] * 5) == 0  # 10 tokens: too short to call it a loop
    assert repeated_tail(GLAD * 3 + [7]) == 0  # it moved on
    assert repeated_tail([]) == 0


def test_the_penalty_and_the_ngram_ban_use_the_drafts_own_tokens():
    logits = torch.tensor([2.0, -2.0, 1.0, 0.5])
    Decoding(repetition_penalty=2.0, no_repeat_ngram=0).apply(logits, [0, 1])
    assert logits.tolist() == [1.0, -4.0, 1.0, 0.5]
    logits = torch.zeros(5)
    Decoding(repetition_penalty=1.0, no_repeat_ngram=2).apply(logits, [3, 4, 1, 3])
    assert logits[4] == float("-inf") and logits.isinf().sum() == 1  # "3 4" once is enough
    assert Decoding.from_config({}).settings() == {
        "repetition_penalty": 1.1,
        "no_repeat_ngram": 0,
        "stop_repeats": True,
    }
    with pytest.raises(ValueError, match="REPETITION_PENALTY"):
        Decoding.from_config({"REPETITION_PENALTY": 0.5})


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    root = tmp_path_factory.mktemp("looping")
    return {arch: build_model(root / arch, arch, tied=True) for arch in ("llama", "qwen2")}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_draft_that_loops_is_cut_after_its_first_copy(looping, arch):
    """A model that repeats itself: without the cut it runs to its token limit; with it,
    the draft stops, and says so in its settings."""
    plain = engine_for_config(config(looping[arch], STOP_REPEATS=False, REPETITION_PENALTY=1.0))
    try:
        long = plain.draft(DraftJob(messages=messages(), max_new_tokens=100))
    finally:
        plain.close()
    assert long.new_tokens == 100 and not long.settings["cut_repeating"]
    engine = engine_for_config(config(looping[arch], REPETITION_PENALTY=1.0))
    try:
        cut = engine.draft(DraftJob(messages=messages(), max_new_tokens=100))
    finally:
        engine.close()
    assert cut.settings["cut_repeating"] and cut.settings["stop_repeats"]
    assert 0 < cut.new_tokens < 12
    assert long.text.startswith(cut.text)


def test_a_server_model_keeps_the_servers_own_decoding():
    """The in-process decoding settings are not sent to an OpenAI-compatible server."""
    import json

    from tutor.model_settings import read_models

    local = {"BACKEND": "transformers", "MAX_NEW_TOKENS": 160, "REPETITION_PENALTY": "1.3", "NO_REPEAT_NGRAM": 3}
    declared = [{"key": "gpu", "label": "GPU", "backend": "openai", "url": "http://gpu:8000/v1"}]
    [gpu] = read_models(local, {"TUTOR_MODELS": json.dumps(declared)})
    assert "REPETITION_PENALTY" not in gpu["config"] and "NO_REPEAT_NGRAM" not in gpu["config"]
    declared[0]["repetition_penalty"] = 1.05  # unless the model says so
    [gpu] = read_models(local, {"TUTOR_MODELS": json.dumps(declared)})
    assert gpu["config"]["REPETITION_PENALTY"] == 1.05
