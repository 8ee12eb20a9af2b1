"""Commands on one invoice: the store decides and writes, QuickBooks is told through the queue.

The local change is written first (one conditional write or transaction), then QuickBooks' part
is queued. If the queue refuses the message, the invoice says so: an edit's sync is marked failed
with the reason (POST /invoices/{id}/sync queues it again); a void answers 503 and a second void
of the now void invoice queues QuickBooks' void again (a retry is always safe).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fieldbill.domain import invoice_edits
from fieldbill.domain.errors import InvalidTransition, Unavailable, ValidationError
from fieldbill.domain.model import Destination, InvoiceStatus, SyncStatus
from fieldbill.observability import logger
from fieldbill.store import invoice_sync, invoices
from fieldbill.workflows.billing import destination
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import enqueue, sends

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice


def _message(kind: str, record: Invoice) -> QboSyncMessage:
    return QboSyncMessage(
        kind=kind,  # type: ignore[arg-type]
        tenant_id=record.tenant_id,
        entity_id=record.id,
        run_id=record.run_id,
        version=int(record.version),
    )


def edit(
    tenant_id: str,
    invoice_id: str,
    change: invoice_edits.InvoiceEdit,
    actor: str,
    expected_version: int | None = None,
) -> Invoice:
    # the rules new invoices are taxed by: an edited line is resolved as on a new invoice (issue 15)
    rules = destination.tax_rules(tenant_id) if change.lines else None
    record, to_quickbooks = invoices.edit(tenant_id, invoice_id, change, actor, expected_version, rules)
    if to_quickbooks:
        try:
            enqueue.send([_message("sync_invoice", record)])
        except Exception as exc:
            logger.exception("an edited invoice could not be queued for QuickBooks")
            error: dict[str, Any] = {"code": "not_queued", "message": str(exc)[:500]}
            invoice_sync.mark_error(record, error, "not queued for QuickBooks: POST /invoices/{id}/sync")
            record = invoices.get(tenant_id, invoice_id)
    return record


def delete(tenant_id: str, invoice_id: str, actor: str, reason: str | None) -> Invoice:
    return invoices.delete_draft(tenant_id, invoice_id, actor, reason)


def void(tenant_id: str, invoice_id: str, actor: str, reason: str | None) -> Invoice:
    try:
        record, in_quickbooks = invoices.void(tenant_id, invoice_id, actor, reason)
    except InvalidTransition:
        record = invoices.get(tenant_id, invoice_id)
        if record.status != InvoiceStatus.VOID:
            raise
        # Already void here: a retry after QuickBooks' part was not queued. Queue it again.
        in_quickbooks = bool(record.qbo_id) or record.sync_status in invoices.IN_FLIGHT
    if in_quickbooks:
        try:
            enqueue.send([_message("void_invoice", record)])
        except Exception as exc:
            logger.exception("QuickBooks' void could not be queued")
            raise Unavailable("voided here; QuickBooks' void could not be queued: void it again") from exc
    return record


def mark_sent(tenant_id: str, invoice_id: str, actor: str, via: str = "marked") -> Invoice:
    return invoices.mark_sent(tenant_id, invoice_id, actor, via)


def _in_quickbooks(record: Invoice) -> bool:
    """QuickBooks holds the invoice, or its sync is on the way (a payment then waits for it)."""
    if record.destination != "quickbooks":
        return False
    return bool(record.qbo_id) or record.sync_status in (SyncStatus.PENDING, SyncStatus.UNKNOWN)


def record_payment(
    tenant_id: str,
    invoice_id: str,
    *,
    payment_id: str,
    amount: Decimal,
    paid_on: str,
    method: str | None,
    reference: str | None,
    actor: str,
) -> Invoice:
    """Record the payment here; an invoice QuickBooks holds gets it there too (through the queue).
    If the queue refuses, 503: the same request again (same payment id) queues it again."""
    payment = {
        "id": payment_id,
        "amount": amount,
        "date": paid_on,
        "method": method,
        "reference": reference,
        "source": "fieldbill",
    }
    record = invoices.record_payment(tenant_id, invoice_id, payment, actor)
    stored = next(p for p in record.payments if p.id == payment_id)
    if _in_quickbooks(record) and not stored.qbo_id:
        message = QboSyncMessage(
            kind="sync_payment", tenant_id=tenant_id, entity_id=invoice_id, ref=payment_id
        )
        try:
            enqueue.send([message])
        except Exception as exc:
            logger.exception("a payment could not be queued for QuickBooks")
            raise Unavailable(
                "recorded here; not queued for QuickBooks: send it again with the same id"
            ) from exc
    return record


def remove_payment(
    tenant_id: str, invoice_id: str, payment_id: str, actor: str, reason: str | None
) -> Invoice:
    record, qbo_id = invoices.remove_payment(tenant_id, invoice_id, payment_id, actor, reason)
    if qbo_id:
        message = QboSyncMessage(kind="delete_payment", tenant_id=tenant_id, entity_id=invoice_id, ref=qbo_id)
        try:
            enqueue.send([message])
        except Exception as exc:
            logger.exception("a payment's deletion could not be queued for QuickBooks")
            raise Unavailable(
                f"removed here; QuickBooks Payment {qbo_id} is still there: delete it there"
            ) from exc
    return record


def sync(tenant_id: str, invoice_id: str, actor: str) -> str:
    """Queue a QuickBooks invoice for sync (again); its sync status. One already on its way (or
    there at this version) is left as it is: a retry is safe. A local invoice moves to QuickBooks
    Online first (the company must be connected)."""
    record = invoices.get(tenant_id, invoice_id)
    if record.destination == str(Destination.LOCAL):
        # A local invoice can go to QuickBooks later, once the company is connected.
        if not destination.uses_quickbooks(tenant_id):
            raise ValidationError(
                "destination",
                "this invoice is kept locally: connect QuickBooks (GET /quickbooks/connect) to send it there",
            )
        record = invoices.move_to_quickbooks(tenant_id, invoice_id, actor)
    if record.destination != str(Destination.QUICKBOOKS):
        raise ValidationError(
            "destination", f"a {record.destination} invoice does not sync to QuickBooks Online"
        )
    if record.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        raise InvalidTransition(
            "invoice_sync", record.sync_status, SyncStatus.PENDING, f"the invoice is {record.status}"
        )
    if record.sync_status in (SyncStatus.PENDING, SyncStatus.SYNCED, SyncStatus.UNKNOWN):
        return str(record.sync_status)
    enqueue.enqueue_invoices([record], actor)
    return str(SyncStatus.PENDING)


def send(tenant_id: str, invoice_id: str, actor: str, recipient: str | None = None) -> tuple[Invoice, Any]:
    """Email the invoice's current version with its PDF (once per version and recipient), then
    record it sent: a draft becomes open. A retry after the email went out sends nothing again
    and still records it sent."""
    # Lazy: the PDF layout library and the mail path cost seconds of cold start the other
    # commands never need.
    from fieldbill.documents import invoice_pdf
    from fieldbill.workflows.documents import send as mail
    from fieldbill.workflows.documents import views

    record = invoices.get(tenant_id, invoice_id)
    if sends.chosen(tenant_id, record):
        # The tenant has QuickBooks email its invoices (wt-credit): queued, QuickBooks sends it.
        record, queued = sends.send(tenant_id, invoice_id, actor, recipient)
        return record, mail.SendResult(
            message_id=queued["message_id"],
            ses_message_id=None,
            recipient=queued["recipient"],
            subject="",
            delivery_status=record.delivery_status or "not_sent",
            sent_now=True,
        )
    if record.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        raise InvalidTransition(
            "invoice", record.status, InvoiceStatus.OPEN, f"a {record.status} invoice is not sent"
        )
    pdf = invoice_pdf.render_invoice(views.one(tenant_id, invoice_id))
    result = mail.send_invoice(tenant_id, invoice_id, pdf, actor=actor, recipient=recipient)
    return invoices.mark_sent(tenant_id, invoice_id, actor, "email"), result
