"""Pages for school admins, for teachers (their class's tutor and join code) and for
students joining a class. Thin: who is asking, may they (404 for "not yours"), check
the input, one service call, answer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classrooms import forms, roster, selectors, services, signals
from classrooms.models import DEFAULT_SUPPORTIVE_MESSAGES, Classroom, Membership, User


@require_POST
def language_choose(request: HttpRequest) -> HttpResponse:
    """Choose a language: kept on the account when signed in, in a cookie otherwise."""
    code = request.POST.get("language", "")
    if code not in dict(settings.LANGUAGES):
        code = settings.LANGUAGE_CODE
    if request.user.is_authenticated:
        request.user.language = code
        request.user.save(update_fields=["language"])
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    response = redirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=getattr(settings, "LANGUAGE_COOKIE_SECURE", False),
    )
    return response


def school_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (else the login page), and a school admin (else 403)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not selectors.is_school_admin(request.user):
            return render(request, "classrooms/not_for_you.html", {"for_whom": "school_admin"}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _refused(request: HttpRequest, error: services.ActionRefused) -> None:
    flash.error(request, error.message)


def _form_errors(request: HttpRequest, form: BaseForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash.error(request, error)


def _no_store(response: HttpResponse) -> HttpResponse:
    """Pages that show passwords are never kept by the browser or a proxy."""
    add_never_cache_headers(response)
    response.headers["Cache-Control"] = "no-store, private"
    return response


def _cards_page(
    request: HttpRequest, cards: list[services.LoginCard], *, title: str, note: str = "", back_url: str
) -> HttpResponse:
    sheets: dict[str, list[services.LoginCard]] = {}
    for card in cards:
        sheets.setdefault(card.classroom, []).append(card)
    return _no_store(
        render(
            request,
            "classrooms/login_cards.html",
            {
                "sheets": sorted(sheets.items()),
                "title": title,
                "note": note,
                "school": request.user.school,
                "login_url": request.build_absolute_uri(reverse("login")),
                "back_url": back_url,
            },
        )
    )


# School admin: the school and its classes


@school_admin_required
@require_GET
def school_home(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    classrooms = selectors.classrooms_of_school(school)
    return render(
        request,
        "classrooms/school_home.html",
        {
            "school": school,
            "classrooms": classrooms,
            "form": forms.ClassroomNameForm(),
            "chat_open": selectors.student_chat_is_open(school),
            "chat_blockers": selectors.student_chat_blockers(school),
        },
    )


@school_admin_required
@require_POST
def school_class_create(request: HttpRequest) -> HttpResponse:
    form = forms.ClassroomNameForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_home")
    try:
        classroom = services.classroom_create(
            actor=request.user, school=request.user.school, name=form.cleaned_data["name"]
        )
    except services.ActionRefused as exc:
        _refused(request, exc)
        return redirect("school_home")
    flash.success(request, _("Class “%(name)s” created.") % {"name": classroom.name})
    return redirect("school_class", classroom_id=classroom.id)


@school_admin_required
@require_GET
def school_class(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    staff = selectors.members_of(classroom, roles=selectors.STAFF_ROLES)
    students = selectors.members_of(classroom, roles=[Membership.Role.STUDENT])
    return render(
        request,
        "classrooms/school_class.html",
        {
            "classroom": classroom,
            "staff": staff,
            "students": students,
            "rename_form": forms.ClassroomNameForm(initial={"name": classroom.name}),
            "staff_form": forms.StaffAssignForm(classroom=classroom),
            "enrol_form": forms.StudentEnrolForm(classroom=classroom),
            "move_form": forms.StudentMoveForm(classroom=classroom),
            "has_teacher": selectors.classroom_has_teacher(classroom),
        },
    )


def _class_action(
    request: HttpRequest, classroom_id: int, action: Callable[[Classroom], object], success: str
) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    try:
        action(classroom)
    except services.ActionRefused as exc:
        _refused(request, exc)
    else:
        flash.success(request, success)
    return redirect("school_class", classroom_id=classroom.id)


@school_admin_required
@require_POST
def school_class_rename(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    form = forms.ClassroomNameForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_class", classroom_id=classroom.id)
    return _class_action(
        request,
        classroom.id,
        lambda c: services.classroom_rename(actor=request.user, classroom=c, name=form.cleaned_data["name"]),
        _("Class renamed."),
    )


@school_admin_required
@require_POST
def school_class_archive(request: HttpRequest, classroom_id: int) -> HttpResponse:
    return _class_action(
        request,
        classroom_id,
        lambda c: services.classroom_archive(actor=request.user, classroom=c),
        _("Class archived. Its teachers and students no longer reach it."),
    )


@school_admin_required
@require_POST
def school_class_restore(request: HttpRequest, classroom_id: int) -> HttpResponse:
    return _class_action(
        request,
        classroom_id,
        lambda c: services.classroom_restore(actor=request.user, classroom=c),
        _("Class restored."),
    )


@school_admin_required
@require_POST
def school_class_staff_assign(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    form = forms.StaffAssignForm(request.POST, classroom=classroom)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_class", classroom_id=classroom.id)
    return _class_action(
        request,
        classroom.id,
        lambda c: services.staff_assign(
            actor=request.user, classroom=c, person=form.cleaned_data["person"], role=form.cleaned_data["role"]
        ),
        _("%(person)s now teaches this class.") % {"person": form.cleaned_data["person"]},
    )


@school_admin_required
@require_POST
def school_class_student_enrol(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    form = forms.StudentEnrolForm(request.POST, classroom=classroom)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_class", classroom_id=classroom.id)
    return _class_action(
        request,
        classroom.id,
        lambda c: services.student_enrol(actor=request.user, classroom=c, person=form.cleaned_data["person"]),
        _("%(person)s enrolled.") % {"person": form.cleaned_data["person"]},
    )


@school_admin_required
@require_POST
def school_class_member_remove(request: HttpRequest, classroom_id: int, user_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    person = selectors.person_for_school_admin(request.user, user_id)
    return _class_action(
        request,
        classroom.id,
        lambda c: services.member_remove(actor=request.user, classroom=c, person=person),
        _("%(person)s removed from the class.") % {"person": person},
    )


@school_admin_required
@require_POST
def school_class_student_move(request: HttpRequest, classroom_id: int, user_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    person = selectors.person_for_school_admin(request.user, user_id)
    form = forms.StudentMoveForm(request.POST, classroom=classroom)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_class", classroom_id=classroom.id)
    to_classroom = form.cleaned_data["to_classroom"]
    return _class_action(
        request,
        classroom.id,
        lambda c: services.student_move(actor=request.user, person=person, from_classroom=c, to_classroom=to_classroom),
        _("%(person)s moved to %(classroom)s.") % {"person": person, "classroom": to_classroom.name},
    )


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_class_accounts(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Accounts for students without e-mail, and their login cards (shown once)."""
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    form = forms.BulkAccountsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cards = services.students_create(actor=request.user, classroom=classroom, names=form.cleaned_data["names"])
        except services.ActionRefused as exc:
            form.add_error(None, exc.message)
        else:
            return _cards_page(
                request,
                cards,
                title=_("Login cards: %(classroom)s") % {"classroom": classroom.name},
                note=ngettext(
                    "%(n)d account created. Print this page now: the password is not shown again.",
                    "%(n)d accounts created. Print this page now: the passwords are not shown again.",
                    len(cards),
                )
                % {"n": len(cards)},
                back_url=reverse("school_class", args=[classroom.id]),
            )
    return render(request, "classrooms/school_accounts.html", {"classroom": classroom, "form": form})


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_class_passwords(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """New passwords for the whole class, after a confirmation page; the sheet of cards follows."""
    classroom = selectors.classroom_for_school_admin(request.user, classroom_id)
    return _class_passwords(request, classroom, back="school_class", confirm="classrooms/school_passwords_confirm.html")


# School admin: people


@school_admin_required
@require_GET
def school_people(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:100]
    people = selectors.people_of_school(request.user.school, search=search).prefetch_related("memberships__classroom")
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    return render(request, "classrooms/school_people.html", {"page": page, "search": search})


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_staff_new(request: HttpRequest) -> HttpResponse:
    form = forms.StaffAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card = services.staff_account_create(actor=request.user, school=request.user.school, **form.cleaned_data)
        except services.ActionRefused as exc:
            form.add_error(None, exc.message)
        else:
            return _cards_page(
                request,
                [card],
                title=_("New staff account"),
                note=_("Give these to the person; they are not shown again. Then assign them to their classes."),
                back_url=reverse("school_people"),
            )
    return render(request, "classrooms/school_staff_new.html", {"form": form})


@school_admin_required
@require_GET
def school_person(request: HttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for_school_admin(request.user, user_id)
    return render(
        request,
        "classrooms/school_person.html",
        {
            "person": person,
            "memberships": selectors.memberships_of(person),
            "is_staff_member": selectors.is_staff_member(person),
            "is_self": person.id == request.user.id,
        },
    )


def _person_action(request: HttpRequest, user_id: int, action: Callable[[User], object], success: str) -> HttpResponse:
    person = selectors.person_for_school_admin(request.user, user_id)
    try:
        action(person)
    except services.ActionRefused as exc:
        _refused(request, exc)
    else:
        flash.success(request, success)
    return redirect("school_person", user_id=person.id)


@school_admin_required
@require_POST
def school_person_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _person_action(
        request,
        user_id,
        lambda p: services.person_deactivate(actor=request.user, person=p),
        _("Account deactivated: they can no longer sign in."),
    )


@school_admin_required
@require_POST
def school_person_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _person_action(
        request,
        user_id,
        lambda p: services.person_reactivate(actor=request.user, person=p),
        _("Account reactivated."),
    )


@school_admin_required
@require_POST
def school_person_password(request: HttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for_school_admin(request.user, user_id)
    try:
        card = services.password_reset(actor=request.user, person=person)
    except services.ActionRefused as exc:
        _refused(request, exc)
        return redirect("school_person", user_id=person.id)
    return _cards_page(
        request,
        [card],
        title=_("New password"),
        note=_("Give this to the person; it is not shown again."),
        back_url=reverse("school_person", args=[person.id]),
    )


@school_admin_required
@require_GET
def school_person_export(request: HttpRequest, user_id: int) -> HttpResponse:
    """The student's data as a JSON download (GDPR access request)."""
    person = selectors.person_for_school_admin(request.user, user_id)
    try:
        data = services.student_export(actor=request.user, student=person)
    except services.ActionRefused as exc:
        _refused(request, exc)
        return redirect("school_person", user_id=person.id)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="student-{person.id}-data.json"'
    return _no_store(response)


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_person_delete(request: HttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for_school_admin(request.user, user_id)
    form = forms.DeleteStudentForm(request.POST or None, student=person)
    if request.method == "POST" and form.is_valid():
        try:
            services.student_delete(actor=request.user, student=person)
        except services.ActionRefused as exc:
            _refused(request, exc)
            return redirect("school_person", user_id=person.id)
        flash.success(request, _("The student and everything they wrote are deleted."))
        return redirect("school_people")
    counts: dict[str, int] = {}  # what the apps above keep of them (classrooms.signals)
    for _receiver, counted in signals.student_data_counted.send(sender=User, student=person):
        counts.update(counted or {})
    return render(
        request,
        "classrooms/school_person_delete.html",
        {
            "person": person,
            "form": form,
            "counts": counts,
            "memberships": selectors.memberships_of(person),
            "is_staff_member": selectors.is_staff_member(person),
        },
    )


# School admin: roster import, audit log, settings


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_roster(request: HttpRequest) -> HttpResponse:
    """Upload a roster and see, row by row, what importing it would do. Nothing is written."""
    school = request.user.school
    form = forms.RosterUploadForm(request.POST or None, request.FILES or None)
    context = {
        "form": form,
        "max_rows": roster.ROSTER_MAX_ROWS,
        "max_kb": roster.ROSTER_MAX_BYTES // 1024,
        "columns": roster.REQUIRED_COLUMNS + roster.OPTIONAL_COLUMNS,
    }
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"]
        preview = roster.roster_read(school=school, data=data)
        context.update(preview=preview, roster_text=data.decode("utf-8-sig") if preview.ok else "")
        return render(request, "classrooms/school_roster_preview.html", context)
    return render(request, "classrooms/school_roster.html", context)


@school_admin_required
@require_POST
def school_roster_confirm(request: HttpRequest) -> HttpResponse:
    """Apply the previewed roster: all rows, or none if one fails."""
    school = request.user.school
    form = forms.RosterConfirmForm(request.POST)
    if not form.is_valid():
        flash.error(request, _("The roster did not come back with the confirmation. Upload it again."))
        return redirect("school_roster")
    try:
        counts, cards = services.roster_import(actor=request.user, school=school, data=form.cleaned_data["roster"])
    except services.RosterRefused as exc:
        flash.error(request, exc.message)
        return render(
            request,
            "classrooms/school_roster_preview.html",
            {
                "preview": exc.preview,
                "roster_text": "",
                "form": forms.RosterUploadForm(),
                "max_rows": roster.ROSTER_MAX_ROWS,
                "max_kb": roster.ROSTER_MAX_BYTES // 1024,
            },
        )
    except services.ActionRefused as exc:
        _refused(request, exc)
        return redirect("school_roster")
    summary = (
        _("Roster imported: %(created)d new students, %(updated)d updated, %(enrolled)d class places added.") % counts
    )
    if not any(counts.values()):
        summary = _("Nothing to change: everyone in the file is already up to date.")
    if not cards:
        flash.success(request, summary)
        return redirect("school_home")
    return _cards_page(
        request,
        cards,
        title=_("Login cards for the new students"),
        note=summary + " " + _("Print this page now: the passwords are not shown again."),
        back_url=reverse("school_home"),
    )


@school_admin_required
@require_GET
def school_roster_export(request: HttpRequest) -> HttpResponse:
    """The school's students and classes as CSV, in the import's format; no cell can run as a formula."""
    school = request.user.school
    services.student_numbers_fill(school=school)  # every row must name its student to re-import
    memberships = (
        Membership.objects.filter(
            classroom__school=school, classroom__archived=False, role=Membership.Role.STUDENT, user__school=school
        )
        .select_related("user", "classroom")
        .order_by("classroom__name", "user__last_name", "user__first_name")
    )
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheets then read the file as UTF-8
    writer = csv.writer(out)
    writer.writerow(["student_number", "first_name", "last_name", "email", "class"])
    cell = roster.neutralise_cell
    for m in memberships:
        writer.writerow(
            [
                cell(m.user.student_number),
                cell(m.user.first_name),
                cell(m.user.last_name),
                cell(m.user.email),
                cell(m.classroom.name),
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="roster-{timezone.localdate():%Y-%m-%d}.csv"'
    return _no_store(response)


@school_admin_required
@require_GET
def school_audit(request: HttpRequest) -> HttpResponse:
    entries = selectors.audit_entries_of_school(request.user.school)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    page.object_list = selectors.audit_lines(page.object_list)
    return render(request, "classrooms/school_audit.html", {"page": page})


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_settings(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    form = forms.SchoolSettingsForm(request.POST or None, initial={"retention_days": school.retention_days})
    several_models = len(selectors.declared_models()) > 1
    models_form = forms.SchoolModelsForm(request.POST or None, school=school) if several_models else None
    limits_form = forms.SchoolLimitsForm(request.POST or None, school=school)
    valid = form.is_valid() and limits_form.is_valid() and (models_form is None or models_form.is_valid())
    if request.method == "POST" and valid:
        try:
            services.school_retention_set(
                actor=request.user, school=school, retention_days=form.cleaned_data["retention_days"]
            )
            services.school_limits_set(actor=request.user, school=school, **limits_form.cleaned_data)
            if models_form is not None:
                services.school_models_set(
                    actor=request.user,
                    school=school,
                    default_model=models_form.cleaned_data["default_model"],
                    allowed_models=models_form.cleaned_data["allowed_models"],
                )
        except services.ActionRefused as exc:
            form.add_error(None, exc.message)
        else:
            flash.success(request, _("Settings saved."))
            return redirect("school_settings")
    return render(
        request,
        "classrooms/school_settings.html",
        {
            "form": form,
            "models_form": models_form,
            "limits_form": limits_form,
            "school": school,
            "only_model": selectors.model_label(selectors.school_default_model(school)),
        },
    )


# School admin: safeguarding (designated staff, supportive messages, alert delay, and
# opening the tutor to students)


@school_admin_required
@require_GET
def school_safeguarding(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    approved = selectors.supportive_messages_of(school)
    messages = [
        {
            "language": code,
            "name": name,
            "approved": approved[code],
            "text": approved[code].text if approved[code] else DEFAULT_SUPPORTIVE_MESSAGES.get(code, ""),
        }
        for code, name in settings.LANGUAGES
    ]
    return render(
        request,
        "classrooms/school_safeguarding.html",
        {
            "school": school,
            "contacts": selectors.safeguarding_contacts(school),
            "contact_form": forms.SafeguardingContactForm(school=school),
            "messages_to_approve": messages,
            "blockers": selectors.student_chat_blockers(school),
            "chat_open": selectors.student_chat_is_open(school),
            "section": "safeguarding",
        },
    )


def _safeguarding_action(request: HttpRequest, action: Callable[[], object], success: str) -> HttpResponse:
    try:
        action()
    except services.ActionRefused as exc:
        _refused(request, exc)
    else:
        flash.success(request, success)
        school = request.user.school
        if school.student_chat_open and not selectors.student_chat_is_open(school):
            flash.warning(request, " ".join([_("Students cannot chat now."), *selectors.student_chat_blockers(school)]))
    return redirect("school_safeguarding")


@school_admin_required
@require_POST
def school_safeguarding_contact_add(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    form = forms.SafeguardingContactForm(request.POST, school=school)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_safeguarding")
    person = form.cleaned_data["person"]
    return _safeguarding_action(
        request,
        lambda: services.safeguarding_contact_add(
            actor=request.user, school=school, person=person, title=form.cleaned_data["title"]
        ),
        _("%(person)s will be alerted of urgent messages.") % {"person": person},
    )


@school_admin_required
@require_POST
def school_safeguarding_contact_remove(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.safeguarding_contact_for_school_admin(request.user, contact_id)
    return _safeguarding_action(
        request,
        lambda: services.safeguarding_contact_remove(actor=request.user, contact=contact),
        _("%(person)s will no longer be alerted.") % {"person": contact.person},
    )


@school_admin_required
@require_POST
def school_safeguarding_contact_move(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.safeguarding_contact_for_school_admin(request.user, contact_id)
    return _safeguarding_action(
        request,
        lambda: services.safeguarding_contact_move(
            actor=request.user, contact=contact, up=request.POST.get("direction") != "down"
        ),
        _("Order saved."),
    )


@school_admin_required
@require_POST
def school_safeguarding_message(request: HttpRequest) -> HttpResponse:
    form = forms.SupportiveMessageForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_safeguarding")
    return _safeguarding_action(
        request,
        lambda: services.supportive_message_approve(
            actor=request.user,
            school=request.user.school,
            language=form.cleaned_data["language"],
            text=form.cleaned_data["text"],
        ),
        _("Supportive message approved. Students get exactly this text."),
    )


@school_admin_required
@require_POST
def school_safeguarding_delay(request: HttpRequest) -> HttpResponse:
    form = forms.AlertDelayForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("school_safeguarding")
    return _safeguarding_action(
        request,
        lambda: services.alert_delay_set(
            actor=request.user, school=request.user.school, minutes=form.cleaned_data["minutes"]
        ),
        _("Saved."),
    )


@school_admin_required
@require_POST
def school_safeguarding_chat(request: HttpRequest) -> HttpResponse:
    opening = request.POST.get("open") == "1"
    return _safeguarding_action(
        request,
        lambda: services.student_chat_set_open(actor=request.user, school=request.user.school, open=opening),
        _("The tutor is open to students.") if opening else _("The tutor is closed to students."),
    )


# Teachers: their class's tutor and join code


@login_required
@require_GET
def teach_home(request: HttpRequest) -> HttpResponse:
    classrooms = selectors.classrooms_taught_by(request.user) if request.user.is_active else None
    if not classrooms:
        return render(request, "classrooms/not_for_you.html", {"for_whom": "teacher"}, status=403)
    return render(request, "classrooms/teach_home.html", {"classrooms": classrooms})


@login_required
@require_http_methods(["GET", "POST"])
def teach_class(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The class's tutor settings, its quotas and hours, its join code, its students."""
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    form = forms.TutorSettingsForm(request.POST or None, instance=classroom)
    if request.method == "POST" and form.is_valid():
        classroom.refresh_from_db()  # the form wrote onto the instance; the service decides what changed
        try:
            if "model_key" in form.cleaned_data:
                services.classroom_model_choose(
                    actor=request.user, classroom=classroom, model_key=form.cleaned_data["model_key"]
                )
            services.tutor_settings_update(actor=request.user, classroom=classroom, **form.setting_values())
        except services.ActionRefused as exc:
            form.add_error("model_key" if "model_key" in form.fields else None, exc.message)
        else:
            flash.success(request, _("Saved. The tutor uses these settings from its next draft."))
            return redirect("teach_class", classroom_id=classroom.id)
    if request.method == "POST":
        classroom.refresh_from_db()
    return _teach_class_page(request, classroom, form=form)


def _teach_class_page(
    request: HttpRequest,
    classroom: Classroom,
    *,
    form: forms.TutorSettingsForm | None = None,
    limits_form: forms.ClassLimitsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    availability = selectors.classroom_availability(classroom)
    return render(
        request,
        "classrooms/teach_class.html",
        {
            "classroom": classroom,
            "form": form or forms.TutorSettingsForm(instance=classroom),
            "limits_form": limits_form or forms.ClassLimitsForm(classroom=classroom),
            "availability": availability,
            "opens_at": availability.opens_at
            and date_format(
                timezone.localtime(availability.opens_at, selectors.school_zone(classroom.school)), "l j F, H:i"
            ),
            "zone": selectors.school_zone(classroom.school),
            "students": selectors.students_of(classroom),
            "code_expired": bool(classroom.join_code_expires_at and classroom.join_code_expires_at <= timezone.now()),
            "join_url": request.build_absolute_uri(reverse("join_class")),
            "model": selectors.model_label(selectors.classroom_model(classroom)),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def teach_class_passwords(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """A teacher's own class (or its school admin): new passwords for its students after a
    confirmation page, then the sheet of login cards, as the login page promises."""
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    return _class_passwords(request, classroom, back="teach_class", confirm="classrooms/teach_passwords_confirm.html")


def _class_passwords(request: HttpRequest, classroom: Classroom, *, back: str, confirm: str) -> HttpResponse:
    """The confirmation page (GET), or new passwords for the class's students and their cards
    (POST); `back` names the page to return to."""
    if request.method == "POST":
        try:
            cards = services.class_passwords_reset(actor=request.user, classroom=classroom)
        except services.ActionRefused as exc:
            _refused(request, exc)
            return redirect(back, classroom_id=classroom.id)
        return _cards_page(
            request,
            cards,
            title=_("Login cards: %(classroom)s") % {"classroom": classroom.name},
            note=ngettext(
                "A new password for %(n)d student. Print this page now: the password is not shown again.",
                "New passwords for %(n)d students. Print this page now: the passwords are not shown again.",
                len(cards),
            )
            % {"n": len(cards)},
            back_url=reverse(back, args=[classroom.id]),
        )
    count = selectors.students_of(classroom).count()
    return render(request, confirm, {"classroom": classroom, "count": count})


@login_required
@require_POST
def teach_class_limits(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The class's quotas per student and its opening hours."""
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    limits_form = forms.ClassLimitsForm(request.POST, classroom=classroom)
    if limits_form.is_valid():
        try:
            services.classroom_limits_set(actor=request.user, classroom=classroom, **limits_form.cleaned_data)
        except services.ActionRefused as exc:
            limits_form.add_error(None, exc.message)
        else:
            flash.success(request, _("Saved. Students' quotas and the opening hours apply from now."))
            return redirect("teach_class", classroom_id=classroom.id)
    return _teach_class_page(request, classroom, limits_form=limits_form, status=400)


@login_required
@require_POST
def teach_class_pause(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Pause the tutor now (an exam), or open it again."""
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    paused = request.POST.get("paused") == "on"
    services.classroom_pause_set(actor=request.user, classroom=classroom, paused=paused)
    if paused:
        flash.success(request, _("The tutor is paused: students cannot ask. You can still review what they asked."))
    else:
        flash.success(request, _("The tutor is open again."))
    return redirect("teach_class", classroom_id=classroom.id)


@login_required
@require_POST
def teach_join_code_rotate(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    services.join_code_rotate(actor=request.user, classroom=classroom)
    flash.success(request, _("New join code: %(code)s. The old code no longer works.") % {"code": classroom.join_code})
    return redirect("teach_class", classroom_id=classroom.id)


@login_required
@require_POST
def teach_join_code_switch(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = selectors.classroom_for_teacher(request.user, classroom_id)
    enabled = request.POST.get("enabled") == "on"
    services.join_code_set_enabled(actor=request.user, classroom=classroom, enabled=enabled)
    flash.success(request, _("Join code turned on.") if enabled else _("Join code turned off."))
    return redirect("teach_class", classroom_id=classroom.id)


# Students: joining a class, signing up


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


@login_required
@require_http_methods(["GET", "POST"])
def join_class(request: HttpRequest) -> HttpResponse:
    form = forms.JoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            classroom = services.class_join(
                person=request.user, code=form.cleaned_data["code"], throttle_key=f"user.{request.user.id}"
            )
        except services.ActionRefused as exc:
            form.add_error("code", exc.message)
        else:
            flash.success(request, _("Welcome to %(classroom)s!") % {"classroom": classroom.name})
            return redirect("classroom", classroom_id=classroom.id)
    return render(request, "classrooms/join.html", {"form": form})


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    """A student creates their own account with a join code; the code sets school and class."""
    if request.user.is_authenticated:
        return redirect("join_class")
    form = forms.SignUpForm(request.POST or None, initial={"code": request.GET.get("code", "")[:20]})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            person, classroom = services.student_sign_up(
                code=data["code"],
                username=data["username"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                password=data["password1"],
                throttle_key=f"ip.{_client_address(request)}",
            )
        except services.ActionRefused as exc:
            form.add_error("code" if isinstance(exc, services.JoinRefused) else None, exc.message)
        else:
            login(request, person, backend="django.contrib.auth.backends.ModelBackend")
            flash.success(request, _("Welcome to %(classroom)s!") % {"classroom": classroom.name})
            return redirect("classroom", classroom_id=classroom.id)
    return render(request, "classrooms/sign_up.html", {"form": form})
