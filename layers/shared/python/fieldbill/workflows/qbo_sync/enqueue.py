"""Queue QuickBooks work. Every call to QuickBooks starts here: the consumer is the only caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fieldbill.settings import get_settings
from fieldbill.store import invoice_sync
from fieldbill.workflows import queues
from fieldbill.workflows.billing.destination import uses_quickbooks
from fieldbill.workflows.messages import QboSyncMessage

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice


def send(messages: Sequence[QboSyncMessage]) -> None:
    queues.send(get_settings().qbo_sync_queue_url, messages)


def push(tenant_id: str, kind: str, entity_id: str) -> bool:
    """Our edit of a customer or product goes to QuickBooks at once (through the throttled queue),
    when the tenant uses QuickBooks. The consumer creates the record there or sends a sparse update."""
    if not uses_quickbooks(tenant_id):
        return False
    send([QboSyncMessage(kind=kind, tenant_id=tenant_id, entity_id=entity_id)])  # type: ignore[arg-type]
    return True


def enqueue_not_synced(tenant_id: str, run_id: str, actor: str, limit: int = 500) -> tuple[int, bool]:
    """Queue one page of the QuickBooks invoices a billing run or a generate operation created and
    nobody queued yet; True as second value when more may wait. Queued ones leave the page (their
    gsi2sk moves to pending#), so a retry after a crash picks up exactly what is left."""
    invoices, more = invoice_sync.unqueued(tenant_id, run_id, limit)
    queued = enqueue_invoices(invoices, actor, run_id=run_id) if invoices else 0
    return queued, more


def enqueue_invoices(invoices: Sequence[Invoice], actor: str, run_id: str | None = None) -> int:
    """Queue each invoice, then mark it pending (from not_synced or error only).

    The message goes first: an invoice is never pending without a message on its way. A message
    for an invoice that is already synced at this version is dropped by the consumer.
    """
    send(
        [
            QboSyncMessage(
                kind="sync_invoice",
                tenant_id=i.tenant_id,
                entity_id=i.id,
                run_id=run_id or i.run_id,
                version=int(i.version),
            )
            for i in invoices
        ]
    )
    for invoice in invoices:
        mark_pending(invoice, actor)
    return len(invoices)


def mark_pending(invoice: Invoice, actor: str) -> bool:
    """False when the consumer got there first, or the invoice is already pending."""
    return invoice_sync.mark_pending(invoice, actor)
