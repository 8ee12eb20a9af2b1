"""Queue QuickBooks work. Every call to QuickBooks starts here: the consumer is the only caller."""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.settings import get_settings
from fieldbill.store import common
from fieldbill.store.models import Invoice
from fieldbill.workflows import queues
from fieldbill.workflows.messages import QboSyncMessage


def send(messages: Sequence[QboSyncMessage]) -> None:
    queues.send(get_settings().qbo_sync_queue_url, messages)


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
    previous = invoice.sync_status
    actions: list[Action] = [
        Invoice.sync_status.set("pending"),
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(
            Invoice.history.append(
                [common.history_entry(actor, previous, "pending", "queued for QuickBooks")]
            )
        ),
    ]
    if invoice.run_id:
        actions.append(Invoice.gsi2sk.set(Invoice.run_sort_key("pending", invoice.id)))
    try:
        invoice.update(actions=actions, condition=Invoice.sync_status.is_in("not_synced", "error"))
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return False  # the consumer got there first, or it is already pending
        raise
    return True
