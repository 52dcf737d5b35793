"""Alike questions, one review: pending questions of one class that ask the same thing are
reviewed once, and each student receives the approved reply in their own conversation."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from classrooms.models import AuditEntry
from inference.backends.fake import FakeEngine
from tests.tutor.helpers import ask, draft, socket
from tutor import grouping, selectors, services
from tutor.models import Message, QuestionGroup
from tutor.prompts import build_prompt

CANARY = "GROUP-DRAFT-CANARY-93e1"


def fake_embed(texts):
    """A tiny stand-in for the sentence model: a bag of content words (prime/primes alike)."""
    vocabulary = ["prime", "number", "fraction", "add", "denominator", "circle", "area", "circumference"]
    vectors = []
    for text in texts:
        words = [w.rstrip("s") for w in grouping.normalize_question(text).split()]
        vectors.append([float(sum(1 for w in words if w == v)) for v in vocabulary])
    return vectors


def group_alike(reply: Message, embed=fake_embed, threshold: float = 0.85):
    """What the worker does before drafting: embed the question, join an alike one."""
    assert services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt) is not None
    vector = embed([reply.in_reply_to.text])[0]
    lead = services.reply_group_alike(
        reply_id=reply.id, attempt=reply.draft_attempt, vector=vector, threshold=threshold, embed=embed
    )
    reply.refresh_from_db()
    return lead


def answered_texts(client, reply):
    data = client.get(reverse("conversation_messages", args=[reply.conversation_id])).json()
    return [m["text"] for m in data["messages"] if m["sender"] == "tutor" and m["state"] == "answered"], data


# The grouping rules, as plain functions with a fake embedder.


def test_the_normal_form_ignores_case_accents_punctuation_and_politeness():
    assert grouping.normalize_question("Hello, what is a PRIME number??? please") == "what is a prime number"
    assert grouping.normalize_question("Qu'est-ce qu'un nombre premier ?") == "qu est-ce qu un nombre premier"
    assert grouping.normalize_question("Is 1,5 bigger than 1.5?") == "is 1.5 bigger than 1.5"


def test_only_standalone_calm_questions_of_a_few_words_can_be_grouped():
    assert grouping.groupable_key("What is a prime number?", opens_conversation=True, distressed=False)
    assert not grouping.groupable_key("What is a prime number?", opens_conversation=False, distressed=False)
    assert not grouping.groupable_key("What is a prime number?", opens_conversation=True, distressed=True)
    assert not grouping.groupable_key("help?", opens_conversation=True, distressed=False)
    assert not grouping.groupable_key("why " * 50, opens_conversation=True, distressed=False)


def test_alike_questions_group_and_different_numbers_never_do():
    groups = grouping.group_questions(
        [
            "What is a prime number?",
            "Can you explain what prime numbers are?",
            "How do I add 1/2 and 1/3?",
            "How do I add 1/2 and 1/4?",
            "what is a PRIME number",
            "What is the area of a circle?",
        ],
        embed=fake_embed,
        threshold=0.85,
    )
    assert sorted(map(sorted, groups)) == [[0, 1, 4], [2], [3], [5]]


def test_without_the_model_only_the_same_normal_form_groups():
    groups = grouping.group_questions(
        ["What is a prime number?", "Can you explain what prime numbers are?", "what is a prime number!"],
        embed=None,
        threshold=0.85,
    )
    assert sorted(map(sorted, groups)) == [[0, 2], [1]]


def test_the_best_match_wins_and_below_the_threshold_nothing_does():
    candidates = [grouping.Candidate(1, "a", "prime", [1.0, 0.0]), grouping.Candidate(2, "b", "prime", [0.8, 0.6])]
    match, score = grouping.find_alike(key="c", text="prime", vector=[0.9, 0.44], candidates=candidates, threshold=0.85)
    assert match.reply_id == 2 and score > 0.95
    match, score = grouping.find_alike(key="c", text="prime", vector=[0.0, 1.0], candidates=candidates, threshold=0.85)
    assert match is None and score < 0.85


# Through the services.


@pytest.mark.django_db
def test_the_same_question_in_other_words_is_grouped_and_needs_no_draft(student, classmate, classroom):
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "Can you explain what prime numbers are?")
    assert group_alike(lead) is None  # nothing alike is pending yet: it is drafted
    assert group_alike(member).pk == lead.pk
    assert member.status == Message.Status.GROUPED and member.draft_started_at is None
    group = QuestionGroup.objects.get(lead=lead)
    assert set(group.members.values_list("pk", flat=True)) == {lead.pk, member.pk}
    # A late copy of the member's draft task finds nothing owed.
    assert services.draft_start(reply_id=member.pk, attempt=member.draft_attempt) is None


@pytest.mark.django_db
def test_the_same_text_is_grouped_as_it_is_asked(student, classmate, classroom):
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "what is a PRIME number ?!")
    member.refresh_from_db()
    assert member.status == Message.Status.GROUPED and member.group.lead_id == lead.pk


@pytest.mark.django_db
def test_a_follow_up_question_is_never_grouped(student, classmate, teacher, classroom):
    first = draft(ask(student, classroom, "I am working on chapter 3."))
    services.reply_approve(reply=first, reviewer=teacher, text="Good. What is your question?")
    follow_up = ask(student, classroom, "What is a prime number?", conversation=first.conversation)
    other = ask(classmate, classroom, "What is a prime number?")
    follow_up.refresh_from_db()
    other.refresh_from_db()
    assert follow_up.question_key == "" and other.status == Message.Status.QUEUED


@pytest.mark.django_db
def test_a_distressed_student_is_never_grouped(student, classmate, classroom):
    ask(student, classroom, "What is a prime number?")
    upset = ask(classmate, classroom, "I'm so scared, what is a prime number? I can't cope")
    upset.refresh_from_db()
    assert upset.distressed and upset.status == Message.Status.QUEUED and upset.question_key == ""


@pytest.mark.django_db
def test_a_groups_draft_is_written_from_the_question_alone(student, classmate, classroom):
    lead = ask(student, classroom, "What is a prime number?")
    ask(classmate, classroom, "What is a prime number?")
    lead.refresh_from_db()
    engine = FakeEngine({})
    messages = build_prompt(lead, count_tokens=engine.count_tokens, max_prompt_tokens=1500)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "What is a prime number?"


@pytest.mark.django_db
def test_one_approval_answers_each_student_in_their_own_conversation(student, classmate, teacher, classroom, as_user):
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "what is a prime number")
    lead = draft(lead, text=f"{CANARY} Which numbers divide 7?")
    for person, reply in ((student, lead), (classmate, member)):
        texts, data = answered_texts(as_user(person), reply)
        assert texts == [] and CANARY not in json.dumps(data)
    # The card showed both questions; the teacher cut a word from the draft (no words of their own).
    services.reply_approve(reply=lead, reviewer=teacher, text="Which numbers divide 7?", members=[member.pk])
    for person, reply in ((student, lead), (classmate, member)):
        texts, data = answered_texts(as_user(person), reply)
        assert texts == ["Which numbers divide 7?"]
        assert CANARY not in json.dumps(data)
    member.refresh_from_db()
    assert member.status == Message.Status.APPROVED and member.decision == Message.Decision.EDITED
    assert member.reviewed_by == teacher and member.version == member.conversation.version
    [line] = AuditEntry.objects.filter(action="review.edited")
    assert line.target == f"reply {lead.pk}" and line.details["answered"] == [lead.pk, member.pk]


@pytest.mark.django_db
def test_a_teachers_own_reply_answers_the_whole_group_when_sent_to_all(student, classmate, teacher, classroom, as_user):
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "What is a prime number?")
    lead = draft(lead, text=CANARY)
    services.reply_reject(
        reply=lead,
        reviewer=teacher,
        teacher_text="We will see this together tomorrow.",
        members=[member.pk],
        to_all=True,
    )
    texts, data = answered_texts(as_user(classmate), member)
    assert texts == ["We will see this together tomorrow."] and CANARY not in json.dumps(data)


@pytest.mark.django_db
def test_the_queue_shows_a_group_once_with_its_size(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    queue = list(selectors.review_queue(teacher))
    assert [r.pk for r in queue] == [lead.pk]
    view = selectors.reviewer_view(queue[0], viewer=teacher)
    assert view["group"]["size"] == 2
    assert view["group"]["students"] == [str(student), str(classmate)]
    assert [m["reply_id"] for m in view["group"]["members"]] == [lead.pk, member.pk]


@pytest.mark.django_db
def test_splitting_a_member_drafts_it_on_its_own(student, classmate, teacher, classroom, as_user):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    response = as_user(teacher).post(reverse("review_split", args=[member.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == Message.Status.QUEUED and member.group_id is None and member.group_opt_out
    assert member.draft_attempt == 1
    lead.refresh_from_db()
    assert lead.group_id is None and not QuestionGroup.objects.exists()  # a group of one is no group
    services.reply_approve(reply=lead, reviewer=teacher)
    member.refresh_from_db()
    assert member.status == Message.Status.QUEUED  # not answered with the lead any more
    # Split out for good: the same question asked again does not pull it back in.
    assert group_alike(member) is None


@pytest.mark.django_db
def test_splitting_the_lead_dissolves_the_group(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    services.reply_split(reply=lead, reviewer=teacher, members=[member.pk])
    lead.refresh_from_db()
    member.refresh_from_db()
    assert lead.status == Message.Status.AWAITING_REVIEW and lead.group_id is None
    assert member.status == Message.Status.QUEUED and member.group_id is None
    with pytest.raises(services.InvalidMessage):
        services.reply_split(reply=lead, reviewer=teacher, members=[member.pk])


@pytest.mark.django_db
def test_one_member_can_be_answered_apart(student, classmate, teacher, co_teacher, classroom, as_user):
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "What is a prime number?")
    with pytest.raises(services.ReviewConflict):
        services.reply_approve(reply=member, reviewer=teacher)  # the group's draft is not written yet
    lead = draft(lead, text="Which numbers divide 7?")
    services.reply_approve(reply=member, reviewer=teacher, text="Lou: look at your notes from Monday.")
    assert answered_texts(as_user(classmate), member)[0] == ["Lou: look at your notes from Monday."]
    services.reply_approve(reply=lead, reviewer=co_teacher)
    assert answered_texts(as_user(student), lead)[0] == ["Which numbers divide 7?"]
    assert answered_texts(as_user(classmate), member)[0] == ["Lou: look at your notes from Monday."]


@pytest.mark.django_db
def test_regenerating_the_lead_keeps_the_group_waiting(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    services.reply_regenerate(reply=lead, reviewer=teacher, instruction="simpler")
    member.refresh_from_db()
    assert member.status == Message.Status.GROUPED
    lead = draft(Message.objects.get(pk=lead.pk), text="Simpler draft")
    services.reply_approve(reply=lead, reviewer=teacher, members=[member.pk])
    member.refresh_from_db()
    assert member.final_text == "Simpler draft"


@pytest.mark.django_db
def test_members_whose_lead_is_gone_are_drafted_on_their_own(student, classmate, classroom):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    lead.conversation.delete()
    assert services.requeue_stuck_drafts() == 1
    member.refresh_from_db()
    assert member.status == Message.Status.QUEUED and member.group_id is None


@pytest.mark.django_db
def test_only_the_classs_reviewers_can_split(student, classmate, other_teacher, classroom, as_user):
    draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    for person in (other_teacher, classmate):
        assert as_user(person).post(reverse("review_split", args=[member.pk])).status_code == 404
    member.refresh_from_db()
    assert member.status == Message.Status.GROUPED


@pytest.mark.django_db
def test_questions_of_different_classes_are_never_grouped(student, stranger_student, classroom, other_classroom):
    ask(student, classroom, "What is a prime number?")
    other = ask(stranger_student, other_classroom, "What is a prime number?")
    other.refresh_from_db()
    assert other.status == Message.Status.QUEUED


@pytest.mark.django_db(transaction=True)
async def test_a_members_socket_never_receives_the_groups_draft(student, classmate, teacher, classroom):
    lead = await sync_to_async(ask)(student, classroom, "What is a prime number?")
    member = await sync_to_async(ask)(classmate, classroom, "What is a prime number?")
    chat = await socket(f"/ws/chat/{member.conversation_id}/", classmate)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "sync", "since": 0})
    frames = [await chat.receive_json_from(timeout=5)]
    lead = await sync_to_async(draft)(lead, text=CANARY)
    assert await chat.receive_nothing(timeout=0.5)
    await sync_to_async(services.reply_approve)(
        reply=lead, reviewer=teacher, text="Which numbers?", members=[member.pk], to_all=True
    )
    frames.append(await chat.receive_json_from(timeout=5))
    await chat.disconnect()
    assert CANARY not in json.dumps(frames)
    answered = [m["text"] for m in frames[-1]["messages"] if m["state"] == "answered"]
    assert answered == ["Which numbers?"]


@pytest.mark.django_db
def test_the_worker_groups_an_alike_question_instead_of_drafting_it(student, classmate, classroom, monkeypatch):
    from inference import similarity, tasks
    from inference.engine import load_engine, reset_engine
    from tutor import drafting

    class FakeEmbedder:
        def embed(self, texts):
            return fake_embed(texts)

    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)  # keep the test's transaction
    monkeypatch.setattr(drafting, "close_old_connections", lambda: None)
    monkeypatch.setattr(similarity, "_embedder", FakeEmbedder())
    lead = ask(student, classroom, "What is a prime number?")
    member = ask(classmate, classroom, "Can you explain what prime numbers are?")
    reset_engine()
    load_engine({"BACKEND": "fake"})
    try:
        assert tasks.draft_reply.run(lead.pk, 0) == "drafted"
        assert tasks.draft_reply.run(member.pk, 0) == "grouped"
    finally:
        reset_engine()
    member.refresh_from_db()
    assert member.status == Message.Status.GROUPED and member.group.lead_id == lead.pk
    assert member.question_vector and not member.draft_text
