"""Invoice documents: one invoice as a PDF, and a print of many as one PDF behind a presigned link."""

from __future__ import annotations

import re
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from fieldbill.api import context
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Id, Strict
from fieldbill.domain.errors import ValidationError
from fieldbill.settings import get_settings
from fieldbill.workflows.documents import prints, views

router = APIGatewayHttpRouter()
TAGS = ["documents"]
PDF = "application/pdf"
# Declared here, not by the return annotation: the 200 is a PDF, which response validation would refuse.
PDF_RESPONSES = {
    **responses(),
    200: {
        "description": "The invoice as a PDF (base64 through API Gateway; clients get the bytes)",
        "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
    },
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class PrintIn(Strict):
    invoice_ids: Annotated[list[Id], Field(min_length=1, max_length=prints.MAX_INVOICES)] = Field(
        description=f"1 to {prints.MAX_INVOICES} invoices, printed in this order, each from a new page"
    )


@router.get("/invoices/<invoice_id>/pdf", summary="An invoice as a PDF", tags=TAGS, responses=PDF_RESPONSES)
# No return annotation: Powertools validates an annotated answer by serialising it as JSON, which a
# PDF's bytes are not (the 200 is declared in PDF_RESPONSES instead).
def get_invoice_pdf(invoice_id: str):
    from fieldbill.documents import invoice_pdf  # lazy: the layout library is seconds of cold start

    tenant = context.tenant_id(router)
    document = views.one(tenant, invoice_id)
    name = _UNSAFE.sub("-", document.number)[:64] or "invoice"
    return Response(
        status_code=200,
        content_type=PDF,
        body=invoice_pdf.render_invoice(document),  # bytes: Powertools answers base64 with isBase64Encoded
        headers={
            "Content-Disposition": f'inline; filename="invoice-{name}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/invoices/print",
    summary="Print many invoices as one PDF (answers a presigned link)",
    tags=TAGS,
    responses=responses(),
)
def print_invoices(body: PrintIn) -> out.PrintOut:
    tenant = context.tenant_id(router)
    if len(set(body.invoice_ids)) != len(body.invoice_ids):
        raise ValidationError("invoice_ids", "an invoice is selected twice")
    printed = prints.print_invoices(tenant, body.invoice_ids)
    return out.PrintOut(
        url=printed.url,
        expires_at=printed.expires_at.isoformat().replace("+00:00", "Z"),
        expires_in=get_settings().documents_link_seconds,
        invoice_count=printed.invoice_count,
        size_bytes=printed.size_bytes,
    )
