"""A teacher's decision on a group of alike questions reaches only the students whose
questions the teacher's card showed, and the teacher's own words reach only the student
whose card it was unless the teacher sends them to all.

The first test is the reported incident, over real sockets against a real server: a
student's question joins a group while the teacher has its lead open, and the teacher's
personal reply must not reach that student.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.faults.harness import ReviewSocket, StudentChat, session_cookie
from tests.processes import HttpSession, start_server
from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.models import Message

QUESTION = "How do I find the area of a triangle with base 6 and height 4?"
PERSONAL = "Bob, as we discussed after class about your test mark: half of base times height."
DRAFT = "The area of a triangle is half of its base times its height: (6 x 4) / 2."


def wait_until(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shown_members(card: dict) -> list[int]:
    """The group's other questions that a review card displays (what review.js sends back)."""
    group = card.get("group") or {}
    return [m["reply_id"] for m in group.get("members", []) if m["reply_id"] != card["id"]]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_question_that_joins_while_the_teacher_reads_never_gets_their_personal_reply(
    student, classmate, teacher, classroom
):
    server, port = start_server("server-group-decisions")
    sockets = []
    try:
        bob = services.conversation_start(student=student, classroom=classroom)
        alice = services.conversation_start(student=classmate, classroom=classroom)
        bob_chat = StudentChat(port, bob.id, session_cookie(student))
        alice_chat = StudentChat(port, alice.id, session_cookie(classmate))
        review = ReviewSocket(port, session_cookie(teacher))
        sockets += [bob_chat, alice_chat, review]
        teacher_http = HttpSession(port, session_cookie(teacher))

        # 1. Bob asks; the model drafts.
        bob_chat.ask(QUESTION, "bob-1")
        bob_reply = wait_until(lambda: Message.objects.filter(conversation=bob, sender="tutor").first(), what="reply")
        draft(bob_reply, text=DRAFT)
        # 2. The teacher opens Bob's draft: the card shows no group.
        status, body = teacher_http.request("POST", f"/review/{bob_reply.id}/claim/")
        assert status == 200, body
        card = json.loads(body)["reply"]
        assert card["id"] == bob_reply.id and shown_members(card) == []
        # 3. Alice asks the same words; her reply joins Bob's group, and the open card hears of it.
        alice_chat.ask(QUESTION, "alice-1")
        alice_reply = wait_until(
            lambda: Message.objects.filter(conversation=alice, sender="tutor", status="grouped").first(),
            what="Alice's question to join the group",
        )
        changed = review.wait_for(
            lambda f: f.get("type") == "reply" and f["reply"]["id"] == bob_reply.id and f["reply"].get("group")
        )
        assert alice_reply.id in shown_members(changed["reply"])  # the notice "1 more student asked this"
        # 4. The teacher rejects and writes their own reply, with the card as it was opened.
        status, body = teacher_http.request(
            "POST",
            f"/review/{bob_reply.id}/reject/",
            {"text": PERSONAL, "members": ",".join(map(str, shown_members(card)))},
        )
        assert status == 200, body
        # 5. Bob reads it; Alice never does, and still waits, with a card of her own.
        bob_chat.wait_for(
            lambda f: f.get("type") == "messages" and any(m["text"] == PERSONAL for m in f["messages"]), timeout=30
        )
        review.wait_for(lambda f: f.get("type") == "reply" and f["reply"]["id"] == alice_reply.id, timeout=30)
        alice_chat.send({"type": "sync", "since": 0})
        alice_chat.wait_for(lambda f: f.get("type") == "messages" and f["messages"], timeout=30)
        time.sleep(1.0)  # anything still in flight to Alice's socket arrives meanwhile
        assert PERSONAL not in json.dumps(alice_chat.frames)
        alice_reply.refresh_from_db()
        assert alice_reply.is_pending and alice_reply.final_text == ""

        # Her own card, when the teacher approves it, answers her with the model's draft.
        status, body = teacher_http.request("POST", f"/review/{alice_reply.id}/approve/", {"members": ""})
        assert status == 200, body
        alice_chat.wait_for(
            lambda f: f.get("type") == "messages" and any(m["text"] == DRAFT for m in f["messages"]), timeout=30
        )
        assert PERSONAL not in json.dumps(alice_chat.frames)
    finally:
        for s in sockets:
            s.close()
        server.stop()


# Through the services and the HTTP actions.


@pytest.fixture
def third_student(classroom):
    from classrooms.models import Membership
    from tests.conftest import make_person

    user = make_person("third", classroom.school, first_name="Max")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.STUDENT)
    return user


def texts_of(reply: Message) -> list[str]:
    """What the reply's student can read of it, through the gate."""
    from tutor import selectors

    return [m["text"] for m in selectors.messages_for_student(reply.conversation) if m["id"] == reply.id and m["text"]]


def group_of_three(student, classmate, third_student, classroom):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    first = ask(classmate, classroom, QUESTION)
    second = ask(third_student, classroom, QUESTION)
    return lead, first, second


@pytest.mark.django_db
def test_a_decision_answers_only_the_questions_its_card_showed(student, classmate, third_student, teacher, classroom):
    lead, shown, joined_later = group_of_three(student, classmate, third_student, classroom)
    decided = services.reply_approve(reply=lead, reviewer=teacher, members=[shown.pk])
    assert decided.answered == [lead.pk, shown.pk] and decided.handed_on == [joined_later.pk]
    assert texts_of(lead) == [DRAFT] and texts_of(shown) == [DRAFT]
    joined_later.refresh_from_db()
    assert texts_of(joined_later) == []
    # Handed on as a card of its own, with the group's draft, ready for the teacher.
    assert joined_later.status == Message.Status.AWAITING_REVIEW and joined_later.draft_text == DRAFT
    assert joined_later.group_id is None and not joined_later.group_opt_out
    assert [r.pk for r in selectors_queue(teacher)] == [joined_later.pk]


def selectors_queue(teacher):
    from tutor import selectors

    return list(selectors.review_queue(teacher))


@pytest.mark.django_db
def test_those_who_asked_since_wait_together_on_a_new_card(student, classmate, third_student, teacher, classroom):
    from tests.conftest import make_person
    from tutor import selectors

    fourth = make_person("fourth", classroom.school)
    classroom.memberships.create(user=fourth, role="student")
    lead, first, second = group_of_three(student, classmate, third_student, classroom)
    third = ask(fourth, classroom, QUESTION)
    services.reply_reject(reply=lead, reviewer=teacher, teacher_text=PERSONAL, members=[first.pk, second.pk])
    # Their own words went to the card's student only; the three others wait as one group.
    assert texts_of(lead) == [PERSONAL]
    for other in (first, second, third):
        assert texts_of(other) == []
    [card] = selectors_queue(teacher)
    assert card.pk == first.pk and card.draft_text == DRAFT
    view = selectors.reviewer_view(card, viewer=teacher)
    assert [m["reply_id"] for m in view["group"]["members"]] == [first.pk, second.pk, third.pk]


@pytest.mark.django_db
def test_an_edit_that_adds_the_teachers_words_goes_to_the_cards_student_alone(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    member = ask(classmate, classroom, QUESTION)
    personal = "Bob, well done on your test. " + DRAFT
    services.reply_approve(reply=lead, reviewer=teacher, text=personal, members=[member.pk])
    assert texts_of(lead) == [personal] and texts_of(member) == []
    member.refresh_from_db()
    assert member.status == Message.Status.AWAITING_REVIEW and member.draft_text == DRAFT


@pytest.mark.django_db
def test_a_typo_fix_still_goes_to_everyone_shown_and_send_to_all_sends_the_teachers_words(
    student, classmate, third_student, teacher, classroom
):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT.replace("triangle", "triangel"))
    member = ask(classmate, classroom, QUESTION)
    services.reply_approve(reply=lead, reviewer=teacher, text=DRAFT, members=[member.pk])
    assert texts_of(lead) == [DRAFT] and texts_of(member) == [DRAFT]

    other_lead = draft(ask(third_student, classroom, "What is a prime number, please explain?"), text="Draft.")
    other_member = ask(student, classroom, "What is a prime number, please explain?")
    own = "A prime has exactly two divisors: we will practise tomorrow."
    services.reply_approve(reply=other_lead, reviewer=teacher, text=own, members=[other_member.pk], to_all=True)
    assert texts_of(other_lead) == [own] and texts_of(other_member) == [own]


@pytest.mark.django_db
def test_ids_that_are_not_waiting_in_the_cards_group_are_ignored(
    student, classmate, stranger_student, teacher, classroom, other_classroom
):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    elsewhere = ask(stranger_student, other_classroom, QUESTION)  # another class's question
    alone = ask(classmate, classroom, "How many sides has a hexagon, exactly?")  # not in the group
    decided = services.reply_approve(reply=lead, reviewer=teacher, members=[elsewhere.pk, alone.pk, 10**9])
    assert decided.answered == [lead.pk]
    for other in (elsewhere, alone):
        other.refresh_from_db()
        assert other.status == Message.Status.QUEUED and texts_of(other) == []


@pytest.mark.django_db
def test_a_card_read_before_the_group_formed_answers_its_student_alone(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    as_the_card_read_it = Message.objects.get(pk=lead.pk)  # no group yet
    member = ask(classmate, classroom, QUESTION)  # joins now
    services.reply_approve(reply=as_the_card_read_it, reviewer=teacher)
    assert texts_of(lead) == [DRAFT] and texts_of(member) == []
    member.refresh_from_db()
    assert member.status == Message.Status.AWAITING_REVIEW


@pytest.mark.django_db
def test_splitting_on_the_lead_takes_out_only_the_questions_shown(
    student, classmate, third_student, teacher, classroom
):
    lead, shown, joined_later = group_of_three(student, classmate, third_student, classroom)
    services.reply_split(reply=lead, reviewer=teacher, members=[shown.pk])
    shown.refresh_from_db()
    joined_later.refresh_from_db()
    assert shown.status == Message.Status.QUEUED and shown.group_opt_out
    assert joined_later.status == Message.Status.GROUPED and joined_later.group.lead_id == lead.pk
    # Approving now, with the card as it was, answers the lead alone.
    services.reply_approve(reply=Message.objects.get(pk=lead.pk), reviewer=teacher, members=[shown.pk])
    joined_later.refresh_from_db()
    assert texts_of(joined_later) == [] and joined_later.status == Message.Status.AWAITING_REVIEW


@pytest.mark.django_db
def test_regenerating_keeps_everyone_waiting_and_answers_nobody(student, classmate, teacher, classroom):
    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    member = ask(classmate, classroom, QUESTION)
    services.reply_regenerate(reply=lead, reviewer=teacher, instruction="Mention Bob's question in class")
    lead = draft(Message.objects.get(pk=lead.pk), text="Bob asked this in class: half of base times height.")
    services.reply_approve(reply=lead, reviewer=teacher)  # the card did not show the member
    assert texts_of(member) == []
    member.refresh_from_db()
    assert member.status == Message.Status.AWAITING_REVIEW


@pytest.mark.django_db
def test_a_card_with_a_broken_member_list_is_refused_and_changes_nothing(
    student, classmate, teacher, classroom, as_user
):
    from django.urls import reverse

    lead = draft(ask(student, classroom, QUESTION), text=DRAFT)
    member = ask(classmate, classroom, QUESTION)
    response = as_user(teacher).post(
        reverse("review_approve", args=[lead.pk]), {"text": DRAFT, "members": "12,x"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "Reload the page" in response.json()["error"]
    lead.refresh_from_db()
    member.refresh_from_db()
    assert lead.status == Message.Status.AWAITING_REVIEW and member.status == Message.Status.GROUPED


@pytest.mark.django_db
def test_the_http_answer_says_who_got_the_decision(student, classmate, third_student, teacher, classroom, as_user):
    from django.urls import reverse

    lead, shown, _later = group_of_three(student, classmate, third_student, classroom)
    response = as_user(teacher).post(
        reverse("review_reject", args=[lead.pk]),
        {"text": PERSONAL, "members": str(shown.pk), "to_all": "1"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert response.json()["reply"] | {} == {
        "id": lead.pk,
        "status": "rejected",
        "decision": "teacher_reply",
        "decided": True,
        "answered": 2,
        "handed_on": 1,
    }
    assert texts_of(shown) == [PERSONAL]


def test_what_counts_as_the_teachers_own_words():
    from tutor.grouping import adds_own_words

    assert not adds_own_words(DRAFT, DRAFT)
    assert not adds_own_words(DRAFT, DRAFT.replace("triangle", "traingle"))  # a typo, either way
    assert not adds_own_words(DRAFT, "The area of a triangle is half of its base times its height.")  # cut
    assert not adds_own_words(DRAFT, DRAFT.upper())
    assert adds_own_words(DRAFT, "Bob, " + DRAFT)
    assert adds_own_words(DRAFT, DRAFT.replace("triangle", "square"))
    assert adds_own_words(DRAFT, PERSONAL)


def race(*actions) -> list[Exception]:
    """Run the actions at the same moment, each in its own thread and connection."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(actions))
    errors: list[Exception] = []

    def run(action):
        try:
            barrier.wait()
            action()
        except Exception as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_a_question_joining_during_the_decision_is_never_answered_by_it(student, classmate, teacher, classroom):
    """Racing for real (PostgreSQL row locks): whichever commits first, the late question is
    either grouped and then handed on, or left alone; never answered by this decision."""
    outcomes = set()
    for round_ in range(8):
        question = f"{QUESTION} ({round_})"
        lead = draft(ask(student, classroom, question), text=DRAFT)
        conversation = services.conversation_start(student=classmate, classroom=classroom)
        errors = race(
            lambda lead=lead: services.reply_reject(
                reply=Message.objects.get(pk=lead.pk), reviewer=teacher, teacher_text=PERSONAL
            ),
            lambda c=conversation, q=question: services.question_ask(conversation=c, text=q),
        )
        assert not errors
        late = Message.objects.get(conversation=conversation, sender="tutor")
        assert late.final_text == "" and late.is_pending
        assert late.status in (Message.Status.QUEUED, Message.Status.AWAITING_REVIEW), late.status
        outcomes.add(late.status)
        # Answer it, so that the students stay under their limit of questions waiting.
        services.reply_reject(reply=late, reviewer=teacher)
    print(f"\nlate question: {sorted(outcomes)}")
