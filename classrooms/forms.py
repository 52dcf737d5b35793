"""Forms: they read and check what a person typed; services do the writing."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm, UsernameField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from classrooms import roster, selectors
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
