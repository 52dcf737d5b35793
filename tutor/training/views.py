"""The school admin's page of the training loop: consent, export. Thin: a school admin
(else 403), their own school's classes (else 404), one service call."""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classrooms import services as school_services
from classrooms.selectors import (
    classroom_for_school_admin,
    classrooms_of_school,
    declared_models,
    model_label,
    school_default_model,
)
from classrooms.views import school_admin_required
from tutor.training import selectors, services
from tutor.training.dataset import SUBSTANTIVE_MIN_WORDS, SUBSTANTIVE_RATIO, ExportRefused


class ExportForm(forms.Form):
    classroom = forms.IntegerField(label=gettext_lazy("Class"), required=False)
    since = forms.DateField(label=gettext_lazy("From"), required=False)
    until = forms.DateField(label=gettext_lazy("To"), required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("The first day comes after the last."))
        return data


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_training(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    if request.method == "POST":
        consent = request.POST.get("consent") == "1"
        school_services.school_training_consent_set(actor=request.user, school=school, consent=consent)
        if consent:
            flash.success(request, _("Review decisions may now be exported to improve the school's model."))
        else:
            flash.success(request, _("Review decisions will no longer be exported."))
        return redirect("school_training")
    return render(
        request,
        "tutor/training/school_training.html",
        {
            "school": school,
            "classrooms": classrooms_of_school(school),
            "form": ExportForm(),
            "today": timezone.localdate(),
            "min_words": SUBSTANTIVE_MIN_WORDS,
            "min_percent": round(SUBSTANTIVE_RATIO * 100),
            "section": "training",
            "default_label": model_label(school_default_model(school)),
            "trial_label": model_label(school.trial_model),
            "previous_label": model_label(school.previous_default_model),
            "trial_choices": [
                (m["key"], model_label(m["key"])) for m in declared_models() if m["key"] != school_default_model(school)
            ],
            "rates": selectors.decision_rates_by_model(school),
        },
    )


@school_admin_required
@require_POST
def school_training_models(request: HttpRequest) -> HttpResponse:
    """The model on trial: start (model and share), stop, promote, roll back."""
    school, action = request.user.school, request.POST.get("action")
    try:
        if action == "trial":
            try:
                share = int(request.POST.get("share", ""))
            except ValueError:
                share = 0
            school_services.school_model_trial_set(
                actor=request.user, school=school, model_key=request.POST.get("model", ""), share=share
            )
            flash.success(request, _("The model is on trial: it drafts %(share)s%% of new replies.") % {"share": share})
        elif action == "stop":
            school_services.school_model_trial_stop(actor=request.user, school=school)
            flash.success(request, _("Trial stopped: every new draft comes from the default model."))
        elif action == "promote":
            school_services.school_model_promote(actor=request.user, school=school)
            flash.success(request, _("The model on trial now drafts all the school's replies."))
        elif action == "rollback":
            school_services.school_model_rollback(actor=request.user, school=school)
            flash.success(request, _("Back to the previous default model."))
        else:
            flash.error(request, _("Choose what to do."))
    except school_services.ActionRefused as exc:
        flash.error(request, exc.message)
    return redirect("school_training")


@school_admin_required
@require_GET
def school_training_export(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    form = ExportForm(request.GET)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                flash.error(request, error)
        return redirect("school_training")
    classroom_id = form.cleaned_data.get("classroom")
    classroom = classroom_for_school_admin(request.user, classroom_id) if classroom_id else None
    try:
        export = services.reviews_export(
            actor=request.user,
            school=school,
            classroom=classroom,
            since=form.cleaned_data.get("since"),
            until=form.cleaned_data.get("until"),
        )
    except ExportRefused as exc:
        flash.error(request, exc.message)
        return redirect("school_training")
    from tutor.training.dataset import export_zip

    response = HttpResponse(export_zip(export), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="review-decisions-{timezone.localdate():%Y-%m-%d}.zip"'
    response["Cache-Control"] = "no-store"
    return response
