"""Invoice PDFs: one HTML/CSS template (templates/invoice.html) rendered by xhtml2pdf.

Pure with respect to the table: it takes typed views (documents/model.py) and returns PDF bytes;
the caller reads the records (docs/decisions/0006-invoice-pdf-renderer.md for the library).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from pypdf import PdfWriter
from xhtml2pdf import pisa

from fieldbill.documents.model import InvoiceDocument, money, quantity

TEMPLATES = Path(__file__).parent / "templates"
# xhtml2pdf keeps a whole document's layout in memory: a "print many" is rendered in chunks of
# this many invoices and the chunks joined page by page, so memory stays flat at any selection size.
CHUNK = 50


class RenderFailed(RuntimeError):
    """xhtml2pdf reported errors: the document would be incomplete, so none is returned."""


def _context(doc: InvoiceDocument) -> dict[str, Any]:
    logo = doc.logo
    return {
        "tenant_name": doc.tenant_name,
        "logo_data_uri": (
            f"data:{logo.media_type};base64,{base64.b64encode(logo.data).decode('ascii')}" if logo else None
        ),
        "customer_name": doc.customer_name,
        "billing_address": list(doc.billing_address),
        "billing_email": doc.billing_email,
        "number": doc.number,
        "issue_date": doc.issue_date.isoformat(),
        "due_date": doc.due_date.isoformat() if doc.due_date else None,
        "status": doc.status.replace("_", " "),
        "currency": doc.currency,
        "lines": [
            {
                "description": ln.description,
                "quantity": quantity(ln.quantity),
                "unit_price": money(ln.unit_price),
                "amount": money(ln.amount),
                "taxable": ln.taxable,
            }
            for ln in doc.lines
        ],
        "any_taxable": any(ln.taxable for ln in doc.lines),
        "subtotal": money(doc.subtotal),
        "tax": money(doc.tax),
        "total": money(doc.total),
        "amount_paid": money(doc.amount_paid),
        "balance": money(doc.balance),
        # issue 16: shown only when there is one; what the account owes in all is both together
        "balance_forward": money(doc.balance_forward) if doc.balance_forward else None,
        "account_due": money(doc.balance + doc.balance_forward) if doc.balance_forward else None,
    }


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # names and descriptions are user text
        undefined=jinja2.StrictUndefined,  # a renamed field fails the render, not prints blank
    )
    return environment.get_template("invoice.html")


def html(docs: Sequence[InvoiceDocument]) -> str:
    """The template filled in for these invoices (what xhtml2pdf lays out)."""
    return _template().render(invoices=[_context(d) for d in docs])


def _pdf(docs: Sequence[InvoiceDocument]) -> bytes:
    out = io.BytesIO()
    result = pisa.CreatePDF(src=html(docs), dest=out, encoding="utf-8")
    if result.err:
        raise RenderFailed(f"xhtml2pdf reported {result.err} error(s)")
    return out.getvalue()


def render_invoice(doc: InvoiceDocument) -> bytes:
    """One invoice as a PDF."""
    return _pdf([doc])


def render_many(docs: Sequence[InvoiceDocument]) -> bytes:
    """One PDF holding every invoice, in order, each starting on a new page."""
    if not docs:
        raise ValueError("render_many needs at least one invoice")
    if len(docs) <= CHUNK:
        return _pdf(docs)
    writer = PdfWriter()
    for start in range(0, len(docs), CHUNK):
        writer.append(io.BytesIO(_pdf(docs[start : start + CHUNK])))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# xhtml2pdf logs each CSS rule it does not know at WARNING; the template is ours and tested.
logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)
