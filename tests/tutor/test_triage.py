"""Short, skimmable drafts and triage: each draft carries flags a reviewer sees at a
glance, and a distressed student's draft comes first."""

import pytest
from django.conf import settings

from inference import tasks
from inference.engine import load_engine, reset_engine
from tests.tutor.helpers import ask, draft
from tutor import drafting, selectors, triage
from tutor.models import Message
from tutor.prompts import trim_to_words, tutor_instructions


@pytest.mark.parametrize(
    "text",
    [
        "I want to die, this homework is too much",
        "I'm so scared of the test tomorrow",
        "people keep bullying me, I'm being bullied at school",
        "I can't cope anymore",
        "Je n'en peux plus de ces exercices",
        "j'ai trop peur du contrôle",
        "Je suis harcelée par des élèves de ma classe",
        "J'ai envie de mourir",
    ],
)
def test_distress_is_recognised_in_english_and_french(text):
    assert triage.looks_distressed(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is a prime number?",
        "Why do the cells die when they lack oxygen?",
        "How do I cut a cake into 8 equal parts?",
        "Comment calculer l'aire d'un triangle ?",
        "Le personnage a peur dans le chapitre 2, pourquoi ?",
    ],
)
def test_ordinary_questions_are_not_flagged_as_distress(text):
    assert not triage.looks_distressed(text)


@pytest.mark.parametrize(
    "text, gives",
    [
        ("The answer is 12.", True),
        ("So 3 x 4 = 12.", True),
        ("La réponse est 7.", True),
        ("Donc x = 5", True),
        ("What do you get if you multiply 3 by 4?", False),
        ("Try dividing 7 by 2, 3, 4, 5 and 6. What do you notice?", False),
        ("Quels nombres divisent 7 ? Essaie avec 2, puis 3.", False),
    ],
)
def test_a_draft_that_gives_away_the_answer_is_flagged(text, gives):
    assert triage.seems_to_give_answer(text) is gives


def test_flags_come_most_important_first():
    long_draft = "The answer is 12. " + "word " * 60
    assert triage.draft_flags(draft=long_draft, mean_token_prob=0.3, distressed=True, max_words=60) == [
        "distressed",
        "gives_answer",
        "unsure",
        "long",
    ]
    assert triage.draft_flags(draft="What divides 7?", mean_token_prob=0.9, distressed=False, max_words=60) == []


@pytest.mark.django_db
def test_the_reviewer_sees_flags_words_and_a_distressed_student_first(student, classmate, teacher, classroom):
    calm = draft(ask(student, classroom, "What is 3 x 4?"), text="So 3 x 4 = 12.")
    Message.objects.filter(pk=calm.pk).update(mean_token_prob=0.2)
    upset = draft(ask(classmate, classroom, "I'm so scared, I don't understand anything"), text="Let's go slowly.")
    queue = list(selectors.review_queue(teacher))
    assert [r.pk for r in queue] == [upset.pk, calm.pk]
    views = {v["id"]: v for v in (selectors.reviewer_view(r, viewer=teacher) for r in queue)}
    assert [f["code"] for f in views[calm.pk]["flags"]] == ["gives_answer", "unsure"]
    assert all(f["label"] for f in views[calm.pk]["flags"])
    assert [f["code"] for f in views[upset.pk]["flags"]] == ["distressed"]
    assert views[calm.pk]["words"] == 6 and views[calm.pk]["group"] is None
    assert views[calm.pk]["claimed_by"] == "" and views[calm.pk]["claimed_by_me"] is False


# Reply length: the class's limit is in the prompt, in the generation limit, and in the saved draft.


def test_a_long_draft_is_cut_at_the_last_sentence_end_within_the_limit():
    text = "Think about 3.5 first. Then divide it by 7! What remains? " + "More words here " * 10
    cut, trimmed = trim_to_words(text, 12)
    assert trimmed and cut == "Think about 3.5 first. Then divide it by 7! What remains?"
    assert trim_to_words("Short reply.", 12) == ("Short reply.", False)


def test_a_draft_with_no_sentence_end_is_cut_at_the_limit():
    cut, trimmed = trim_to_words("one two three four five six seven eight nine ten", 5)
    assert trimmed and cut == "one two three four five\u2026"


def test_a_longer_reply_gets_a_longer_generation_limit_within_the_operators_cap():
    # That the limit is enough for a reply of the class's length, counted with the model's
    # own tokenizer in English and French, is checked with the real model
    # (tests/inference/test_transformers_engine.py).
    limits = [drafting.tokens_for_words(words) for words in range(10, 401, 10)]
    assert limits == sorted(limits) and limits[0] < limits[-1]
    assert drafting.tokens_for_words(60) <= settings.TUTOR_MODEL["MAX_NEW_TOKENS"]  # the default class fits


@pytest.mark.django_db
def test_the_prompt_asks_for_the_classs_reply_length(classroom):
    classroom.max_reply_words = 45
    assert "under 45 words" in tutor_instructions(classroom)


@pytest.mark.django_db
def test_the_worker_saves_a_draft_no_longer_than_the_classs_limit(student, classroom, monkeypatch):
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)  # keep the test's transaction
    monkeypatch.setattr(drafting, "close_old_connections", lambda: None)
    classroom.max_reply_words = 20
    classroom.save()
    reply = ask(student, classroom, "Explain fractions")
    long_reply = (
        "Fractions are parts of a whole. The bottom number says how many equal parts there are. "
        "The top number says how many of them you take. So three quarters means three of four parts, "
        "and the more parts you cut the smaller each one gets"
    )
    reset_engine()
    load_engine({"BACKEND": "fake", "FAKE_REPLY": long_reply})
    try:
        assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "drafted"
    finally:
        reset_engine()
    reply.refresh_from_db()
    assert reply.status == Message.Status.AWAITING_REVIEW
    assert reply.draft_text == (
        "Fractions are parts of a whole. The bottom number says how many equal parts there are."
    )
    assert reply.generation_settings["trimmed"] is True
    assert reply.generation_settings["max_new_tokens"] == drafting.tokens_for_words(20)
