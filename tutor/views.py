"""Pages and small JSON endpoints. Thin: who is asking, may they, one service call."""

from __future__ import annotations

import sys

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_GET, require_POST

from classrooms.selectors import (
    classroom_for_student,
    classroom_has_teacher,
    classrooms_of_student,
    classrooms_reviewed_by,
    may_receive_alerts,
)
from tutor import selectors, services
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


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, except while the database is unreachable: then 503, try again soon
    (errors that DatabaseUnavailableMiddleware does not see, such as a session saved
    after the view)."""
    if isinstance(sys.exc_info()[1], DATABASE_UNREACHABLE):
        return database_unavailable(request)
    return defaults.server_error(request)
