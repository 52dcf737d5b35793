"""Conversations, messages, and tutor replies with their review.

A tutor reply is a Message with sender=TUTOR. The model's draft (draft_text) and what
the student may read (final_text) are kept apart: final_text is written only by a
teacher's decision, and it is the only tutor text that any student-facing code reads.
A message with sender=SCHOOL is text the school admin approved in advance (the
supportive message after an urgent message): the only text a student reads that no
teacher reviewed.
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
        SCHOOL = "school", _("Your school")  # approved in advance by the school admin

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
    distressed = models.BooleanField(default=False)  # the question's safety tier is 1 or more: reviewed first
    # Safeguarding (tutor.safeguarding): the question's tier (0 nothing, 1 concern, 2 urgent)
    # and category. An unsafe draft is one of the draft's checks (checks["safety"]).
    safety_tier = models.PositiveSmallIntegerField(default=0)
    safety_category = models.CharField(max_length=20, blank=True)
    # Alike questions. question_key is the question's normal form when it may be grouped
    # ("" when not: see tutor.grouping.groupable_key); question_vector its sentence
    # embedding, written by the worker. group_opt_out: a reviewer split it out of a group.
    question_key = models.CharField(max_length=200, blank=True)
    question_vector = models.JSONField(null=True, blank=True)
    group = models.ForeignKey("QuestionGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    group_opt_out = models.BooleanField(default=False)
    # A student's question's multilingual embedding (tutor.embeddings), written by the
    # housekeeping worker once it is asked, for the class's topics page (class_topics).
    topic_vector = models.BinaryField(null=True, blank=True, editable=False)

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


class SafeguardingAlert(models.Model):
    """An urgent message of a student: who was alerted, who acknowledged, what it was.

    It is raised when the question is saved, not after review. Until someone acknowledges
    it, it moves one step every school.alert_ack_minutes (tutor.safeguarding.services):
    step 0 alerts the class's teachers and reviewers and the first designated person, each
    next step the next designated person, the last step the school's admins.
    """

    class Outcome(models.TextChoices):
        NONE = "", _("Not marked yet")
        FALSE_ALARM = "false_alarm", _("False alarm")
        REAL_CONCERN = "real_concern", _("Real concern")

    school = models.ForeignKey("classrooms.School", on_delete=models.CASCADE, related_name="safeguarding_alerts")
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="safeguarding_alerts")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="safeguarding_alerts")
    question = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="safeguarding_alert")
    reply = models.ForeignKey(Message, null=True, on_delete=models.SET_NULL, related_name="+")
    supportive_message = models.ForeignKey(Message, null=True, on_delete=models.SET_NULL, related_name="+")
    tier = models.PositiveSmallIntegerField(default=2)
    category = models.CharField(max_length=20)
    reason = models.CharField(max_length=20, blank=True)  # "lexicon" or "examples"
    created_at = models.DateTimeField(auto_now_add=True)
    step = models.PositiveSmallIntegerField(default=0)  # the last step that was sent
    next_step_at = models.DateTimeField(null=True, blank=True)  # None: acknowledged, or nobody left
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    outcome_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["acknowledged_at", "next_step_at"])]

    def __str__(self):
        return f"Alert {self.pk} ({self.category})"


class AlertNotice(models.Model):
    """One person told of one alert by one channel: the banner in the app, or an e-mail.

    E-mails are sent after the commit and retried by the periodic task until sent (or the
    alert is acknowledged); the database says which are owed, so a restart loses none.
    """

    class Channel(models.TextChoices):
        APP = "app", _("In the app")
        EMAIL = "email", _("E-mail")

    class State(models.TextChoices):
        PENDING = "pending", _("To send")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed; will retry")
        NO_ADDRESS = "no_address", _("No e-mail address")
        CANCELLED = "cancelled", _("Not needed: acknowledged")

    alert = models.ForeignKey(SafeguardingAlert, on_delete=models.CASCADE, related_name="notices")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    step = models.PositiveSmallIntegerField(default=0)
    why = models.CharField(max_length=20)  # "reviewer", "contact", "admin"
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "person", "channel"], name="one_notice_per_person_and_channel")
        ]
        indexes = [models.Index(fields=["channel", "state", "next_try_at"])]

    def __str__(self):
        return f"Alert {self.alert_id} to {self.person_id} by {self.channel}: {self.state}"


class SafeguardingExample(models.Model):
    """A de-identified message a school's reviewer marked "false alarm" or "real
    concern": it joins that school's examples of the classifier (no retraining). The
    school admin sees and prunes them."""

    school = models.ForeignKey("classrooms.School", on_delete=models.CASCADE, related_name="safeguarding_examples")
    label = models.CharField(max_length=20)  # a class of tutor.safeguarding.classifier.CLASSES
    text = models.TextField()  # de-identified
    vector = models.BinaryField()  # float32, from the classifier's example_vector
    alert = models.ForeignKey(SafeguardingAlert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-added_at", "-id"]

    def __str__(self):
        return f"{self.school_id} example ({self.label})"


class CourseDocument(models.Model):
    """An item of course material a teacher gave a class (tutor.material): the file as
    uploaded, until the worker has read it into passages. Deleted with its class."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting to be read")
        INDEXING = "indexing", _("Being read")
        READY = "ready", _("Ready")
        NO_TEXT = "no_text", _("No text found")
        FAILED = "failed", _("Could not be read")

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word"
        ODT = "odt", "OpenDocument"
        TEXT = "text", _("Plain text")
        MARKDOWN = "markdown", "Markdown"

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="course_documents")
    name = models.CharField(_("name"), max_length=200)
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content = models.BinaryField()  # the file as uploaded; emptied once it is read
    size = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)  # PDF pages (1 for a text file)
    pages_read = models.PositiveIntegerField(default=0)  # indexing progress
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure = models.CharField(max_length=300, blank=True)  # stored in English, shown translated
    version = models.PositiveIntegerField(default=1)  # bumped by a replacement; the task carries it
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    indexing_started_at = models.DateTimeField(null=True, blank=True)  # the reconciler's clock
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.classroom_id})"


class CoursePassage(models.Model):
    """A passage of a course document, with where it is (page or section), its sentence
    embedding (float32 bytes, tutor.embeddings) for the search of tutor.material.search."""

    document = models.ForeignKey(CourseDocument, on_delete=models.CASCADE, related_name="passages")
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="+")  # the search's one filter
    position = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    vector = models.BinaryField()

    class Meta:
        ordering = ["document_id", "position"]
        indexes = [models.Index(fields=["classroom", "id"])]

    def __str__(self):
        return f"{self.document_id}#{self.position}"
