"""PDF files written by hand for the course material tests and bench/grounding.py: a
minimal PDF writer (text pages in Helvetica), a scan (pages that are only a picture), a
"bomb" (thousands of pages, each with a huge image), and an encrypted copy (pypdf)."""

from __future__ import annotations

import io
import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _write(objects: list[bytes]) -> bytes:
    """objects[0] is object 1 (the catalog). Returns the file with a correct xref."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_pdf(pages: list[str]) -> bytes:
    """One page per text; lines of the text on their own lines (Latin-1 characters)."""
    n = len(pages)
    # 1 catalog, 2 pages, 3 font, then per page: page, content.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        lines = []
        for paragraph in text.split("\n"):
            lines.append(f"({_escape(paragraph)}) Tj T*")
        content = ("BT /F1 10 Tf 12 TL 40 800 Td " + " ".join(lines) + " ET").encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(_stream(content))
    return _write(objects)


def image_pdf(pages: int, *, width: int = 200, height: int = 200) -> bytes:
    """Pages that are only a picture (a scan): no text layer. One image object shared by
    every page; its declared size may be huge (a bomb), its data stays tiny."""
    pixels = zlib.compress(b"\x80" * 1024)  # never decoded in full by a reader of text
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(pages)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        _stream(
            pixels,
            b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode " % (width, height),
        ),
        _stream(b"q 595 0 0 842 0 0 cm /Im1 Do Q"),
    ]
    for _i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 3 0 R >> >> "
            b"/Contents 4 0 R >>"
        )
        objects.append(b"null")  # keeps the numbering of text_pdf's layout simple
    return _write(objects)


def encrypted_pdf(password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(["Secret chapter."]))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
