"""Urgent messages: an alert at once to the class's teachers and the designated staff (in
the app, on their sockets, and by e-mail through a real SMTP server on loopback), the
school's supportive message to the student at once and no model text, escalation when
nobody acknowledges, an audit line for every step, and nobody else told."""

import asyncio
import json
import logging
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from classrooms.models import AuditEntry, SafeguardingContact, School, SupportiveMessage
from classrooms.services import ActionRefused, safeguarding_contact_remove, student_chat_set_open
from tests.conftest import client_for, make_person
from tests.tutor.helpers import ScriptedModel, SmtpInbox, ask, draft, run_drafting, socket
from tutor import selectors, services
from tutor.models import AlertNotice, Message, SafeguardingAlert, SafeguardingExample
from tutor.safeguarding import classifier
from tutor.safeguarding import services as safeguarding

URGENT = "je veux en finir"


@pytest.fixture
def inbox(settings):
    box = SmtpInbox()
    for name, value in box.settings().items():
        setattr(settings, name, value)
    yield box
    box.stop()


async def next_frame(communicator, want, timeout=15):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await communicator.receive_json_from(timeout=max(0.1, deadline - loop.time()))
        if want(frame):
            return frame


def actions(alert_id=None):
    entries = AuditEntry.objects.filter(action__startswith="alert.").order_by("id")
    if alert_id is not None:
        entries = [e for e in entries if e.details.get("alert") == alert_id]
    return [e.action for e in entries]


@pytest.mark.django_db(transaction=True)
async def test_an_urgent_message_alerts_the_teacher_and_the_designated_staff_at_once(
    inbox,
    student,
    classmate,
    teacher,
    safeguarding_lead,
    classroom,
    other_teacher,
    stranger_student,
    outsider,
    school_admin,
    other_admin,
):
    def setup():
        teacher.email = "teacher@school.test"
        teacher.save(update_fields=["email"])
        for person in (other_teacher, school_admin, other_admin):
            person.email = f"{person.username}@school.test"
            person.save(update_fields=["email"])
        return services.conversation_start(student=student, classroom=classroom)

    conversation = await sync_to_async(setup)()
    alerted = {"teacher": teacher, "lead": safeguarding_lead}
    bystanders = {"other_teacher": other_teacher, "school_admin": school_admin, "other_admin": other_admin}
    sockets = {}
    for name, person in {**alerted, **bystanders}.items():
        sockets[name] = await socket("/ws/alerts/", person)
        assert (await sockets[name].connect(timeout=10))[0], name
        await sockets[name].send_json_to({"type": "sync"})
        assert (await sockets[name].receive_json_from(timeout=10)) == {"type": "alerts", "alerts": []}
    for person in (student, classmate, stranger_student, outsider):  # no alerts socket for them at all
        refused = await socket("/ws/alerts/", person)
        assert not (await refused.connect(timeout=10))[0]
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect(timeout=10))[0]

    await chat.send_json_to({"type": "ask", "text": URGENT, "client_id": "q1"})

    for name in alerted:
        frame = await next_frame(sockets[name], lambda f: f["type"] == "alert")
        banner = frame["alert"]
        assert banner["open"] and banner["category"] == "self_harm" and banner["classroom"] == classroom.name
        assert URGENT not in json.dumps(frame) and str(student) not in json.dumps(frame), "banners carry no words"
    for name in bystanders:
        assert await sockets[name].receive_nothing(timeout=1), f"{name} must not be alerted"

    # The student has the school's approved message at once; no worker runs, no model text.
    frame = await next_frame(
        chat, lambda f: f["type"] == "messages" and any(m["sender"] == "school" for m in f["messages"])
    )
    school_message = next(m for m in frame["messages"] if m["sender"] == "school")
    approved = await sync_to_async(SupportiveMessage.objects.get)(school=classroom.school, language="en")
    assert school_message["text"] == approved.text and "3114" in school_message["text"]
    assert [m["state"] for m in frame["messages"]] == ["sent", "reviewing", "school"]

    emails = await sync_to_async(inbox.wait_for)(2)
    assert sorted(m["To"] for m in emails) == ["cpe@school.test", "teacher@school.test"]
    for message in emails:
        body = message.get_payload(decode=True).decode()
        assert "/safeguarding/alerts/" in body and classroom.name in message["Subject"]
        assert URGENT not in body and str(student) not in body, "e-mails leave the platform: no words, no name"

    alert = await sync_to_async(SafeguardingAlert.objects.get)(conversation=conversation)

    def audit_settled():
        return actions(alert.pk).count("alert.email_sent") == 2

    for _ in range(100):
        if await sync_to_async(audit_settled)():
            break
        await asyncio.sleep(0.1)
    steps = await sync_to_async(actions)(alert.pk)
    assert steps[:2] == ["alert.raise", "alert.supportive_message"]
    assert steps.count("alert.notify") == 2 and steps.count("alert.email_sent") == 2
    for communicator in [*sockets.values(), chat]:
        await communicator.disconnect()


@pytest.mark.django_db
def test_the_supportive_message_reaches_the_student_at_once_and_no_model_text_does(student, classroom, as_user):
    reply = ask(student, classroom, "I've been thinking about killing myself")
    client = as_user(student)
    url = reverse("conversation_messages", args=[reply.conversation_id])
    messages = client.get(url).json()["messages"]
    assert [m["sender"] for m in messages] == ["student", "tutor", "school"]
    assert messages[1]["state"] == "reviewing" and messages[1]["text"] == ""
    assert messages[2]["text"] == SupportiveMessage.objects.get(school=classroom.school, language="en").text
    draft(reply, "MODEL-CANARY I'm sorry. I'm sorry. I'm sorry.")
    for page in (client.get(url).content, client.get(reverse("conversation", args=[reply.conversation_id])).content):
        assert b"MODEL-CANARY" not in page
        assert b"3114" in page
    # The model's draft still waits for a teacher, first in the queue, flagged urgent.
    reply.refresh_from_db()
    assert reply.status == Message.Status.AWAITING_REVIEW and reply.safety_tier == 2


@pytest.mark.django_db
def test_the_supportive_message_is_in_the_students_language(student, classroom):
    student.language = "fr"
    student.save(update_fields=["language"])
    reply = ask(student, classroom, "I want to die")
    school_message = Message.objects.get(conversation=reply.conversation, sender=Message.Sender.SCHOOL)
    assert school_message.text == SupportiveMessage.objects.get(school=classroom.school, language="fr").text


@pytest.mark.django_db
def test_an_alert_moves_down_the_list_then_to_the_admins_when_nobody_acknowledges(
    student, teacher, safeguarding_lead, classroom, school_admin
):
    nurse = make_person("nurse", classroom.school, first_name="Inès", email="nurse@school.test")
    SafeguardingContact.objects.create(school=classroom.school, person=nurse, title="School nurse", position=1)
    start = timezone.now()
    with freeze_time(start) as clock:
        ask(student, classroom, URGENT)
        alert = SafeguardingAlert.objects.get()

        def alerted():
            return sorted(
                AlertNotice.objects.filter(alert=alert, channel="app").values_list("person__username", "step")
            )

        assert alerted() == [("cpe", 0), ("teacher", 0)]
        clock.tick(timedelta(minutes=4, seconds=59))
        assert safeguarding.alerts_escalate() == 0
        clock.tick(timedelta(seconds=2))
        assert safeguarding.alerts_escalate() == 1
        assert alerted() == [("cpe", 0), ("nurse", 1), ("teacher", 0)]
        assert safeguarding.alerts_escalate() == 0  # the next delay starts now
        clock.tick(timedelta(minutes=5, seconds=1))
        assert safeguarding.alerts_escalate() == 1
        assert alerted() == [("cpe", 0), ("nurse", 1), ("schooladmin", 2), ("teacher", 0)]
        clock.tick(timedelta(hours=1))
        assert safeguarding.alerts_escalate() == 0  # nobody left to alert
    alert.refresh_from_db()
    assert alert.step == 2 and alert.next_step_at is None
    assert actions(alert.pk).count("alert.escalate") == 2
    notified = AuditEntry.objects.filter(action="alert.notify").order_by("id")
    assert [e.details["why"] for e in notified] == ["reviewer", "contact", "contact", "admin"]


@pytest.mark.django_db
def test_an_acknowledged_alert_stops_and_the_school_sets_the_delay(student, teacher, safeguarding_lead, classroom):
    School.objects.filter(pk=classroom.school_id).update(alert_ack_minutes=2)
    start = timezone.now()
    with freeze_time(start) as clock:
        ask(student, classroom, URGENT)
        alert = SafeguardingAlert.objects.get()
        assert alert.next_step_at == start + timedelta(minutes=2)
        safeguarding.alert_acknowledge(alert=alert, person=safeguarding_lead)
        clock.tick(timedelta(minutes=30))
        assert safeguarding.alerts_escalate() == 0
    alert.refresh_from_db()
    assert alert.acknowledged_by == safeguarding_lead and alert.next_step_at is None
    assert AlertNotice.objects.filter(alert=alert, channel="email", state="cancelled").count() == 1  # teacher's
    assert "alert.acknowledge" in actions(alert.pk)


@pytest.mark.django_db(transaction=True)
def test_two_staff_acknowledging_at_once_one_wins_and_the_other_sees_who(
    student, teacher, safeguarding_lead, classroom
):
    ask(student, classroom, URGENT)
    alert = SafeguardingAlert.objects.get()
    barrier = threading.Barrier(2)
    results = {}

    def acknowledge(person):
        from django.db import connection

        barrier.wait()
        try:
            safeguarding.alert_acknowledge(alert=alert, person=person)
            results[person.username] = "won"
        except safeguarding.AlertConflict as exc:
            results[person.username] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=acknowledge, args=(p,)) for p in (teacher, safeguarding_lead)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results.values()).count("won") == 1
    alert.refresh_from_db()
    loser = next(name for name, result in results.items() if result != "won")
    assert str(alert.acknowledged_by) in results[loser] and "already acknowledged" in results[loser]
    assert actions(alert.pk).count("alert.acknowledge") == 1
    # Over HTTP, the late one gets 409 and the name.
    late = client_for(teacher if loser == "teacher" else safeguarding_lead)
    response = late.post(reverse("safeguarding_alert_acknowledge", args=[alert.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and response.json()["acknowledged_by"] == str(alert.acknowledged_by)


@pytest.mark.django_db
def test_an_smtp_server_that_is_down_leaves_the_alert_in_the_app_and_the_email_is_retried(
    student, teacher, safeguarding_lead, classroom, settings, caplog
):
    down = SmtpInbox()
    port = down.port
    down.stop()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    ask(student, classroom, URGENT)
    alert = SafeguardingAlert.objects.get()
    email = AlertNotice.objects.get(alert=alert, person=safeguarding_lead, channel="email")
    with caplog.at_level(logging.WARNING, logger="tutor.safeguarding.services"):
        assert safeguarding.alert_email_send(notice_id=email.pk) is False
    email.refresh_from_db()
    assert email.state == "failed" and email.attempts == 1 and email.next_try_at > timezone.now()
    assert "not sent, attempt 1" in caplog.text and URGENT not in caplog.text
    assert "alert.email_failed" in actions(alert.pk)
    assert AlertNotice.objects.get(alert=alert, person=safeguarding_lead, channel="app").state == "sent"
    assert selectors.reviewer_view(alert.reply, viewer=teacher)["safety"]["alert_id"] == alert.pk

    assert safeguarding.alert_emails_retry() == 0  # not yet due
    up = SmtpInbox.__new__(SmtpInbox)
    up.__init__()
    try:
        settings.EMAIL_PORT = up.port
        assert safeguarding.alert_emails_retry(now=timezone.now() + timedelta(minutes=1)) == 1
        [received] = up.wait_for(1)
        assert received["To"] == "cpe@school.test"
    finally:
        up.stop()
    email.refresh_from_db()
    assert email.state == "sent" and email.attempts == 2
    assert actions(alert.pk)[-1] == "alert.email_sent"


@pytest.mark.django_db
def test_only_the_classs_reviewers_and_the_designated_staff_read_the_alert_and_each_opening_is_audited(
    student, classmate, teacher, safeguarding_lead, classroom, other_teacher, outsider, school_admin, other_admin
):
    ask(student, classroom, "my stepdad comes into my room at night and touches me")
    alert = SafeguardingAlert.objects.get()
    url = reverse("safeguarding_alert", args=[alert.pk])
    for person in (student, classmate, other_teacher, outsider, school_admin, other_admin):
        assert client_for(person).get(url).status_code == 404, person
    for person in (teacher, safeguarding_lead):
        page = client_for(person).get(url)
        assert page.status_code == 200 and "touches me" in page.content.decode()
        assert page.headers["Cache-Control"] == "no-store, private"
    assert actions(alert.pk).count("alert.open") == 2
    # Escalated to the school's admins: they may open it and acknowledge it, not read it.
    SafeguardingAlert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now() - timedelta(seconds=1))
    assert safeguarding.alerts_escalate() == 1
    page = client_for(school_admin).get(url)
    assert page.status_code == 200 and "touches me" not in page.content.decode()
    assert actions(alert.pk).count("alert.open") == 2  # no words shown, nothing read
    assert (
        client_for(school_admin)
        .post(reverse("safeguarding_alert_mark", args=[alert.pk]), {"outcome": "false_alarm"})
        .status_code
        == 403
    )
    assert client_for(other_admin).get(url).status_code == 404


@pytest.mark.django_db
def test_a_false_alarm_becomes_an_example_and_the_same_message_is_then_classified_ok(
    student, classmate, teacher, classroom, school_admin
):
    text = "Lou a pris mon chargeur, je vais la tuer"
    ask(student, classroom, text)
    alert = SafeguardingAlert.objects.get()
    assert alert.category == "violence"
    response = client_for(teacher).post(reverse("safeguarding_alert_mark", args=[alert.pk]), {"outcome": "false_alarm"})
    assert response.status_code == 302
    example = SafeguardingExample.objects.get()
    assert example.label == "ok" and example.text == "[name] a pris mon chargeur, je vais la tuer"
    alert.refresh_from_db()
    assert alert.outcome == "false_alarm" and alert.acknowledged_by == teacher
    assert "alert.false_alarm" in actions(alert.pk)

    again = ask(classmate, classroom, text)
    assert again.safety_tier == 0 and SafeguardingAlert.objects.count() == 1
    assert safeguarding.assess_message(text, school_id=classroom.school_id).tier == 0
    other_school = safeguarding.assess_message(text)  # the built-in examples alone: still urgent
    assert other_school.tier == 2

    # The school admin sees it and prunes it: the message alerts again.
    page = client_for(school_admin).get(reverse("school_safeguarding_examples"))
    assert "[name] a pris mon chargeur" in page.content.decode()
    client_for(school_admin).post(reverse("school_safeguarding_example_delete", args=[example.pk]))
    assert not SafeguardingExample.objects.exists()
    assert safeguarding.assess_message(text, school_id=classroom.school_id).tier == 2


@pytest.mark.django_db
def test_a_real_concern_joins_the_schools_examples_under_its_category(student, teacher, classroom):
    ask(student, classroom, "my dad hits me when he drinks, call me on 06 12 34 56 78 or sam@example.org")
    alert = SafeguardingAlert.objects.get()
    client_for(teacher).post(
        reverse("safeguarding_alert_mark", args=[alert.pk]), {"outcome": "real_concern", "category": "abuse"}
    )
    example = SafeguardingExample.objects.get()
    assert example.label == "abuse"
    assert example.text == "my dad hits me when he drinks, call me on [phone] or [email]"


@pytest.mark.django_db
def test_a_school_without_designated_staff_cannot_open_the_tutor_and_is_told_why(
    student, classroom, safeguarding_lead, school_admin
):
    contact = SafeguardingContact.objects.get(person=safeguarding_lead)
    safeguarding_contact_remove(actor=school_admin, contact=contact)
    school = School.objects.get(pk=classroom.school_id)
    with pytest.raises(services.ChatClosed):
        ask(student, classroom, "What is a prime number?")
    student_chat_set_open(actor=school_admin, school=school, open=False)
    with pytest.raises(ActionRefused, match="Nobody is designated"):
        student_chat_set_open(actor=school_admin, school=school, open=True)
    page = client_for(school_admin).get(reverse("school_safeguarding")).content.decode()
    assert "Nobody is designated to receive urgent safeguarding alerts" in page
    response = client_for(school_admin).post(reverse("school_safeguarding_chat"), {"open": "1"}, follow=True)
    assert "Students cannot chat yet" in response.content.decode()
    assert not School.objects.get(pk=school.pk).student_chat_open
    # The student is told plainly, on the socket and the page alike (ChatClosed's message).
    client = client_for(school_admin)
    client.post(reverse("school_safeguarding_contact_add"), {"person": safeguarding_lead.pk, "title": "CPE"})
    client.post(reverse("school_safeguarding_chat"), {"open": "1"})
    assert School.objects.get(pk=school.pk).student_chat_open
    assert ask(student, classroom, "What is a prime number?").safety_tier == 0


@pytest.mark.django_db
def test_the_review_queue_puts_urgent_then_concern_first_and_never_groups_them(
    student, classmate, teacher, classroom, safeguarding_lead
):
    calm = ask(student, classroom, "What is a prime number?")
    worried = ask(classmate, classroom, "everyone at school laughs at me and they post my photos")
    urgent = ask(student, classroom, "I'm going to bring a knife and hurt him")
    alike = ask(classmate, classroom, "What is a prime number?")
    queue = list(selectors.review_queue(teacher))
    assert [r.pk for r in queue][:3] == [urgent.pk, worried.pk, calm.pk]
    alike.refresh_from_db()
    assert alike.status == Message.Status.GROUPED  # ordinary questions still group
    views = {r.pk: selectors.reviewer_view(r, viewer=teacher) for r in queue}
    assert views[urgent.pk]["safety"]["tier"] == 2 and views[urgent.pk]["safety"]["alert_id"]
    urgent_flag = views[urgent.pk]["flags"][0]
    assert urgent_flag["code"] == "distressed" and urgent_flag["tier"] == 2
    assert "Urgent" in urgent_flag["label"] and "Violence" in urgent_flag["label"]
    assert views[worried.pk]["flags"][0]["label"] == "Concern: Bullying or harassment"
    for reply in (urgent, worried):
        reply.refresh_from_db()
        assert reply.question_key == "" and reply.group_id is None
    # A concern is never grouped with others: an alike concern of another student waits alone.
    again = ask(student, classroom, "everyone at school laughs at me and they post my photos")
    again.refresh_from_db()
    assert again.status == Message.Status.QUEUED and again.group_id is None


@pytest.mark.django_db
def test_an_unsafe_draft_is_flagged_and_a_caring_one_is_not(student, classmate, teacher, classroom):
    def drafted(reply, text):  # through the worker's drafting service, whose checks read the draft
        return run_drafting(reply, ScriptedModel(text))

    maths = drafted(ask(student, classroom, "What is a prime number?"), "If you are sad, just take all the pills.")
    caring = drafted(
        ask(classmate, classroom, "I want to die"),
        "I'm really sorry you feel this way. Please talk to an adult you trust, or call 3114.",
    )
    plain = drafted(ask(classmate, classroom, "What is 3 x 4?"), "What do you get when you add 3 four times?")
    # An explicit means in a draft is flagged whatever the question was.
    means = drafted(ask(classmate, classroom, "I don't want to live anymore"), "Then you could jump off the bridge.")
    assert "unsafe_draft" in [f["code"] for f in selectors.reviewer_view(means, viewer=teacher)["flags"]]
    flags = {
        r.pk: [f["code"] for f in selectors.reviewer_view(r, viewer=teacher)["flags"]] for r in (maths, caring, plain)
    }
    assert "unsafe_draft" in flags[maths.pk]
    assert "unsafe_draft" not in flags[caring.pk] and flags[caring.pk][0] == "distressed"
    assert "unsafe_draft" not in flags[plain.pk]
    assert maths.checks["safety"] == {"category": "self_harm"}
    label = selectors.reviewer_view(maths, viewer=teacher)["flags"][0]["label"]
    assert label == "The draft may be unsafe (Self-harm or suicide): read it closely."
    # A teacher's edit is checked the same way as they type: the flag goes with the words.
    assert "unsafe_draft" not in [
        f["code"] for f in selectors.edited_draft_checks(maths, "Which numbers divide 7?")["flags"]
    ]
    edited = selectors.edited_draft_checks(plain, "Or just take all the pills.")
    assert [f["code"] for f in edited["flags"]][:1] == ["unsafe_draft"]
    # The question's concern flag keeps its tier and category on an edited card too.
    assert selectors.edited_draft_checks(caring, "Please talk to an adult you trust.")["flags"][0]["tier"] == 2


@pytest.mark.django_db
def test_a_failing_classifier_falls_back_to_the_lexicon_and_keywords(student, classroom, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the embedding engine crashed")

    monkeypatch.setattr(classifier.get_classifier(), "assess", broken)
    with caplog.at_level(logging.ERROR):
        urgent = ask(student, classroom, "I'm going to kill myself tonight")
        upset = ask(student, classroom, "I can't cope anymore")
    assert urgent.safety_tier == 2 and SafeguardingAlert.objects.filter(reply=urgent).exists()
    assert upset.safety_tier == 1 and upset.distressed
    assert "the safeguarding classifier failed" in caplog.text


@pytest.mark.django_db
def test_the_check_command_prints_tier_category_and_nearest_examples(tmp_path, capsys):
    from django.core.management import call_command

    lines = tmp_path / "lines.txt"
    lines.write_text("je veux en finir\nthis homework is killing me\n\n😭😭😭\n", encoding="utf-8")
    call_command("safeguarding_check", file=str(lines))
    out = capsys.readouterr().out
    assert "tier 2 Urgent   self_harm" in out and "tier 0 Nothing  ok" in out
    assert "built-in je veux" in out  # the nearest examples, with where they come from
    assert "3 lines: 1 urgent, 0 concern, 2 nothing." in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Cannot read"):
        call_command("safeguarding_check", file=str(tmp_path / "missing.txt"))
