"""A property-based search for a path by which a student could see unapproved text.

Hypothesis drives random sequences of ask / draft / fail / approve / edit / reject /
regenerate / reconnect for two students of one class, and after every step spies on
everything each student can receive (the chat page, the JSON API, and the catch-up a
reconnecting socket gets from any version): no draft that a teacher did not approve,
and nothing of the other student, may appear.
"""

import itertools

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from classrooms.models import Classroom, Membership, School, User
from tutor import selectors, services
from tutor.models import Message, QuestionGroup
from tutor.text import clean_text

counter = itertools.count()


class ReviewLoop(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        n = next(counter)
        school = School.objects.create(name=f"S{n}")
        self.classroom = Classroom.objects.create(school=school, name=f"C{n}")
        self.teacher = User.objects.create_user(f"t{n}", school=school)
        Membership.objects.create(classroom=self.classroom, user=self.teacher, role="teacher")
        self.students, self.clients, self.conversations = [], [], []
        for i in range(2):
            student = User.objects.create_user(f"s{n}-{i}", school=school)
            Membership.objects.create(classroom=self.classroom, user=student, role="student")
            client = Client()
            client.force_login(student)
            self.students.append(student)
            self.clients.append(client)
            self.conversations.append(services.conversation_start(student=student, classroom=self.classroom))
        self.secret = {}  # reply id -> every draft text it ever had
        self.allowed = [set(), set()]  # per student: tutor texts a teacher sent them

    def replies(self, *statuses):
        return list(
            Message.objects.filter(
                conversation__classroom=self.classroom, sender="tutor", status__in=statuses
            ).order_by("id")
        )

    def owner(self, reply):
        return 0 if reply.conversation_id == self.conversations[0].id else 1

    def record_decision(self, reply):
        """What this decision sent: the reply's final text, to its student and, when it
        leads a group of alike questions, to each member's student."""
        answered = [reply.id]
        group = QuestionGroup.objects.filter(lead_id=reply.id).first()
        if group is not None:
            answered += list(group.members.values_list("id", flat=True))
        for decided in Message.objects.filter(pk__in=answered, status__in=("approved", "rejected")):
            if decided.final_text:
                self.allowed[self.owner(decided)].add(decided.final_text)

    @rule(
        who=st.integers(0, 1),
        text=st.one_of(
            st.text(min_size=1, max_size=40).filter(clean_text),  # text a question may be
            st.sampled_from(["What is a prime number?", "How do I add fractions?"]),  # alike: grouped
        ),
    )
    def ask(self, who, text):
        try:
            services.question_ask(conversation=self.conversations[who], text=text)
        except services.SlowDown:
            pass

    @precondition(lambda self: self.replies("queued"))
    @rule(pick=st.integers(0, 100))
    def draft(self, pick):
        queued = self.replies("queued")
        reply = queued[pick % len(queued)]
        text = f"DRAFT-{next(counter)}-unapproved"
        services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt)
        services.draft_finish(
            reply_id=reply.id, attempt=reply.draft_attempt, text=text, model_name="m", generation_settings={}
        )
        self.secret.setdefault(reply.id, set()).add(text)

    @precondition(lambda self: self.replies("queued"))
    @rule()
    def fail(self):
        reply = self.replies("queued")[0]
        services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt)
        services.draft_fail(reply_id=reply.id, attempt=reply.draft_attempt, reason="FAILURE-SECRET")

    @precondition(lambda self: self.replies("awaiting_review"))
    @rule(pick=st.integers(0, 100), edit=st.booleans())
    def approve(self, pick, edit):
        pending = self.replies("awaiting_review")
        reply = pending[pick % len(pending)]
        text = f"FINAL-{next(counter)}" if edit else None
        reply = services.reply_approve(reply=reply, reviewer=self.teacher, text=text)
        self.record_decision(reply)

    @precondition(lambda self: self.replies("queued", "drafting", "awaiting_review", "failed"))
    @rule(pick=st.integers(0, 100), own=st.booleans())
    def reject(self, pick, own):
        pending = self.replies("queued", "drafting", "awaiting_review", "failed")
        reply = pending[pick % len(pending)]
        text = f"TEACHER-{next(counter)}" if own else ""
        services.reply_reject(reply=reply, reviewer=self.teacher, teacher_text=text)
        self.record_decision(reply)

    @precondition(lambda self: self.replies("awaiting_review", "failed"))
    @rule(pick=st.integers(0, 100))
    def regenerate(self, pick):
        pending = self.replies("awaiting_review", "failed")
        services.reply_regenerate(reply=pending[pick % len(pending)], reviewer=self.teacher, instruction="simpler")

    @rule(who=st.integers(0, 1), since=st.integers(0, 60))
    def reconnect(self, who, since):
        conversation = self.conversations[who]
        data = self.clients[who].get(reverse("conversation_messages", args=[conversation.id]), {"since": since}).json()
        self.check(who, repr(data))

    @invariant()
    def students_see_only_what_their_teacher_sent_them(self):
        for who in (0, 1):
            conversation = self.conversations[who]
            client = self.clients[who]
            seen = [
                client.get(reverse("conversation", args=[conversation.id])).content.decode(),
                repr(client.get(reverse("conversation_messages", args=[conversation.id])).json()),
                repr(selectors.messages_for_student(conversation, 0)),
            ]
            self.check(who, "\n".join(seen))
            shown = [m["text"] for m in selectors.messages_for_student(conversation, 0) if m["sender"] == "tutor"]
            assert set(t for t in shown if t) <= self.allowed[who]

    def check(self, who, seen: str):
        assert "FAILURE-SECRET" not in seen
        for drafts in self.secret.values():
            for text in drafts:
                if text not in self.allowed[who]:
                    assert text not in seen, f"unapproved draft {text} reached student {who}"
        for text in self.allowed[1 - who] - self.allowed[who]:  # a group's answer is both students'
            assert text not in seen, "another student's reply leaked"


@pytest.mark.django_db
def test_no_sequence_of_actions_shows_a_student_unapproved_text():
    from django.test import override_settings

    with override_settings(TUTOR_MAX_PENDING_PER_STUDENT=1000, TUTOR_MESSAGES_PER_MINUTE=1000):
        run_state_machine_as_test(
            ReviewLoop,
            settings=settings(
                max_examples=12,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
