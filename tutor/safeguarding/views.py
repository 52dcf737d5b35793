"""Pages of safeguarding: an urgent alert (read, acknowledge, mark), a person's alerts,
and the school admin's list of the examples reviewers added. Thin: who is asking, may
they (404 for "not yours"), one service call."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from classrooms.selectors import may_receive_alerts
from classrooms.views import school_admin_required
from tutor.models import SafeguardingAlert
from tutor.safeguarding import classifier, selectors, services


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    if not may_receive_alerts(request.user):
        return render(request, "classrooms/not_for_you.html", {"for_whom": "staff"}, status=403)
    alerts = selectors.alerts_for(request.user)
    for alert in alerts:
        alert.category_label = classifier.CATEGORY_LABELS.get(alert.category, alert.category)
    return render(request, "tutor/safeguarding/alert_list.html", {"alerts": alerts})


@login_required
@require_GET
def alert_page(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_for_person(request.user, alert_id)
    readable = selectors.may_read_alert_text(request.user, alert)
    if readable:
        services.alert_opened(alert=alert, person=request.user)
    categories = [(code, label) for code, label in classifier.CATEGORY_LABELS.items() if code != classifier.OK]
    response = render(
        request,
        "tutor/safeguarding/alert.html",
        {
            "alert": alert,
            "readable": readable,
            "question": alert.question.text if readable else "",
            "student": alert.conversation.student if readable else None,
            "supportive": alert.supportive_message.text if readable and alert.supportive_message_id else "",
            "category_label": classifier.CATEGORY_LABELS.get(alert.category, alert.category),
            "notices": selectors.notices_of(alert),
            "next_step_minutes": selectors.minutes_to_next_step(alert),
            "categories": categories,
            "reviews_class": selectors.reviews_class(request.user, alert.classroom_id),
        },
    )
    response.headers["Cache-Control"] = "no-store, private"  # a child's words stay off disks
    return response


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_for_person(request.user, alert_id)
    try:
        alert = services.alert_acknowledge(alert=alert, person=request.user)
    except services.AlertConflict as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.message, "acknowledged_by": exc.acknowledged_by}, status=409)
        flash.info(request, exc.message)
    else:
        if _wants_json(request):
            return JsonResponse({"alert": selectors.banner_view(alert)})
        flash.success(request, _("Acknowledged: nobody else will be alerted. The others see that you have it."))
    return redirect("safeguarding_alert", alert_id=alert.pk)


@login_required
@require_POST
def alert_mark(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_for_person(request.user, alert_id)
    if not selectors.may_read_alert_text(request.user, alert):
        return render(request, "classrooms/not_for_you.html", {"for_whom": "teacher"}, status=403)
    outcome = request.POST.get("outcome", "")
    try:
        services.alert_mark(
            alert=alert, person=request.user, outcome=outcome, category=request.POST.get("category", "")
        )
    except services.ActionRefused as exc:
        flash.error(request, exc.message)
    else:
        if outcome == SafeguardingAlert.Outcome.FALSE_ALARM:
            flash.success(request, _("Marked as a false alarm. The same message will not alert the school again."))
        else:
            flash.success(request, _("Marked as a real concern. The classifier will recognise such messages better."))
    return redirect("safeguarding_alert", alert_id=alert.pk)


@school_admin_required
@require_GET
def school_examples(request: HttpRequest) -> HttpResponse:
    examples = list(selectors.examples_of_school(request.user.school_id))
    for example in examples:
        category = classifier.CLASSES.get(example.label, (classifier.OK, 0))[0]
        example.category_label = classifier.CATEGORY_LABELS[category]
    return render(
        request,
        "tutor/safeguarding/school_examples.html",
        {"examples": examples, "section": "safeguarding"},
    )


@school_admin_required
@require_POST
def school_example_delete(request: HttpRequest, example_id: int) -> HttpResponse:
    example = selectors.example_for_school_admin(request.user, example_id)
    try:
        services.safeguarding_example_delete(actor=request.user, example=example)
    except services.ActionRefused as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, _("Example removed. The classifier no longer uses it."))
    return redirect("school_safeguarding_examples")
