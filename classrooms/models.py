"""Schools, classes, people and their roles."""

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

DEFAULT_TUTOR_INSTRUCTIONS = (
    "You are a patient, encouraging tutor for school students. Guide the student with hints and "
    "questions so they find the answer themselves; do not hand out final answers or do their "
    "homework for them. Match the student's level, keep replies short and clear, check what they "
    "already know, and always answer in the student's language."
)

# What a student reads at once when their message seems urgent (self-harm, abuse, a
# threat): the school edits and approves it before students can chat. The French national
# lines: 3114 (suicide prevention), 119 (children at risk), 3018 (online harassment),
# 3020 (school harassment); 112 for an emergency.
DEFAULT_SUPPORTIVE_MESSAGES = {
    "en": (
        "Thank you for telling us. What you wrote matters, and you are not alone: a member of "
        "staff at your school has been told and will come to talk with you soon.\n\n"
        "If you are in danger right now, call **112** or tell the nearest adult.\n\n"
        "You can also talk to someone, for free, day and night:\n"
        "- **3114**: if you are thinking about suicide or hurting yourself\n"
        "- **119**: if you are being hurt or are in danger at home or elsewhere\n"
        "- **3018**: if you are being harassed or bullied online\n"
        "- **3020**: if you are being bullied at school"
    ),
    "fr": (
        "Merci de nous l'avoir dit. Ce que tu as écrit compte, et tu n'es pas seul·e : un adulte "
        "de ton établissement a été prévenu et va venir te parler très vite.\n\n"
        "Si tu es en danger maintenant, appelle le **112** ou préviens l'adulte le plus proche.\n\n"
        "Tu peux aussi parler à quelqu'un, gratuitement, jour et nuit :\n"
        "- **3114** : si tu penses au suicide ou à te faire du mal\n"
        "- **119** : si on te fait du mal ou si tu es en danger, à la maison ou ailleurs\n"
        "- **3018** : si tu es harcelé·e en ligne\n"
        "- **3020** : si tu es harcelé·e à l'école"
    ),
}

JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to type from a board


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(6))


class School(models.Model):
    name = models.CharField(_("name"), max_length=200)
    retention_days = models.PositiveIntegerField(
        _("keep conversations for (days)"),
        default=365,
        help_text=_("Conversations older than this are deleted automatically."),
    )
    # Safeguarding (classrooms.selectors.student_chat_blockers says when it may be open).
    student_chat_open = models.BooleanField(_("students may chat with the tutor"), default=False)
    alert_ack_minutes = models.PositiveSmallIntegerField(
        _("minutes before an urgent alert moves on"),
        default=5,
        help_text=_("If nobody acknowledges an urgent alert within this time, the next person on the list is alerted."),
    )
    # The language models of settings.TUTOR_MODELS, by key (see classrooms.selectors).
    default_model = models.CharField(_("default model"), max_length=40, blank=True)  # "": the deployment's
    allowed_models = models.JSONField(_("models classes may use"), default=list, blank=True)  # with the default
    # A/B: a share (percent) of the new replies of classes on the school's default model is
    # drafted by trial_model instead (classrooms.selectors.model_for_new_reply).
    trial_model = models.CharField(_("model on trial"), max_length=40, blank=True)
    trial_share = models.PositiveSmallIntegerField(_("share of drafts on trial (%)"), default=0)
    previous_default_model = models.CharField(max_length=40, blank=True)  # what a rollback returns to
    # Off until the school admin turns it on: only then may the review decisions of the
    # school's classes be exported to train a model (tutor.training.dataset).
    training_consent = models.BooleanField(
        _("use teachers' review decisions to improve the school's model"), default=False
    )
    # Opening hours are read in this zone ("": the deployment's TIME_ZONE).
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    # The most a teacher may allow per student in a class (None: the deployment's
    # TUTOR_QUESTIONS_PER_HOUR, TUTOR_QUESTIONS_PER_DAY, TUTOR_MAX_PENDING_PER_STUDENT).
    ceiling_per_hour = models.PositiveSmallIntegerField(_("most questions per student per hour"), null=True, blank=True)
    ceiling_per_day = models.PositiveSmallIntegerField(_("most questions per student per day"), null=True, blank=True)
    ceiling_unanswered = models.PositiveSmallIntegerField(
        _("most unanswered questions per student"), null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class User(AbstractUser):
    class Language(models.TextChoices):
        ENGLISH = "en", _("English")
        FRENCH = "fr", _("French")

    school = models.ForeignKey(School, null=True, blank=True, on_delete=models.CASCADE, related_name="people")
    is_school_admin = models.BooleanField(_("school admin"), default=False)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices, blank=True)
    # The school's own number for a student (from its roster): how a re-import finds them again.
    student_number = models.CharField(_("student number"), max_length=50, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(
                fields=["school", "student_number"],
                condition=~models.Q(student_number=""),
                name="one_student_number_per_school",
            ),
        ]

    def __str__(self):
        return self.get_full_name() or self.username


class Classroom(models.Model):
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="classrooms")
    name = models.CharField(_("name"), max_length=200)
    archived = models.BooleanField(_("archived"), default=False)
    join_code = models.CharField(max_length=12, unique=True, default=new_join_code)
    join_code_enabled = models.BooleanField(default=True)
    join_code_expires_at = models.DateTimeField(null=True, blank=True)  # None: valid until rotated or turned off
    # The class's tutor, as its teachers shape it.
    subject = models.CharField(_("subject"), max_length=100, blank=True)
    level = models.CharField(_("level"), max_length=100, blank=True)
    reply_language = models.CharField(
        _("language of replies"),
        max_length=50,
        blank=True,
        help_text=_("Leave empty to answer in the student's own language."),
    )
    tutor_instructions = models.TextField(_("tutor's instructions"), default=DEFAULT_TUTOR_INSTRUCTIONS)
    max_reply_words = models.PositiveIntegerField(_("longest reply (words)"), default=60)
    model_key = models.CharField(_("model"), max_length=40, blank=True)  # "": the school's default model
    # Quotas per student, set by the teachers within the school's ceilings (None: the ceiling).
    questions_per_hour = models.PositiveSmallIntegerField(_("questions per student per hour"), null=True, blank=True)
    questions_per_day = models.PositiveSmallIntegerField(_("questions per student per day"), null=True, blank=True)
    max_unanswered = models.PositiveSmallIntegerField(_("unanswered questions per student"), null=True, blank=True)
    # When students may ask (classrooms.schedule): [] is always; periods are wall-clock
    # times in the school's time zone, [{"day": 0-6 (Monday 0), "start": min, "end": min}].
    opening_hours = models.JSONField(_("opening hours"), default=list, blank=True)
    paused = models.BooleanField(_("tutor paused"), default=False)  # "pause the tutor now", e.g. for an exam
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        TEACHER = "teacher", _("Teacher")
        REVIEWER = "reviewer", _("Reviewer")  # reviews drafts, does not administer the class
        STUDENT = "student", _("Student")

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classroom", "user"], name="one_role_per_class")]

    def __str__(self):
        return f"{self.user} {self.role} in {self.classroom}"


REVIEW_ROLES = (Membership.Role.TEACHER, Membership.Role.REVIEWER)


class SafeguardingContact(models.Model):
    """A person the school designated to receive urgent safeguarding alerts (CPE, school
    nurse, psychologist, head), in the order an unacknowledged alert moves down."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="safeguarding_contacts")
    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="safeguarding_roles")
    title = models.CharField(_("role"), max_length=100, blank=True)  # "CPE", "School nurse"
    position = models.PositiveIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["school", "person"], name="one_contact_entry_per_person")]

    def __str__(self):
        return f"{self.person} ({self.title or 'safeguarding'}) at {self.school}"


class SupportiveMessage(models.Model):
    """What a student reads at once after an urgent message, in one language, as the
    school admin wrote and approved it. It is sent without a teacher's review, so only
    approved text is ever stored here."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="supportive_messages")
    language = models.CharField(max_length=8)
    text = models.TextField()
    approved_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["school", "language"], name="one_supportive_message_per_language")
        ]

    def __str__(self):
        return f"{self.school} supportive message ({self.language})"


class AuditEntry(models.Model):
    """Who did what, and when: admin actions and every review decision.

    Lines are only added, never changed, with one exception: deleting a student's account
    replaces their name in the lines about them (target, actor_name) and unlinks them
    (classrooms.services.student_delete), so that the log keeps what happened but not who.
    """

    school = models.ForeignKey(School, null=True, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=200, blank=True)  # kept if the account is deleted
    # The person the action was about, so deleting their account can scrub their name from the log.
    subject = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=50)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}"
