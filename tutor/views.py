"""Pages and small JSON endpoints. Thin: who is asking, may they, one service call."""

from __future__ import annotations

import sys

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_GET, require_POST

from classrooms.selectors import (
    classroom_for_student,
    classroom_has_teacher,
    classrooms_of_student,
    classrooms_reviewed_by,
    classrooms_taught_by,
    may_receive_alerts,
)
from tutor import selectors, services, triage
from tutor.middleware import DATABASE_UNREACHABLE, database_unavailable
from tutor.models import Message


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if classrooms_reviewed_by(user).exists():
        return redirect("review_queue")
    if user.is_school_admin:
        return redirect("school_home")
    if may_receive_alerts(user):  # designated safeguarding staff who teach no class
        return redirect("safeguarding_alerts")
    return redirect("student_classes")


@login_required
@require_GET
def student_classes(request: HttpRequest) -> HttpResponse:
    classrooms = classrooms_of_student(request.user)
    return render(request, "tutor/student_classes.html", {"classrooms": classrooms})


@login_required
@require_GET
def classroom_page(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_for_student(request.user, classroom_id)
    conversations = selectors.conversations_of_student(request.user, classroom.id)
    closed = services.availability_refusal(classroom)  # paused, or outside the hours: when it opens
    return render(
        request,
        "tutor/classroom.html",
        {
            "classroom": classroom,
            "conversations": conversations,
            "closed": closed and closed.message,
            "no_teacher": not classroom_has_teacher(classroom),
        },
    )


@login_required
@require_POST
def conversation_new(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_for_student(request.user, classroom_id)
    conversation = services.conversation_start(student=request.user, classroom=classroom)
    return redirect("conversation", conversation_id=conversation.id)


@login_required
@require_GET
def conversation_page(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_for_student(request.user, conversation_id)
    history = selectors.messages_for_student(conversation)
    closed = services.availability_refusal(conversation.classroom)
    return render(
        request,
        "tutor/conversation.html",
        {
            "conversation": conversation,
            "history": history,
            "version": conversation.version,
            "decline_notice": selectors.decline_notice(),
            "max_chars": services.settings.TUTOR_MAX_MESSAGE_CHARS,
            "closed": closed and closed.message,  # paused, or outside the hours: when it opens
            "allowance": selectors.student_allowance(request.user, conversation.classroom),
            "no_teacher": not classroom_has_teacher(conversation.classroom),
        },
    )


@login_required
@require_GET
def conversation_messages(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """What the student may read in one conversation, after version `since`."""
    conversation = selectors.conversation_for_student(request.user, conversation_id)
    try:
        since = max(0, int(request.GET.get("since", 0)))
    except ValueError:
        return JsonResponse({"error": _("'since' must be a number.")}, status=400)
    return JsonResponse(
        {"messages": selectors.messages_for_student(conversation, since), "version": conversation.version}
    )


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    classrooms = classrooms_reviewed_by(request.user)
    if not classrooms.exists():
        return render(request, "tutor/not_a_reviewer.html", status=403)
    replies = [selectors.reviewer_view(r, viewer=request.user) for r in selectors.review_queue(request.user)]
    return render(
        request,
        "tutor/review_queue.html",
        {
            "replies": replies,
            "classrooms": classrooms,
            "queue_header": selectors.queue_header(classrooms),
            "drafting": selectors.drafting_status_for(classrooms.select_related("school")),
        },
    )


def _refusal(error: services.TutorError) -> JsonResponse:
    """A review action refused, for the queue's script: 409 when another reviewer got there
    first (decided it, or has it open: claimed_by says who), 400 for bad input."""
    conflict = isinstance(error, services.ReviewConflict)
    return JsonResponse(
        {"error": error.message, "code": error.code, "claimed_by": getattr(error, "claimed_by", "")},
        status=409 if conflict else 400,
    )


def _review_answer(request: HttpRequest, reply: Message, error: services.TutorError | None = None) -> HttpResponse:
    """JSON for the queue's script; a redirect with a message for a plain form."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    if error is not None:
        if wants_json:
            return _refusal(error)
        flash.error(request, error.message)
    elif not wants_json:
        flash.success(request, _("Done."))
    if wants_json:
        if reply.status in Message.DECIDED_STATUSES:
            # Decided: the card only has to go; spare the queue's busiest request the full view.
            payload = {
                "id": reply.id,
                "status": reply.status,
                "decision": reply.decision,
                "decided": True,
                # Who got it: the card's student and the group's questions it answered; and
                # how many still wait, handed on as a card of their own.
                "answered": len(getattr(reply, "answered", [reply.id])),
                "handed_on": len(getattr(reply, "handed_on", [])),
            }
        else:
            payload = selectors.reviewer_view(reply, viewer=request.user)
        return JsonResponse({"reply": payload})
    return redirect("review_queue")


MAX_CARD_MEMBERS = 500


def _card_members(request: HttpRequest) -> list[int]:
    """The reply ids of the group's other questions that the teacher's card displayed
    ("members": comma-separated). A decision answers those and no others."""
    raw = request.POST.get("members", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise services.InvalidMessage(_("This card's list of students is not valid. Reload the page.")) from None
    if len(ids) > MAX_CARD_MEMBERS:
        raise services.InvalidMessage(_("This card's list of students is not valid. Reload the page."))
    return ids


def _to_all(request: HttpRequest) -> bool:
    """The teacher chose to send their own words to every student the card displayed."""
    return request.POST.get("to_all", "") in ("1", "on", "true")


@login_required
@require_POST
def review_approve(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    try:
        reply = services.reply_approve(
            reply=reply,
            reviewer=request.user,
            text=request.POST.get("text"),
            members=_card_members(request),
            to_all=_to_all(request),
        )
    except services.TutorError as exc:
        return _review_answer(request, reply, exc)
    return _review_answer(request, reply)


@login_required
@require_POST
def review_reject(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    try:
        reply = services.reply_reject(
            reply=reply,
            reviewer=request.user,
            teacher_text=request.POST.get("text", ""),
            members=_card_members(request),
            to_all=_to_all(request),
        )
    except services.TutorError as exc:
        return _review_answer(request, reply, exc)
    return _review_answer(request, reply)


@login_required
@require_POST
def review_regenerate(request: HttpRequest, reply_id: int) -> HttpResponse:
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    try:
        reply = services.reply_regenerate(
            reply=reply, reviewer=request.user, instruction=request.POST.get("instruction", "")
        )
    except services.TutorError as exc:
        return _review_answer(request, reply, exc)
    return _review_answer(request, reply)


@login_required
@require_POST
def review_split(request: HttpRequest, reply_id: int) -> HttpResponse:
    """Take one question out of its group (or, on the group's lead, the questions its card
    displayed)."""
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    try:
        reply = services.reply_split(reply=reply, reviewer=request.user, members=_card_members(request))
    except services.TutorError as exc:
        return _review_answer(request, reply, exc)
    return _review_answer(request, reply)


@login_required
@require_POST
def review_claim(request: HttpRequest, reply_id: int) -> JsonResponse:
    """The reviewer has this draft open: hold it (or renew the hold) for a short lease.
    409 while another reviewer holds it. release=1 lets it go without deciding."""
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    try:
        if request.POST.get("release"):
            reply = services.reply_release(reply=reply, reviewer=request.user)
        else:
            reply = services.reply_claim(reply=reply, reviewer=request.user)
    except services.TutorError as exc:
        return _refusal(exc)
    return JsonResponse(
        {
            "reply": selectors.reviewer_view(reply, viewer=request.user),
            "claimed_until": reply.claimed_until.isoformat() if reply.claimed_until else None,
        }
    )


@login_required
@require_POST
def review_check(request: HttpRequest, reply_id: int) -> JsonResponse:
    """The flags and checks line of the teacher's edit of a draft, as they type: the same
    checks as the worker's, on their text. Changes nothing."""
    reply = selectors.reply_for_reviewer(request.user, reply_id)
    text = request.POST.get("text", "")
    if len(text) > services.settings.TUTOR_MAX_MESSAGE_CHARS * 2:
        return JsonResponse({"error": _("The reply is too long.")}, status=400)
    return JsonResponse({"reply": selectors.edited_draft_checks(reply, text)})


@login_required
@require_GET
def review_stats(request: HttpRequest) -> JsonResponse:
    """Per class: measured waits and review times (p50/p95), and the queue now. For the
    class's teachers and the school's admins."""
    classrooms = list(selectors.classrooms_with_stats_for(request.user))
    if not classrooms:
        return JsonResponse({"error": _("You do not teach or run any class.")}, status=403)
    queue = {row["classroom_id"]: row for row in selectors.queue_header(classrooms)}
    return JsonResponse({"classes": [selectors.review_stats(c) | queue[c.pk] for c in classrooms]})


# The teacher's view of the class: for its teachers and reviewers (classrooms_reviewed_by).


@login_required
@require_GET
def class_monitor(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Every conversation of the class, live (the review socket's "monitor" frames)."""
    classroom = selectors.classroom_for_reviewer(request.user, classroom_id)
    flag = request.GET.get("flag", "")
    flag = flag if flag == "any" or flag in selectors.MONITOR_FLAGS else ""
    rows = [r for r in selectors.class_monitor(classroom) if _has_flag(r, flag)]
    for r in rows:
        r["wait_text"] = duration_text(r["wait_s"])
    return render(
        request,
        "tutor/class_monitor.html",
        {
            "classroom": classroom,
            "rows": rows,
            "flag": flag,
            "flag_choices": [(f["code"], f["label"]) for f in triage.flag_views(list(selectors.MONITOR_FLAGS))],
        },
    )


def _has_flag(row: dict, flag: str) -> bool:
    """The monitor's filter: "" every row, "any" a row with a flag, else that flag."""
    if not flag:
        return True
    codes = [f["code"] for f in row["flags"]]
    return bool(codes) if flag == "any" else flag in codes


def duration_text(seconds: float | None) -> str:
    """45 s, 12 min, 2 h 05: the same in French and English (static/tutor/monitor.js too)."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"


@login_required
@require_GET
def class_conversation(request: HttpRequest, classroom_id: int, conversation_id: int) -> HttpResponse:
    """A conversation's full history, read-only, drafts and decisions included: staff only,
    and each opening is written to the school's audit log."""
    conversation = selectors.conversation_for_class_staff(request.user, classroom_id, conversation_id)
    services.conversation_history_open(actor=request.user, conversation=conversation)
    return render(
        request,
        "tutor/class_conversation.html",
        {
            "classroom": conversation.classroom,
            "conversation": conversation,
            "history": selectors.staff_history(conversation),
        },
    )


def _report_days(request: HttpRequest) -> tuple[int, str]:
    """The report's period from ?days=: 7 or 30; anything else is 7, with a word why."""
    raw = request.GET.get("days", "7")
    if raw in ("7", "30"):
        return int(raw), ""
    return 7, _("A report covers 7 or 30 days: here are the last 7.")


def bar_chart(values: list[float | None], labels: list[str], *, height: int = 120, bar: int = 18) -> dict:
    """A small bar chart's geometry, drawn as SVG by tutor/_bar_chart.html (no script)."""
    top = max([v for v in values if v] or [1])
    gap = 4
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = round((value or 0) / top * (height - 20))
        bars.append({"x": i * (bar + gap), "y": height - h, "w": bar, "h": h, "label": label, "value": value})
    return {"width": max(1, len(values) * (bar + gap)), "height": height, "bars": bars, "top": top}


REPORT_RATES = (
    "edit_rate", "reject_rate", "maths_error_rate", "wrong_language_rate", "distress_rate", "grouped_share"
)  # fmt: skip


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)} %"


@login_required
@require_GET
def class_report(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The class's last 7 or 30 days, for its teachers and reviewers: numbers only."""
    classroom = selectors.classroom_for_reviewer(request.user, classroom_id)
    days, notice = _report_days(request)
    report = selectors.class_report(classroom, days=days)
    labels = [d["day"].strftime("%d/%m") for d in report["per_day"]]
    return render(
        request,
        "tutor/class_report.html",
        {
            "classroom": classroom,
            "report": report,
            "notice": notice,
            "periods": selectors.REPORT_PERIODS,
            "questions_chart": bar_chart([d["questions"] for d in report["per_day"]], labels),
            "wait_chart": bar_chart([d["wait_p50_s"] for d in report["per_day"]], labels),
            "waits": {
                k: duration_text(report[k]) for k in ("wait_p50_s", "wait_p95_s", "review_p50_s", "review_p95_s")
            },
            "rates": {k: _percent(report[k]) for k in REPORT_RATES},
            "per_day": [
                d | {"wait_p50": duration_text(d["wait_p50_s"]), "review_p50": duration_text(d["review_p50_s"])}
                for d in report["per_day"]
            ],
        },
    )


REPORT_CSV_COLUMNS = (
    "day", "questions", "answered", "wait_p50_s", "wait_p95_s", "review_p50_s", "review_p95_s"
)  # fmt: skip
REPORT_CSV_TOTALS = (
    "questions", "answered", "reviews", "wait_p50_s", "wait_p95_s", "review_p50_s", "review_p95_s", "edit_rate",
    "reject_rate", "drafts", "maths_error_rate", "wrong_language_rate", "distress_rate", "grouped_share",
)  # fmt: skip


@login_required
@require_GET
def class_report_csv(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The report as CSV: a line per day, then the period's totals (numbers only)."""
    import csv

    classroom = selectors.classroom_for_reviewer(request.user, classroom_id)
    days, _notice = _report_days(request)
    report = selectors.class_report(classroom, days=days)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-report-{days}-days.csv"'
    writer = csv.writer(response)
    writer.writerow(REPORT_CSV_COLUMNS)
    for d in report["per_day"]:
        writer.writerow([d["day"].isoformat()] + ["" if d[k] is None else d[k] for k in REPORT_CSV_COLUMNS[1:]])
    writer.writerow([])
    writer.writerow(["total", f"{report['first_day'].isoformat()}/{report['last_day'].isoformat()}"])
    for key in REPORT_CSV_TOTALS:
        writer.writerow([key, "" if report[key] is None else report[key]])
    return response


@login_required
@require_GET
def class_topics(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Where students struggle: the period's questions grouped by topic. Who asked is shown
    to the class's teachers; its reviewers see the topics and the conversations."""
    classroom = selectors.classroom_for_reviewer(request.user, classroom_id)
    days, notice = _report_days(request)
    teaches = classrooms_taught_by(request.user).filter(pk=classroom.pk).exists()
    return render(
        request,
        "tutor/class_topics.html",
        {
            "classroom": classroom,
            "notice": notice,
            "periods": selectors.REPORT_PERIODS,
            "teaches": teaches,
            "result": selectors.class_topics(classroom, days=days, with_students=teaches),
        },
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, except while the database is unreachable: then 503, try again soon
    (errors that DatabaseUnavailableMiddleware does not see, such as a session saved
    after the view)."""
    if isinstance(sys.exc_info()[1], DATABASE_UNREACHABLE):
        return database_unavailable(request)
    return defaults.server_error(request)


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for by themselves: the site's icon. Its static URL is
    read per request, not at import, so `check --deploy` works before collectstatic."""
    return redirect(static("tutor/icon.svg"), permanent=True)
