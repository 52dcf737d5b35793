"""Forms: they read and check what a person typed; services do the writing."""

from __future__ import annotations

from typing import ClassVar
from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.contrib.auth.forms import BaseUserCreationForm, UsernameField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from classrooms import roster, schedule, selectors
from classrooms.models import (
    DEFAULT_TUTOR_INSTRUCTIONS,
    Classroom,
    Membership,
    School,
    User,
)
from classrooms.services import BULK_ACCOUNTS_MAX


def refuse_formula(value: str) -> None:
    if roster.looks_like_formula((value or "").strip()):
        raise ValidationError(_("This may not start with =, +, - or @."), code="formula")


def clean_new_username(username: str) -> str:
    """The username of a new account (a staff account, a student signing up): nothing a
    spreadsheet would run as a formula, and not taken, whatever its case."""
    refuse_formula(username)
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(_("This username is taken. Choose another one."), code="taken")
    return username


class ClassroomNameForm(forms.Form):
    name = forms.CharField(label=_("Class name"), max_length=200, validators=[refuse_formula])


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, person: User) -> str:
        return f"{person} ({person.username})" if person.get_full_name() else person.username


class StaffAssignForm(forms.Form):
    person = PersonChoiceField(label=_("Person"), queryset=User.objects.none())
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[(Membership.Role.TEACHER, _("Teacher")), (Membership.Role.REVIEWER, _("Reviewer"))],
        initial=Membership.Role.TEACHER,
    )

    def __init__(self, *args, classroom: Classroom, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = (
            selectors.people_of_school(classroom.school)
            .filter(is_active=True)
            .exclude(memberships__classroom=classroom)
            .exclude(memberships__role=Membership.Role.STUDENT)
        )


class StudentEnrolForm(forms.Form):
    person = PersonChoiceField(label=_("Student"), queryset=User.objects.none())

    def __init__(self, *args, classroom: Classroom, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = (
            selectors.people_of_school(classroom.school)
            .filter(is_school_admin=False)
            .exclude(memberships__classroom=classroom)
            .exclude(memberships__role__in=selectors.STAFF_ROLES)
        )


class StudentMoveForm(forms.Form):
    to_classroom = forms.ModelChoiceField(label=_("Move to"), queryset=Classroom.objects.none())

    def __init__(self, *args, classroom: Classroom, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_classroom"].queryset = Classroom.objects.filter(
            school_id=classroom.school_id, archived=False
        ).exclude(pk=classroom.pk)


class BulkAccountsForm(forms.Form):
    names = forms.CharField(
        label=_("Students, one a line: first name, then last name"),
        widget=forms.Textarea(attrs={"rows": 12}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Filled in per request: "%" on a lazy string would fix it in the language at import.
        self.fields["names"].help_text = _("For example “Léa Martin”. At most %(max)d students at a time.") % {
            "max": BULK_ACCOUNTS_MAX
        }

    def clean_names(self) -> list[tuple[str, str]]:
        names = []
        for number, line in enumerate(self.cleaned_data["names"].splitlines(), start=1):
            line = " ".join(line.replace(";", " ").replace(",", " ").split())
            if not line:
                continue
            if roster.looks_like_formula(line):
                raise ValidationError(_("Line %(n)d starts with =, +, - or @.") % {"n": number})
            first, _sep, last = line.partition(" ")
            if not last:
                raise ValidationError(_("Line %(n)d needs a first name and a last name.") % {"n": number})
            if len(first) > 150 or len(last) > 150:
                raise ValidationError(_("Line %(n)d is too long.") % {"n": number})
            names.append((first, last))
        if not names:
            raise ValidationError(_("Write at least one student's name."))
        if len(names) > BULK_ACCOUNTS_MAX:
            raise ValidationError(_("At most %(max)d students at a time.") % {"max": BULK_ACCOUNTS_MAX})
        return names


class RosterUploadForm(forms.Form):
    file = forms.FileField(label=_("Roster file (CSV)"))

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > roster.ROSTER_MAX_BYTES:
            raise ValidationError(
                _("The file is too large (at most %(kb)d KB). Split it into several files.")
                % {"kb": roster.ROSTER_MAX_BYTES // 1024}
            )
        return upload.read(roster.ROSTER_MAX_BYTES + 1)


class RosterConfirmForm(forms.Form):
    # The previewed file travels back with the confirmation; it is read and checked again.
    roster = forms.CharField(strip=False, max_length=roster.ROSTER_MAX_BYTES)

    def clean_roster(self) -> bytes:
        return self.cleaned_data["roster"].encode("utf-8")


class StaffAccountForm(forms.Form):
    username = forms.RegexField(
        label=_("Username"),
        max_length=150,
        regex=r"^[\w.@+-]+\Z",
        error_messages={"invalid": _("Letters, digits and . @ + - _ only.")},
    )
    first_name = forms.CharField(label=_("First name"), max_length=150, validators=[refuse_formula])
    last_name = forms.CharField(label=_("Last name"), max_length=150, validators=[refuse_formula])
    email = forms.EmailField(label=_("E-mail"), required=False)

    def clean_username(self) -> str:
        return clean_new_username(self.cleaned_data["username"])


class SchoolSettingsForm(forms.ModelForm):
    class Meta:
        model = School
        fields = ("retention_days",)

    retention_days = forms.IntegerField(
        label=_("Keep conversations for (days)"),
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("Conversations not touched for longer are deleted automatically, every hour."),
    )


class SchoolModelsForm(forms.Form):
    """Which model drafts the school's replies by default, and which others its teachers
    may choose for a class. Only shown where the deployment declares several."""

    default_model = forms.ChoiceField(
        label=_("Default model"),
        help_text=_("Drafts the replies of every class whose teacher has not chosen another."),
    )
    allowed_models = forms.MultipleChoiceField(
        label=_("Teachers may also choose"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, school: School, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "default_model": selectors.school_default_model(school),
                "allowed_models": selectors.school_allowed_models(school)[1:],
            },
        )
        super().__init__(*args, **kwargs)
        choices = [(m["key"], selectors.model_label(m["key"])) for m in selectors.declared_models()]
        self.fields["default_model"].choices = choices
        self.fields["allowed_models"].choices = choices


class TutorSettingsForm(forms.ModelForm):
    restore_default = forms.BooleanField(label=_("Use the default instructions"), required=False)

    class Meta:
        model = Classroom
        fields = ("subject", "level", "reply_language", "tutor_instructions", "max_reply_words")

    max_reply_words = forms.IntegerField(
        label=_("Longest reply (words)"), validators=[MinValueValidator(10), MaxValueValidator(400)]
    )
    tutor_instructions = forms.CharField(
        label=_("The tutor's instructions"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("What the tutor should do and avoid. Every draft in this class follows it."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        classroom = self.instance
        allowed = selectors.school_allowed_models(classroom.school)
        if len(allowed) > 1:
            # "" follows the school's default, whatever it becomes.
            choices = [("", _("The school's default: %(model)s") % {"model": selectors.model_label(allowed[0])})]
            choices += [(key, selectors.model_label(key)) for key in allowed[1:]]
            self.fields["model_key"] = forms.ChoiceField(
                label=_("Model that drafts the replies"),
                choices=choices,
                required=False,
                initial=classroom.model_key if classroom.model_key in allowed[1:] else "",
                help_text=_("Your school admin chooses which models classes may use. You still review every reply."),
                error_messages={
                    "invalid_choice": _(
                        "Your school does not allow this model for its classes. Choose one of the models listed, "
                        "or ask your school admin."
                    )
                },
            )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("restore_default") or not (data.get("tutor_instructions") or "").strip():
            data["tutor_instructions"] = DEFAULT_TUTOR_INSTRUCTIONS
        return data

    def setting_values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class JoinForm(forms.Form):
    code = forms.CharField(
        label=_("Join code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )


class SignUpForm(BaseUserCreationForm):
    code = forms.CharField(
        label=_("Join code from your teacher"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )

    class Meta:
        model = User
        fields = ("code", "first_name", "last_name", "username")
        field_classes: ClassVar = {"username": UsernameField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("first_name", "last_name"):
            self.fields[name].required = True
            self.fields[name].validators.append(refuse_formula)
        self.order_fields(["code", "first_name", "last_name", "username", "password1", "password2"])

    def clean_username(self) -> str:
        return clean_new_username(self.cleaned_data.get("username", ""))


class DeleteStudentForm(forms.Form):
    confirm_username = forms.CharField(label=_("Type the student's username to confirm"), max_length=150)

    def __init__(self, *args, student: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.student = student

    def clean_confirm_username(self) -> str:
        value = self.cleaned_data["confirm_username"].strip()
        if value != self.student.username:
            raise ValidationError(_("That is not this student's username."))
        return value


# Safeguarding


class SafeguardingContactForm(forms.Form):
    person = PersonChoiceField(label=_("Person"), queryset=User.objects.none())
    title = forms.CharField(
        label=_("Their role"),
        max_length=100,
        required=False,
        validators=[refuse_formula],
        help_text=_("e.g. CPE, school nurse, psychologist, head teacher"),
    )

    def __init__(self, *args, school: School, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = (
            selectors.people_of_school(school)
            .filter(is_active=True)
            .exclude(memberships__role=Membership.Role.STUDENT)
            .exclude(safeguarding_roles__school=school)
        )


class SupportiveMessageForm(forms.Form):
    language = forms.ChoiceField(choices=())
    text = forms.CharField(label=_("Message"), widget=forms.Textarea, max_length=2000)

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["language"].choices = settings.LANGUAGES


class AlertDelayForm(forms.Form):
    minutes = forms.IntegerField(
        label=_("Minutes before an unacknowledged urgent alert moves to the next person"),
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )


QUOTA_FIELDS = ("per_hour", "per_day", "unanswered")


def _quota_field(label: str, help_text: str) -> forms.IntegerField:
    # Bounds are checked in clean_<field> to name the school's ceiling in the message.
    return forms.IntegerField(
        label=label,
        required=False,
        help_text=help_text,
        error_messages={"invalid": _("Enter a whole number, or leave it empty.")},
    )


class ClassLimitsForm(forms.Form):
    """A teacher's quotas per student for a class, within the school's ceilings, and its
    weekly opening hours. Empty quota: the school's ceiling. 0 is refused: stopping every
    question is what the pause switch is for, so there is one way to do it."""

    per_hour = _quota_field(_("Questions per student per hour"), _("Empty: your school's most."))
    per_day = _quota_field(_("Questions per student per day"), _("Counted from midnight. Empty: your school's most."))
    unanswered = _quota_field(
        _("Unanswered questions per student"),
        _("A student waits for an answer beyond this. Empty: your school's most."),
    )
    opening_hours = forms.CharField(
        label=_("Opening hours"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Mon-Fri 08:00-17:00\nMon-Thu 18:00-21:00"}),
        help_text=_(
            "One period a line: days, then hours, such as “Mon-Fri 08:00-17:00” or “lun-jeu 18h-21h”. "
            "A period may run past midnight (“Fri 20:00-01:00”). Empty: always open."
        ),
    )

    def __init__(self, *args, classroom: Classroom, **kwargs):
        self.ceilings = selectors.school_ceilings(classroom.school)
        kwargs.setdefault(
            "initial",
            {
                "per_hour": classroom.questions_per_hour,
                "per_day": classroom.questions_per_day,
                "unanswered": classroom.max_unanswered,
                "opening_hours": schedule.as_text(classroom.opening_hours),
            },
        )
        super().__init__(*args, **kwargs)
        for name in QUOTA_FIELDS:
            self.fields[name].widget.attrs.update({"min": 1, "max": self.ceilings[name]})
            self.fields[name].widget.attrs["placeholder"] = str(self.ceilings[name])

    def _quota(self, name: str) -> int | None:
        value = self.cleaned_data.get(name)
        if value is None:
            return None
        if value == 0:
            raise ValidationError(
                _("0 would stop every question. To stop the tutor for a while, use “Pause the tutor” instead."),
                code="zero",
            )
        if value < 0:
            raise ValidationError(_("Enter a number of 1 or more."), code="negative")
        if value > self.ceilings[name]:
            raise ValidationError(
                _("Your school allows at most %(max)d. Ask your school admin for more.") % {"max": self.ceilings[name]},
                code="ceiling",
            )
        return value

    def clean_per_hour(self) -> int | None:
        return self._quota("per_hour")

    def clean_per_day(self) -> int | None:
        return self._quota("per_day")

    def clean_unanswered(self) -> int | None:
        return self._quota("unanswered")

    def clean_opening_hours(self) -> list[dict]:
        try:
            return schedule.parse(self.cleaned_data.get("opening_hours") or "")
        except schedule.ScheduleError as exc:
            raise ValidationError(str(exc), code="hours") from exc


def _ceiling_field(label: str, key: str) -> forms.IntegerField:
    top = settings.TUTOR_QUOTA_HARD_MAX[key]
    return forms.IntegerField(
        label=label,
        required=False,
        help_text=_("Empty: the platform's default."),
        validators=[
            MinValueValidator(1, _("Enter a number of 1 or more.")),
            MaxValueValidator(top, _("At most %(limit_value)s.")),
        ],
        widget=forms.NumberInput(attrs={"min": 1, "max": top}),
    )


class SchoolLimitsForm(forms.Form):
    """The school admin's ceilings on what teachers may allow, and the school's time zone."""

    per_hour = _ceiling_field(_("Most questions per student per hour"), "per_hour")
    per_day = _ceiling_field(_("Most questions per student per day"), "per_day")
    unanswered = _ceiling_field(_("Most unanswered questions per student"), "unanswered")
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        required=False,
        help_text=_("Classes' opening hours are read in it, such as Europe/Paris. Empty: the platform's."),
    )

    def __init__(self, *args, school: School, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "per_hour": school.ceiling_per_hour,
                "per_day": school.ceiling_per_day,
                "unanswered": school.ceiling_unanswered,
                "time_zone": school.time_zone,
            },
        )
        super().__init__(*args, **kwargs)
        defaults = selectors.school_ceilings(School())
        for name in ("per_hour", "per_day", "unanswered"):
            self.fields[name].widget.attrs["placeholder"] = str(defaults[name])
        self.fields["time_zone"].widget.attrs["placeholder"] = str(selectors.school_zone(School()))

    def clean_time_zone(self) -> str:
        name = (self.cleaned_data.get("time_zone") or "").strip()
        if name and name not in available_timezones():
            raise ValidationError(_("“%(zone)s” is not a time zone. Write it like Europe/Paris.") % {"zone": name})
        return name
