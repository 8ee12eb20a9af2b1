"""An invoice as a printed document: records read through the store, made into the renderer's views."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from fieldbill.documents.model import DocumentLine, InvoiceDocument
from fieldbill.domain.errors import ValidationError
from fieldbill.store import billing as billing_store
from fieldbill.store import catalog, connections, invoices

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Contact, Invoice


ZERO = Decimal("0")


def tenant_name(tenant_id: str) -> str:
    """The company's name as QuickBooks has it; the tenant id until a company is connected."""
    connection = connections.get(tenant_id, consistent=False)
    return (connection.company_name if connection is not None else None) or tenant_id


def number_of(record: Invoice) -> str:
    # Our number when the lead's numbering sets one, else QuickBooks' DocNumber, else the id:
    # whatever is printed must find the invoice again.
    return record.number or record.qbo_doc_number or record.id


def document(record: Invoice, contact: Contact | None, company: str) -> InvoiceDocument:
    lines = [
        DocumentLine(
            description=line.description or line.product_name or str(line.line_kind).replace("_", " "),
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            taxable=bool(line.taxable),
        )
        for line in record.lines or []
    ]
    total = record.total
    balance = record.balance if record.balance is not None else total
    return InvoiceDocument(
        tenant_name=company,
        customer_name=contact.name if contact is not None else record.contact_id,
        billing_email=record.billing_email or (contact.email if contact is not None else None),
        number=number_of(record),
        issue_date=date.fromisoformat(record.issue_date),
        due_date=date.fromisoformat(record.due_date) if record.due_date else None,
        status=record.status,
        lines=lines,
        subtotal=record.subtotal,
        tax=max(total - record.subtotal, ZERO),
        total=total,
        amount_paid=max(total - balance, ZERO),
        balance=balance,
        currency=record.currency or "USD",
        balance_forward=record.balance_forward,
    )


def one(tenant_id: str, invoice_id: str) -> InvoiceDocument:
    """The document of one invoice; NotFound (404) if the tenant has no such invoice."""
    record = invoices.get(tenant_id, invoice_id)
    contacts = catalog.contacts_by_id(tenant_id, [record.contact_id])
    return document(record, contacts.get(record.contact_id), tenant_name(tenant_id))


def many(tenant_id: str, invoice_ids: Sequence[str]) -> list[tuple[Invoice, InvoiceDocument]]:
    """The documents of these invoices in the order asked; a missing one is a ValidationError
    naming invoice_ids (an id referenced in a body is 422, docs/api.md)."""
    records = billing_store.invoices_by_id(tenant_id, invoice_ids)
    missing = [i for i in invoice_ids if i not in records]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValidationError("invoice_ids", f"no such invoice: {shown}")
    contacts = catalog.contacts_by_id(tenant_id, {r.contact_id for r in records.values()})
    company = tenant_name(tenant_id)
    return [
        (records[i], document(records[i], contacts.get(records[i].contact_id), company)) for i in invoice_ids
    ]
