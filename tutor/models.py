"""Conversations, messages, and tutor replies with their review.

A tutor reply is a Message with sender=TUTOR. The model's draft (draft_text) and what
the student may read (final_text) are kept apart: final_text is written only by a
teacher's decision, and it is the only tutor text that any student-facing code reads.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from classrooms.models import Classroom


class Conversation(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="conversations")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(_("title"), max_length=120, blank=True)
    # Bumped on every change a student can see; clients catch up with "what came after N".
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["classroom", "student"])]

    def __str__(self):
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Sender(models.TextChoices):
        STUDENT = "student", _("Student")
        TUTOR = "tutor", _("Tutor")

    class Status(models.TextChoices):
        # Lifecycle of a tutor reply. Student questions keep status "".
        QUEUED = "queued", _("Queued")
        DRAFTING = "drafting", _("Drafting")
        AWAITING_REVIEW = "awaiting_review", _("Awaiting review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Drafting failed")
        # Asks what another pending question of the class asks: it gets that question's
        # reviewed reply (see QuestionGroup) and has no draft of its own.
        GROUPED = "grouped", _("Answered with alike questions")

    # The status sets, written once. Waiting for a teacher (a group's members wait on
    # their lead); what a reviewer acts on (a group once, as its lead); decided.
    PENDING_STATUSES = (Status.QUEUED, Status.DRAFTING, Status.AWAITING_REVIEW, Status.FAILED, Status.GROUPED)
    REVIEWABLE_STATUSES = (Status.QUEUED, Status.DRAFTING, Status.AWAITING_REVIEW, Status.FAILED)
    DECIDED_STATUSES = (Status.APPROVED, Status.REJECTED)

    class Decision(models.TextChoices):
        AS_DRAFTED = "as_drafted", _("Approved as drafted")
        EDITED = "edited", _("Edited, then approved")
        TEACHER_REPLY = "teacher_reply", _("Rejected; the teacher wrote the reply")
        REJECTED = "rejected", _("Rejected without a reply")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=8, choices=Sender.choices)
    # Student questions: the question. Tutor replies: unused (see draft_text / final_text).
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveBigIntegerField(default=0)  # the conversation's version at its last visible change
    client_id = models.CharField(max_length=64, blank=True)  # the browser's idempotency key

    # Tutor replies only.
    in_reply_to = models.OneToOneField("self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply")
    status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    draft_text = models.TextField(blank=True)  # the model's words; never shown to a student
    final_text = models.TextField(blank=True)  # what the student reads; set only by a teacher's decision
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    draft_attempt = models.PositiveIntegerField(default=0)  # bumped by regenerate; tasks carry it
    regenerate_instruction = models.CharField(max_length=200, blank=True)
    previous_drafts = models.JSONField(default=list, blank=True)  # history is never rewritten
    # The model chosen for this reply (a key of settings.TUTOR_MODELS): its workers draft
    # it. model_name is what the engine reports it drafted with.
    model_key = models.CharField(max_length=40, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    generation_settings = models.JSONField(default=dict, blank=True)
    mean_token_prob = models.FloatField(null=True, blank=True)
    # What tutor.checks found in draft_text (maths, language, loops), written with the draft.
    checks = models.JSONField(default=dict, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    draft_started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # the drafting worker is alive
    drafted_at = models.DateTimeField(null=True, blank=True)
    # Why the last try failed, for the teacher. On a queued reply: why it waits (its model
    # server did not answer), and the reconciler tries it again.
    failure = models.CharField(max_length=300, blank=True)

    # Triage: set when the question is asked, read by the review queue.
    distressed = models.BooleanField(default=False)  # the question has words of distress: reviewed first
    # Alike questions. question_key is the question's normal form when it may be grouped
    # ("" when not: see tutor.grouping.groupable_key); question_vector its sentence
    # embedding, written by the worker. group_opt_out: a reviewer split it out of a group.
    question_key = models.CharField(max_length=200, blank=True)
    question_vector = models.JSONField(null=True, blank=True)
    group = models.ForeignKey("QuestionGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    group_opt_out = models.BooleanField(default=False)

    # Review: a reviewer who opens a draft holds it for a short lease, renewed while open.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    review_opened_at = models.DateTimeField(null=True, blank=True)  # when the current claim began
    review_seconds = models.FloatField(null=True, blank=True)  # opened -> decided, for the decider

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~models.Q(client_id=""),
                name="one_message_per_client_id",
            ),
            # The gate, in the database too: the text a student reads exists only once a
            # teacher approved it or wrote it (tutor.selectors.student_visible_text).
            models.CheckConstraint(
                condition=models.Q(final_text="")
                | models.Q(status="approved")
                | models.Q(status="rejected", decision="teacher_reply"),
                name="final_text_only_from_a_teacher",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="approved") | ~models.Q(final_text=""),
                name="an_approved_reply_has_text",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["conversation", "version"])]

    def __str__(self):
        return f"{self.sender} message {self.pk}"

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES


class QuestionGroup(models.Model):
    """Pending questions of one class that ask the same thing, reviewed once.

    The lead is the reply whose draft the group shares; it is written from the lead's
    question alone. Members have status GROUPED and no draft; when a reviewer decides on
    the lead, each member gets the same final text in its own conversation.
    """

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="question_groups")
    lead = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="led_group")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Group {self.pk} led by reply {self.lead_id}"
