"""QuickBooks' own send of an invoice, when the tenant chose it (QuickBooks settings: send_via
"quickbooks"; the default is our own email with our PDF).

The route marks the invoice sent here and queues the send; the consumer asks QuickBooks to email
the invoice once QuickBooks holds its current version (an older version is never sent), with a
requestid of tenant, invoice, version and address, so a redelivery never emails twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldbill.domain import delivery
from fieldbill.domain.errors import InvalidTransition, Unavailable
from fieldbill.domain.model import InvoiceStatus, SyncStatus
from fieldbill.observability import logger
from fieldbill.quickbooks import ids  # pure: chosen/send run in the API and the jobs worker
from fieldbill.quickbooks.errors import Permanent, Transient
from fieldbill.store import invoice_sync, invoices, messages, qbo_send
from fieldbill.workflows.messages import QboSyncMessage

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice
    from fieldbill.workflows.qbo_sync.tenants import Tenant  # the consumer's half only

ACTOR = "qbo_sync"


def chosen(tenant_id: str, record: Invoice) -> bool:
    """The tenant has QuickBooks send its invoices, and this one goes to QuickBooks."""
    if record.destination != "quickbooks":
        return False
    from fieldbill.quickbooks import mapping, tokens  # only on the send path

    connection = tokens.get_connection(tenant_id)
    if connection is None or connection.status != "connected":
        return False
    settings = connection.settings.as_dict() if connection.settings else {}
    return mapping.QboSettings.from_map(settings).send_via == "quickbooks"


def send(
    tenant_id: str, invoice_id: str, actor: str, recipient: str | None
) -> tuple[Invoice, dict[str, Any]]:
    """Mark the invoice sent (via QuickBooks) and queue QuickBooks' send to the recipient (the
    billing email by default). 503 when the queue refuses: the same request again queues it."""
    record = invoices.get(tenant_id, invoice_id)
    if record.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        raise InvalidTransition(
            "invoice", record.status, InvoiceStatus.OPEN, f"a {record.status} invoice is not sent"
        )
    to = delivery.recipient(recipient, messages.invoice_for_mail(tenant_id, invoice_id).billing_email)
    record = invoices.mark_sent(tenant_id, invoice_id, actor, "quickbooks")
    version = int(record.version)
    qbo_send.queued(tenant_id, invoice_id, to, version, actor)
    from fieldbill.workflows.qbo_sync import enqueue  # the queue client only when sending

    message = QboSyncMessage(
        kind="send_invoice", tenant_id=tenant_id, entity_id=invoice_id, ref=to, version=version
    )
    try:
        enqueue.send([message])
    except Exception as exc:
        logger.exception("QuickBooks' send could not be queued")
        raise Unavailable("marked sent here; QuickBooks' send could not be queued: send it again") from exc
    return invoices.get(tenant_id, invoice_id), {
        "recipient": to,
        "message_id": f"quickbooks:{invoice_id}:{version}",
    }


def push_send(tenant: Tenant, invoice: Invoice | None, to: str, version: int | None) -> None:
    """Ask QuickBooks to email the invoice (the consumer's part)."""
    if invoice is None or invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        logger.info("invoice gone or void: QuickBooks' send dropped")
        return
    state = invoice.qbo_send.as_dict() if invoice.qbo_send else {}
    if state.get("status") == "sent" and state.get("to") == to and state.get("version") == version:
        return  # a redelivery after the send was recorded
    if invoice.sync_status == SyncStatus.ERROR:
        raise Permanent(
            "fieldbill.not_in_quickbooks",
            "the invoice's sync to QuickBooks failed: fix it, then send it again",
            str((invoice.sync_error.as_dict() if invoice.sync_error else {}).get("message") or ""),
        )
    synced = invoice.qbo_id and invoice.qbo_synced_version == int(invoice.version)
    if not synced or invoice.sync_status != SyncStatus.SYNCED:
        # QuickBooks must email the version we have: wait for its sync (a back-off, not an error).
        raise Transient("QuickBooks does not hold the invoice's current version yet; the send waits")
    current = int(invoice.version)
    result = tenant.client.send(
        "Invoice",
        str(invoice.qbo_id),
        to,
        ids.request_id("invoice-send", invoice.tenant_id, invoice.id, current, to),
    )
    at = str((result.get("DeliveryInfo") or {}).get("DeliveryTime") or "")
    # The send is an update in QuickBooks (SyncToken + 1): without the new token the next sparse
    # update of this invoice would be refused as stale.
    invoice_sync.keep_newer_sync_token(invoice.tenant_id, invoice.id, result.get("SyncToken"))
    qbo_send.sent(invoice.tenant_id, invoice.id, to, current, at, ACTOR)
    logger.info(
        "QuickBooks sent the invoice",
        extra={"qbo_id": invoice.qbo_id, "email_status": result.get("EmailStatus")},
    )


def record_permanent(tenant_id: str, invoice_id: str, to: str, version: int | None, error: Permanent) -> None:
    qbo_send.failed(tenant_id, invoice_id, to, int(version or 0), error.as_dict(), ACTOR)
