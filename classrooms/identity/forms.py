"""Forms of the sign-in pages. Checks of what was typed; the rules are in `services`."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from classrooms.identity.models import IdentityProvider, SchoolSignIn
from classrooms.identity.services import SIGN_IN_RULE_FIELDS
from classrooms.models import Classroom


class OwnProviderForm(forms.Form):
    protocol = forms.ChoiceField(label=_("Protocol"), choices=IdentityProvider.Protocol.choices)
    name = forms.CharField(label=_("Name on the button"), max_length=100)
    slug = forms.SlugField(
        label=_("Short name"),
        max_length=30,
        help_text=_("Letters, digits and dashes; part of the addresses to register at the service."),
    )
    issuer = forms.URLField(label=_("Issuer (OpenID Connect)"), required=False, assume_scheme="https")
    client_id = forms.CharField(label=_("Client ID (OpenID Connect)"), max_length=255, required=False)
    scopes = forms.CharField(
        label=_("Scopes (OpenID Connect)"), max_length=255, required=False, initial="openid email profile"
    )
    server_url = forms.URLField(label=_("CAS server address"), required=False, assume_scheme="https")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("protocol") == IdentityProvider.Protocol.OIDC and not (
            data.get("issuer") and data.get("client_id")
        ):
            raise forms.ValidationError(_("An OpenID Connect provider needs its issuer and client ID."))
        if data.get("protocol") == IdentityProvider.Protocol.CAS and not data.get("server_url"):
            raise forms.ValidationError(_("A CAS service needs the CAS server's address."))
        return data


def rule_values_of(sign_in: SchoolSignIn) -> dict:
    return {name: getattr(sign_in, name) for name in SIGN_IN_RULE_FIELDS}


class SignInRulesForm(forms.ModelForm):
    class Meta:
        model = SchoolSignIn
        fields = list(SIGN_IN_RULE_FIELDS)

    def rule_values(self) -> dict:
        return {name: self.cleaned_data[name] for name in SIGN_IN_RULE_FIELDS}


class ClassChoiceForm(forms.Form):
    classroom = forms.ModelChoiceField(queryset=None, required=False)
    new_name = forms.CharField(max_length=200, required=False)

    def __init__(self, *args: object, classes: QuerySet[Classroom], **kwargs: object):
        super().__init__(*args, **kwargs)
        self.fields["classroom"].queryset = classes

    def clean(self) -> dict:
        data = super().clean()
        if data.get("classroom") is None and not (data.get("new_name") or "").strip() and not self.data.get("new"):
            raise forms.ValidationError(_("Choose one of your classes, or name a new one."))
        return data
