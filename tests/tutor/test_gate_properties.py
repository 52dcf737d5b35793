"""A property-based search for a path by which a student could see text not meant for them.

Hypothesis drives random sequences of ask / draft / fail / open a card / approve / edit /
reject / regenerate / split / reconnect for three students of one class, with alike
questions that join a group, also while the teacher has its lead open. After every step
it reads what each student may see through the gate, and now and then spies on the
chat page, the JSON API and the catch-up a reconnecting socket gets from any version:

- no draft that a teacher did not approve, and no failure text; nothing unreviewed but
  the school's supportive message, approved in advance (sent at once for an urgent question);
- each reply shows only text that a teacher decided while that reply was on the
  teacher's card: the card's own reply, or a question of its group that the card
  displayed when the decision was sent; and the teacher's own words (their reply, or an
  edit) only on the card's own reply unless they chose "send to all".

TUTOR_PROPERTY_PROFILE=quick runs a smaller search while developing; CI runs "ci".
"""

import itertools
import os

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from classrooms.models import Classroom, Membership, School, SupportiveMessage, User
from tests.conftest import open_to_students
from tutor import selectors, services
from tutor.models import Message
from tutor.text import clean_text

PROFILES = {
    "ci": {"max_examples": 200, "stateful_step_count": 40},
    "quick": {"max_examples": 25, "stateful_step_count": 30},
}
STUDENTS = 3
ALIKE = ["What is a prime number?", "How do I add fractions?"]  # the same words group
REVIEWABLE = ("queued", "drafting", "awaiting_review", "failed")

counter = itertools.count()


class ReviewLoop(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint, rolled back at its end: the next one starts on
        # an empty database, so that the search stays as fast at its 200th example as its first.
        self.savepoint = transaction.savepoint()
        n = next(counter)
        school = School.objects.create(name=f"S{n}")
        open_to_students(school, f"cpe{n}")
        self.approved_in_advance = set(SupportiveMessage.objects.filter(school=school).values_list("text", flat=True))
        self.classroom = Classroom.objects.create(school=school, name=f"C{n}")
        self.teacher = User.objects.create_user(f"t{n}", school=school)
        Membership.objects.create(classroom=self.classroom, user=self.teacher, role="teacher")
        self.students, self.clients = [], []
        for i in range(STUDENTS):
            student = User.objects.create_user(f"s{n}-{i}", school=school)
            Membership.objects.create(classroom=self.classroom, user=student, role="student")
            self.students.append(student)
            self.clients.append(None)  # signed in on first use: most examples never need it
        self.conversations = [services.conversation_start(student=s, classroom=self.classroom) for s in self.students]
        self.secret = set()  # every draft text ever written: never shown unless decided
        self.allowed = {}  # reply id -> the texts a teacher decided while it was on their card
        self.cards = {}  # reply id -> ids of its group's other questions the card showed when opened
        self.statuses = set()  # of the class's replies after the last step: read once, for the preconditions

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    # Reading the class.

    def has(self, *statuses):
        return bool(self.statuses.intersection(statuses))

    def replies(self, *statuses):
        return list(
            Message.objects.filter(
                conversation__classroom=self.classroom, sender="tutor", status__in=statuses
            ).order_by("id")
        )

    def waiting_in_group(self, reply):
        """The group's other questions a card of this reply would display now."""
        return set(Message.objects.filter(group__lead_id=reply.id, status="grouped").values_list("id", flat=True))

    def client_of(self, who):
        if self.clients[who] is None:
            self.clients[who] = Client()
            self.clients[who].force_login(self.students[who])
        return self.clients[who]

    # Students.

    def _ask(self, conversation, text):
        try:
            services.question_ask(conversation=conversation, text=text)
        except (services.SlowDown, services.InvalidMessage):
            pass

    @rule(
        who=st.integers(0, STUDENTS - 1),
        text=st.one_of(  # alike questions two times in three
            st.sampled_from(ALIKE),
            st.sampled_from(ALIKE),
            st.text(min_size=1, max_size=40).filter(clean_text),  # text a question may be
            st.just("I want to kill myself"),  # urgent: the school's supportive message, at once
        ),
        anew=st.booleans(),
    )
    def ask(self, who, text, anew):
        """A student asks, in their conversation or in a new one (where alike questions group)."""
        if anew:
            conversation = services.conversation_start(student=self.students[who], classroom=self.classroom)
            self.conversations.append(conversation)
        else:
            conversation = self.conversations[who]
        self._ask(conversation, text)

    @precondition(lambda self: self.cards)
    @rule(pick=st.integers(0, 100), who=st.integers(0, STUDENTS - 1))
    def a_question_joins_a_group_while_its_lead_is_claimed(self, pick, who):
        """Another student asks the same words as a draft the teacher has open."""
        open_leads = list(
            Message.objects.filter(pk__in=self.cards, status__in=REVIEWABLE, group_opt_out=False)
            .exclude(question_key="")
            .select_related("in_reply_to")
            .order_by("id")
        )
        if not open_leads:
            return
        lead = open_leads[pick % len(open_leads)]
        conversation = services.conversation_start(student=self.students[who], classroom=self.classroom)
        self.conversations.append(conversation)
        self._ask(conversation, lead.in_reply_to.text)

    # The worker.

    @precondition(lambda self: self.has("queued"))
    @rule(pick=st.integers(0, 100), fails=st.sampled_from([False, False, False, True]))
    def draft(self, pick, fails):
        """The worker drafts a queued reply (one time in four, the draft fails)."""
        queued = self.replies("queued")
        reply = queued[pick % len(queued)]
        services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt)
        if fails:
            services.draft_fail(reply_id=reply.id, attempt=reply.draft_attempt, reason="FAILURE-SECRET")
            return
        text = f"DRAFT-{next(counter)}-unapproved"
        services.draft_finish(
            reply_id=reply.id, attempt=reply.draft_attempt, text=text, model_name="m", generation_settings={}
        )
        self.secret.add(text)

    # The teacher: cards are opened, and decided with what they showed.

    @precondition(lambda self: self.has(*REVIEWABLE))
    @rule(pick=st.integers(0, 100))
    def open_card(self, pick):
        pending = self.replies(*REVIEWABLE)
        reply = pending[pick % len(pending)]
        try:
            services.reply_claim(reply=reply, reviewer=self.teacher)
        except services.ReviewConflict:
            return
        self.cards.setdefault(reply.id, self.waiting_in_group(reply))

    @precondition(lambda self: self.cards)
    @rule(pick=st.integers(0, 100))
    def include_those_who_asked_since(self, pick):
        reply_id = sorted(self.cards)[pick % len(self.cards)]
        self.cards[reply_id] = self.waiting_in_group(Message(pk=reply_id))

    def pick(self, pick, statuses, on_card):
        """A reply to decide: one whose card the teacher has open, or any."""
        pending = self.replies(*statuses)
        opened = [m for m in pending if m.id in self.cards]
        pool = opened if on_card and opened else pending
        return pool[pick % len(pool)]

    def card_for(self, reply):
        """The members the teacher's card shows: as opened, or (never opened) as it is now."""
        if reply.id in self.cards:
            return self.cards[reply.id]
        return self.waiting_in_group(reply)

    def decided(self, reply, members, text, own_words, to_all):
        """What the decision may show, and on which replies: the card's own, and the
        members it showed unless these are the teacher's own words kept to one student."""
        self.cards.pop(reply.id, None)
        if not text:
            return
        for reply_id in {reply.id} | (members if (to_all or not own_words) else set()):
            self.allowed.setdefault(reply_id, set()).add(text)

    @precondition(lambda self: self.has("awaiting_review"))
    @rule(pick=st.integers(0, 100), on_card=st.booleans(), edit=st.booleans(), to_all=st.booleans())
    def approve(self, pick, on_card, edit, to_all):
        reply = self.pick(pick, ["awaiting_review"], on_card)
        members = set(self.card_for(reply))
        text = f"FINAL-{next(counter)}" if edit else None
        try:
            services.reply_approve(
                reply=reply, reviewer=self.teacher, text=text, members=sorted(members), to_all=to_all
            )
        except services.ReviewConflict:
            return
        self.decided(reply, members, text or reply.draft_text, own_words=edit, to_all=to_all)

    @precondition(lambda self: self.has(*REVIEWABLE))
    @rule(pick=st.integers(0, 100), on_card=st.booleans(), own=st.booleans(), to_all=st.booleans())
    def reject(self, pick, on_card, own, to_all):
        reply = self.pick(pick, REVIEWABLE, on_card)
        members = set(self.card_for(reply))
        text = f"TEACHER-{next(counter)}" if own else ""
        try:
            services.reply_reject(
                reply=reply, reviewer=self.teacher, teacher_text=text, members=sorted(members), to_all=to_all
            )
        except services.ReviewConflict:
            return
        self.decided(reply, members, text, own_words=own, to_all=to_all)

    @precondition(lambda self: self.has("awaiting_review", "failed"))
    @rule(pick=st.integers(0, 100))
    def regenerate(self, pick):
        pending = self.replies("awaiting_review", "failed")
        services.reply_regenerate(reply=pending[pick % len(pending)], reviewer=self.teacher, instruction="simpler")

    @precondition(lambda self: any(self.cards.values()))
    @rule(pick=st.integers(0, 100))
    def split_the_card(self, pick):
        """The teacher takes the questions their card showed out of its group."""
        opened = sorted(r for r, shown in self.cards.items() if shown)
        reply_id = opened[pick % len(opened)]
        try:
            services.reply_split(
                reply=Message.objects.get(pk=reply_id), reviewer=self.teacher, members=sorted(self.cards[reply_id])
            )
        except (services.ReviewConflict, services.InvalidMessage):
            return
        self.cards[reply_id] = set()

    @precondition(lambda self: self.cards)
    @rule(pick=st.integers(0, 100))
    def close_card(self, pick):
        reply_id = sorted(self.cards)[pick % len(self.cards)]
        services.reply_release(reply=Message.objects.get(pk=reply_id), reviewer=self.teacher)
        del self.cards[reply_id]

    # What students receive.

    @rule(pick=st.integers(0, 1000), since=st.integers(0, 60), page=st.booleans())
    def reconnect(self, pick, since, page):
        """A student's browser catches up (the JSON API from any version), or loads the page."""
        conversation = self.conversations[pick % len(self.conversations)]
        who = self.students.index(conversation.student)
        client = self.client_of(who)
        if page:
            seen = client.get(reverse("conversation", args=[conversation.id])).content.decode()
        else:
            seen = repr(client.get(reverse("conversation_messages", args=[conversation.id]), {"since": since}).json())
        self.check(conversation, seen)

    @invariant()
    def each_reply_shows_only_what_was_decided_while_it_was_on_the_card(self):
        self.statuses = set()
        for message in Message.objects.filter(conversation__classroom=self.classroom, sender="tutor"):
            self.statuses.add(message.status)
            text = selectors.student_visible_text(message)
            if text:
                assert text in self.allowed.get(message.id, set()), (
                    f"reply {message.id} shows {text!r}, decided while it was not on the teacher's card"
                )
        unreviewed = {
            selectors.student_visible_text(m)
            for m in Message.objects.filter(conversation__classroom=self.classroom, sender="school")
        }
        assert unreviewed <= self.approved_in_advance, "only text the school approved in advance goes unreviewed"

    def check(self, conversation, seen: str):
        assert "FAILURE-SECRET" not in seen
        mine = set()
        for reply_id in conversation.messages.filter(sender="tutor").values_list("id", flat=True):
            mine |= self.allowed.get(reply_id, set())
        for text in self.secret - mine:
            assert text not in seen, f"unapproved draft {text} reached conversation {conversation.id}"
        for texts in self.allowed.values():
            for text in texts - mine:
                assert text not in seen, f"a reply meant for another conversation reached {conversation.id}"


@pytest.mark.django_db
def test_no_sequence_of_actions_shows_a_student_text_not_decided_for_them():
    from django.test import override_settings

    profile = PROFILES[os.environ.get("TUTOR_PROPERTY_PROFILE", "ci")]
    limits = {"TUTOR_MAX_PENDING_PER_STUDENT": 1000, "TUTOR_MESSAGES_PER_MINUTE": 1000}
    with override_settings(**limits):
        run_state_machine_as_test(
            ReviewLoop,
            settings=settings(
                **profile,
                deadline=None,
                database=None,  # nothing written into the tree; a failure prints its reproduction
                print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
