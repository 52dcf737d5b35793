"""Reading an uploaded file: what kind it is, whether it can be read, and its text, page by
page. Everything here is pure (no database), so the web process can refuse a bad file at
once and the worker can read a good one.

A PDF is read with pypdf (BSD): its text layer only. Images are never decoded, pages are
capped, and reading stops after TUTOR_MATERIAL_READ_SECONDS, so a "PDF bomb" (thousands of
pages, huge images) costs at most that. A PDF with pages but no text layer (a scan) is
said to be one and gives nothing to index.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_noop

log = logging.getLogger(__name__)

PDF, TEXT, MARKDOWN = "pdf", "text", "markdown"
TEXT_SUFFIXES = {".txt": TEXT, ".text": TEXT, ".md": MARKDOWN, ".markdown": MARKDOWN}
ACCEPTED = ".pdf, .txt, .md"

# Messages are stored in English (gettext_noop) and shown translated.
EMPTY = gettext_noop("This file is empty.")
TOO_BIG = gettext_noop("This file is too big (at most %(mb)s MB).")
UNKNOWN_KIND = gettext_noop("Only PDF, plain text (.txt) and Markdown (.md) files can be added.")
NOT_TEXT = gettext_noop("This file is not text: it may be another kind of file renamed. Save it as PDF or .txt.")
NOT_A_PDF = gettext_noop("This file is named .pdf but is not a PDF. Open it and save it again as PDF.")
BROKEN_PDF = gettext_noop("This PDF is damaged and cannot be read. Save it again as PDF, or export it from its source.")
ENCRYPTED = gettext_noop("This PDF is protected by a password. Save a copy without the password, then add it.")
TOO_MANY_PAGES = gettext_noop("This PDF has %(pages)s pages; at most %(limit)s can be added. Split it into chapters.")
NO_PAGES = gettext_noop("This PDF has no pages.")
NO_TEXT_LAYER = gettext_noop(
    "No text found: this looks like a scan (pictures of pages). Nothing was indexed. "
    "Add a PDF with a text layer, or the text itself."
)
TOO_SLOW = gettext_noop("Reading this PDF took too long; it was stopped after %(pages)s pages. Split it into chapters.")


class Unreadable(Exception):
    """A file that cannot become course material, with the message the teacher reads
    (English, translated where shown) and its parameters."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Checked:
    kind: str
    pages: int


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return control > len(sample) // 50


def decode_text(data: bytes) -> str:
    """The text of a .txt or .md file: UTF-8 (with or without BOM), else Windows-1252."""
    if _looks_binary(data):
        raise Unreadable(NOT_TEXT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise Unreadable(NOT_TEXT) from None


def _open_pdf(data: bytes):
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty password (permissions only): those open.
            try:
                if not reader.decrypt(""):
                    raise Unreadable(ENCRYPTED)
            except (PyPdfError, NotImplementedError, ValueError):
                raise Unreadable(ENCRYPTED) from None
        pages = len(reader.pages)
    except Unreadable:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        raise Unreadable(BROKEN_PDF) from None
    return reader, pages


def check(filename: str, data: bytes) -> Checked:
    """Refuse at once what cannot become course material (Unreadable, with the message);
    else its kind and page count. Cheap: a PDF's pages are counted, not read."""
    if not data:
        raise Unreadable(EMPTY)
    limit = settings.TUTOR_MATERIAL_MAX_BYTES
    if len(data) > limit:
        raise Unreadable(TOO_BIG, mb=limit // (1024 * 1024))
    name = filename.lower()
    suffix = name[name.rfind(".") :] if "." in name else ""
    if data.startswith(b"%PDF-") or suffix == ".pdf":
        if not data.lstrip()[:5] == b"%PDF-":
            raise Unreadable(NOT_A_PDF)
        _reader, pages = _open_pdf(data)
        if pages == 0:
            raise Unreadable(NO_PAGES)
        if pages > settings.TUTOR_MATERIAL_MAX_PAGES:
            raise Unreadable(TOO_MANY_PAGES, pages=pages, limit=settings.TUTOR_MATERIAL_MAX_PAGES)
        return Checked(kind=PDF, pages=pages)
    if suffix not in TEXT_SUFFIXES:
        raise Unreadable(UNKNOWN_KIND)
    text = decode_text(data)
    if not text.strip():
        raise Unreadable(EMPTY)
    return Checked(kind=TEXT_SUFFIXES[suffix], pages=1)


def pdf_pages(data: bytes, *, on_page: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, str]]:
    """(page number from 1, text) for each page of a checked PDF, its text layer only.

    Stops with Unreadable(TOO_SLOW) once reading has taken TUTOR_MATERIAL_READ_SECONDS;
    raises Unreadable(NO_TEXT_LAYER) at the end when no page had any text."""
    reader, pages = _open_pdf(data)
    pages = min(pages, settings.TUTOR_MATERIAL_MAX_PAGES)
    deadline = time.monotonic() + settings.TUTOR_MATERIAL_READ_SECONDS
    any_text = False
    for number in range(1, pages + 1):
        if time.monotonic() > deadline:
            raise Unreadable(TOO_SLOW, pages=number - 1)
        try:
            # The text layer only: extract_text never decodes an image.
            text = reader.pages[number - 1].extract_text() or ""
        except Exception:  # one damaged page is skipped, not the whole document
            log.warning("page %s of a course document could not be read", number)
            text = ""
        text = text.replace("\x00", " ")
        if text.strip():
            any_text = True
        if on_page is not None:
            on_page(number, pages)
        yield number, text
    if not any_text:
        raise Unreadable(NO_TEXT_LAYER)
