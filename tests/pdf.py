"""Small real PDFs for tests of what carries them (pypdf writes them; never fake bytes)."""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter


def make_pdf(title: str = "Invoice", pages: int = 1) -> bytes:
    """A valid PDF of blank US-letter pages whose document title is `title`."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def read_pdf(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data))
