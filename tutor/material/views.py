"""The teacher's course material page: add, rename, replace, delete a class's documents,
and watch them being read. Thin: who is asking, may they (404 for "not yours"), one
service call."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tutor.material import reading, selectors, services


def _file(request: HttpRequest) -> tuple[str, bytes]:
    upload = request.FILES.get("file")
    if upload is None:
        raise services.MaterialRefused(_("Choose a file to add."))
    if upload.size > settings.TUTOR_MATERIAL_MAX_BYTES:  # refused before it is read into memory
        raise services.MaterialRefused(_(reading.TOO_BIG) % {"mb": settings.TUTOR_MATERIAL_MAX_BYTES // (1024 * 1024)})
    return upload.name, upload.read()


def _back(classroom_id: int) -> HttpResponse:
    return redirect("teach_material", classroom_id=classroom_id)


@login_required
@require_http_methods(["GET", "POST"])
def material_page(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The class's documents (GET); add one (POST, a file and an optional name)."""
    classroom = selectors.classroom_for_material(request.user, classroom_id)
    if request.method == "POST":
        try:
            filename, data = _file(request)
            document = services.document_add(
                actor=request.user, classroom=classroom, filename=filename, data=data, name=request.POST.get("name", "")
            )
        except services.MaterialRefused as exc:
            flash.error(request, exc.message)
        else:
            flash.success(request, _("“%(name)s” was added. It is being read.") % {"name": document.name})
        return _back(classroom.id)
    documents = selectors.documents_of(classroom).annotate(passage_count=Count("passages"))
    return render(
        request,
        "tutor/material/material.html",
        {
            "classroom": classroom,
            "documents": [selectors.document_view(d) for d in documents],
            "accepted": reading.ACCEPTED,
            "max_mb": settings.TUTOR_MATERIAL_MAX_BYTES // (1024 * 1024),
            "max_pages": settings.TUTOR_MATERIAL_MAX_PAGES,
            "max_documents": settings.TUTOR_MATERIAL_MAX_DOCUMENTS,
        },
    )


@login_required
@require_GET
def material_status(request: HttpRequest, classroom_id: int) -> JsonResponse:
    """The documents' indexing progress, for the page's script."""
    classroom = selectors.classroom_for_material(request.user, classroom_id)
    documents = selectors.documents_of(classroom).annotate(passage_count=Count("passages"))
    return JsonResponse({"documents": [selectors.document_view(d) for d in documents]})


@login_required
@require_POST
def material_rename(request: HttpRequest, classroom_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_for_teacher(request.user, classroom_id, document_id)
    try:
        services.document_rename(actor=request.user, document=document, name=request.POST.get("name", ""))
    except services.MaterialRefused as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, _("Renamed."))
    return _back(classroom_id)


@login_required
@require_POST
def material_replace(request: HttpRequest, classroom_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_for_teacher(request.user, classroom_id, document_id)
    try:
        filename, data = _file(request)
        services.document_replace(actor=request.user, document=document, filename=filename, data=data)
    except services.MaterialRefused as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, _("“%(name)s” was replaced. The new file is being read.") % {"name": document.name})
    return _back(classroom_id)


@login_required
@require_POST
def material_delete(request: HttpRequest, classroom_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_for_teacher(request.user, classroom_id, document_id)
    services.document_delete(actor=request.user, document=document)
    flash.success(request, _("“%(name)s” was deleted. The tutor no longer uses it.") % {"name": document.name})
    return _back(classroom_id)
