"""Word (.docx) and OpenDocument (.odt) files written by hand for the course material
tests, as Word and LibreOffice write them: the one XML part that holds the text, in a zip
with the parts a reader expects beside it. `blocks` are (heading level or 0, text)."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _zip(parts: dict[str, bytes], first: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if first:  # an ODT's "mimetype" comes first, stored
            archive.writestr(zipfile.ZipInfo(first), parts.pop(first), compress_type=zipfile.ZIP_STORED)
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx(blocks: list[tuple[int, str]], *, heading_style: str = "Heading{level}", body: str = "") -> bytes:
    """A .docx; a block's text may hold a tab ("\t"), written as Word writes one. `body`
    replaces the document's body XML (for damaged files)."""
    paragraphs = []
    for level, text in blocks:
        style = f'<w:pPr><w:pStyle w:val="{heading_style.format(level=level)}"/></w:pPr>' if level else ""
        runs = "<w:r><w:tab/></w:r>".join(
            f"<w:r><w:t xml:space='preserve'>{escape(t)}</w:t></w:r>" for t in text.split("\t")
        )
        paragraphs.append(f"<w:p>{style}{runs}</w:p>")
    xml = (
        body
        or f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}"><w:body>{"".join(paragraphs)}</w:body></w:document>'
    )
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
            "word/document.xml": xml.encode(),
        }
    )


def odt(blocks: list[tuple[int, str]]) -> bytes:
    """An .odt; two spaces in a block's text are written as LibreOffice writes them (<text:s/>)."""
    elements = []
    for level, text in blocks:
        inner = escape(text).replace("  ", ' <text:s text:c="1"/>')
        if level:
            elements.append(f'<text:h text:outline-level="{level}">{inner}</text:h>')
        else:
            elements.append(f'<text:p text:style-name="P1"><text:span>{inner}</text:span></text:p>')
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        f"<office:body><office:text>{''.join(elements)}</office:text></office:body></office:document-content>"
    )
    return _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": xml.encode()}, first="mimetype")


def zip_bomb(part: str, unpacked_bytes: int) -> bytes:
    """A zip whose one part unpacks to `unpacked_bytes` of spaces (a few kB packed)."""
    return _zip({part: b" " * unpacked_bytes})
