"""Sign-in services, the accounts they vouch for, and the learning platforms of schools."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.db import models
from django.utils.translation import gettext_lazy as _

from classrooms.models import Classroom, School, User

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class IdentityProvider(models.Model):
    """A sign-in service: an OpenID Connect provider or a CAS server.

    A provider with no school is the installation's (set up by its operator, e.g.
    ProConnect) and any school may turn it on; a provider with a school is that school's
    own (its ENT, its Keycloak). Client secrets never live in the database: they are read
    from the environment variable `secret_variable` (or the file `<it>_FILE` names).
    """

    class Protocol(models.TextChoices):
        OIDC = "oidc", _("OpenID Connect")
        CAS = "cas", _("CAS")

    key = models.SlugField(_("short name"), max_length=40, unique=True)
    name = models.CharField(_("name on the button"), max_length=100)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Protocol.choices)
    school = models.ForeignKey(
        School, null=True, blank=True, on_delete=models.CASCADE, related_name="own_identity_providers"
    )
    # OpenID Connect
    issuer = models.URLField(_("issuer"), blank=True)
    client_id = models.CharField(_("client ID"), max_length=255, blank=True)
    scopes = models.CharField(_("scopes"), max_length=255, default="openid email profile", blank=True)
    # CAS
    server_url = models.URLField(_("CAS server address"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def secret_variable(self) -> str:
        return "TUTOR_IDP_" + self.key.upper().replace("-", "_") + "_CLIENT_SECRET"

    def client_secret(self) -> str:
        """The client secret from the environment, or "" when the server has none."""
        path = os.environ.get(self.secret_variable + "_FILE")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError:
                return ""
        return os.environ.get(self.secret_variable, "").strip()


class SchoolSignIn(models.Model):
    """One school's use of a sign-in service, with the school's own rules."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="sign_ins")
    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="school_sign_ins")
    enabled = models.BooleanField(_("on"), default=True)
    create_accounts = models.BooleanField(
        _("create accounts for new people"),
        default=False,
        help_text=_("Off: only people who already have an account of the school, linked to this service, get in."),
    )
    teacher_claim = models.CharField(
        _("claim that makes a teacher"),
        max_length=100,
        blank=True,
        help_text=_("The attribute the service sends, e.g. eduPersonAffiliation or ENTPersonProfils."),
    )
    teacher_values = models.CharField(
        _("values that make a teacher"),
        max_length=500,
        blank=True,
        help_text=_("Separated by commas, e.g. teacher, National_ENS. * means any value. Everyone else is a student."),
    )
    admit_claim = models.CharField(
        _("only admit people whose claim"),
        max_length=100,
        blank=True,
        help_text=_("For a service shared by many schools, e.g. siret or the school's UAI attribute."),
    )
    admit_values = models.CharField(_("is one of"), max_length=500, blank=True)
    student_number_claim = models.CharField(
        _("claim with the student number"),
        max_length=100,
        blank=True,
        help_text=_(
            "Links a student's first sign-in to the account imported with the same student number. "
            "Never done by e-mail."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider__name"]
        constraints = [models.UniqueConstraint(fields=["school", "provider"], name="one_sign_in_per_school_service")]

    def __str__(self):
        return f"{self.provider} for {self.school}"


class ExternalIdentity(models.Model):
    """Who a sign-in service says a person is: its stable subject, linked to one account."""

    class Role(models.TextChoices):
        TEACHER = "teacher", _("Teacher")
        STUDENT = "student", _("Student")

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="external_identities")
    # As the school's rule read the service's claims at the last sign-in.
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "subject"], name="one_account_per_subject")]

    def __str__(self):
        return f"{self.provider.key}:{self.subject} → {self.user}"


class LtiPlatform(models.Model):
    """A learning platform (Moodle, Canvas…) registered for one school: its course rosters
    fill the school's classes."""

    registration = models.OneToOneField(
        "lti_tool.LtiRegistration", on_delete=models.CASCADE, related_name="school_platform"
    )
    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="lti_platforms")
    registered_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["registration__name"]

    def __str__(self):
        return self.registration.name

    def frame_origins(self) -> list[str]:
        """The origins that may show the tutor in a frame: the platform's own site."""
        origins = []
        for url in (self.registration.issuer, self.registration.auth_url):
            parts = urlsplit(url or "")
            if parts.scheme in ("http", "https") and parts.netloc:
                origin = f"{parts.scheme}://{parts.netloc}"
                if origin not in origins:
                    origins.append(origin)
        return origins


class PlatformInvitation(models.Model):
    """A one-time address a platform's administrator pastes into "add a tool by URL"."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="platform_invitations")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    platform = models.ForeignKey(LtiPlatform, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"registration address for {self.school}"


class CourseLink(models.Model):
    """A platform's course whose roster fills a class of the school."""

    context = models.OneToOneField("lti_tool.LtiContext", on_delete=models.CASCADE, related_name="class_link")
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="course_links")
    linked_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    linked_at = models.DateTimeField(auto_now_add=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    # The course teacher the roster changes are recorded under in the audit log.
    roster_actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"{self.context} → {self.classroom}"


class SignInProblem(models.Model):
    """A refused sign-in or launch, in words a school admin can act on (no personal data)."""

    school = models.ForeignKey(School, null=True, on_delete=models.CASCADE, related_name="sign_in_problems")
    provider = models.ForeignKey(IdentityProvider, null=True, on_delete=models.CASCADE, related_name="problems")
    platform = models.ForeignKey(LtiPlatform, null=True, on_delete=models.CASCADE, related_name="problems")
    reason = models.CharField(max_length=50)
    detail = models.CharField(max_length=500)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.reason}"
