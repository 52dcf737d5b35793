"""Reading an uploaded file: what kind it is, whether it can be read, and its text, page by
page. Everything here is pure (no database), so the web process can refuse a bad file at
once and the worker can read a good one.

A PDF is read with pypdf (BSD): its text layer only. Images are never decoded, pages are
capped, and reading stops after TUTOR_MATERIAL_READ_SECONDS, so a "PDF bomb" (thousands of
pages, huge images) costs at most that. A PDF with pages but no text layer (a scan) is
said to be one and gives nothing to index.

A Word (.docx) or OpenDocument (.odt) file, what teachers write their chapters in, is read
from its one XML part with the standard library: its paragraphs, with its headings as
Markdown headings (so passages name their section). The part's unpacked size is capped
(a "zip bomb" is refused before it is unpacked) and a part that declares a DTD is refused
(no entity expansion).
"""

from __future__ import annotations

import io
import logging
import re
import time
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_noop

log = logging.getLogger(__name__)

PDF, TEXT, MARKDOWN, DOCX, ODT = "pdf", "text", "markdown", "docx", "odt"
TEXT_SUFFIXES = {".txt": TEXT, ".text": TEXT, ".md": MARKDOWN, ".markdown": MARKDOWN}
OFFICE_SUFFIXES = {".docx": DOCX, ".odt": ODT}
ACCEPTED = ".pdf, .docx, .odt, .txt, .md"
OFFICE_PART = {DOCX: "word/document.xml", ODT: "content.xml"}  # where the text is
MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # of that part: a chapter is well under 5 MB of XML

# Messages are stored in English (gettext_noop) and shown translated.
EMPTY = gettext_noop("This file is empty.")
TOO_BIG = gettext_noop("This file is too big (at most %(mb)s MB).")
UNKNOWN_KIND = gettext_noop(
    "Only PDF, Word (.docx), OpenDocument (.odt), plain text (.txt) and Markdown (.md) files can be added."
)
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
NOT_OFFICE = gettext_noop(
    "This file is named %(suffix)s but is not one: open it and save it again as %(suffix)s, or as PDF."
)
OLD_WORD = gettext_noop(
    "This is an old Word file (.doc) or one protected by a password. Save it as .docx or PDF without a password."
)
BROKEN_OFFICE = gettext_noop("This document is damaged and cannot be read. Open it and save it again, or as PDF.")
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
    if suffix in OFFICE_SUFFIXES:
        kind = OFFICE_SUFFIXES[suffix]
        if not office_text(data, kind, suffix=suffix).strip():
            raise Unreadable(EMPTY)
        return Checked(kind=kind, pages=1)
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


# Word and OpenDocument text.

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_HEADING_STYLE = re.compile(r"^(heading|titre|title)\s*(\d?)$", re.IGNORECASE)  # Word's and LibreOffice's, EN and FR


def office_text(data: bytes, kind: str, *, suffix: str = "") -> str:
    """The text of a .docx or .odt file as Markdown: one paragraph a block, headings as
    `#` lines. Raises Unreadable with what to do when it is not such a file or is damaged."""
    suffix = suffix or "." + kind
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE file: Word 97-2003, or an encrypted .docx
        raise Unreadable(OLD_WORD)
    if not data.startswith(b"PK\x03\x04"):
        raise Unreadable(NOT_OFFICE, suffix=suffix)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                part = archive.getinfo(OFFICE_PART[kind])
            except KeyError:
                raise Unreadable(NOT_OFFICE, suffix=suffix) from None
            if part.file_size > MAX_UNPACKED_BYTES:
                raise Unreadable(TOO_BIG, mb=settings.TUTOR_MATERIAL_MAX_BYTES // (1024 * 1024))
            with archive.open(part) as stream:
                xml = stream.read(MAX_UNPACKED_BYTES + 1)
    except Unreadable:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise Unreadable(BROKEN_OFFICE) from None
    if len(xml) > MAX_UNPACKED_BYTES:  # the size in the archive's directory lied
        raise Unreadable(TOO_BIG, mb=settings.TUTOR_MATERIAL_MAX_BYTES // (1024 * 1024))
    if b"<!DOCTYPE" in xml[:4096] or b"<!ENTITY" in xml:
        raise Unreadable(BROKEN_OFFICE)
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        raise Unreadable(BROKEN_OFFICE) from None
    blocks = _docx_blocks(root) if kind == DOCX else _odt_blocks(root)
    return "\n\n".join(f"{'#' * level} {text}" if level else text for level, text in blocks if text.strip())


def _docx_blocks(root: ElementTree.Element) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for each paragraph, tables' cells included."""
    for paragraph in root.iter(_W + "p"):
        level = 0
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        if style is not None:
            match = _HEADING_STYLE.match(style.get(_W + "val", ""))
            if match:
                level = min(int(match.group(2) or 1), 6)
        yield level, " ".join(_docx_text(paragraph).split())


def _docx_text(node: ElementTree.Element) -> str:
    """A paragraph's text, without the paragraphs nested in it (a text box's come on their own)."""
    parts = []
    for child in node:
        if child.tag == _W + "t":
            parts.append(child.text or "")
        elif child.tag in (_W + "tab", _W + "br", _W + "cr"):
            parts.append(" ")
        elif child.tag != _W + "p":
            parts.append(_docx_text(child))
    return "".join(parts)


def _odt_blocks(root: ElementTree.Element) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for each paragraph and heading, tables' cells included."""
    for node in root.iter():
        if node.tag == _TEXT + "h":
            level = node.get(_TEXT + "outline-level", "1")
            yield min(int(level) if level.isdigit() else 1, 6) or 1, " ".join(_odt_text(node).split())
        elif node.tag == _TEXT + "p":
            yield 0, " ".join(_odt_text(node).split())


def _odt_text(node: ElementTree.Element) -> str:
    parts = [node.text or ""]
    for child in node:
        if child.tag == _TEXT + "s":
            count = child.get(_TEXT + "c", "1")
            parts.append(" " * (int(count) if count.isdigit() else 1))
        elif child.tag in (_TEXT + "tab", _TEXT + "line-break"):
            parts.append(" ")
        elif child.tag not in (_TEXT + "note", _TEXT + "p"):  # footnotes and nested paragraphs come on their own
            parts.append(_odt_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
