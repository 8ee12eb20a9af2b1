"""An edit QuickBooks refuses (issue 13): the invoice shows QuickBooks' reason and is again the
version QuickBooks holds (wt-credit).

When a person edits an invoice QuickBooks holds at its current version, that version's content is
kept on the invoice (`last_good`, in the edit's own write). If QuickBooks then refuses the new
version, ONE transaction writes the refusal (sync error, QuickBooks' reason) and gives the invoice
back its last good content as a new version number (a version number is never reused: it is part
of QuickBooks requestids), taking back the items a removed line had released, each on condition
that it is still pending. If one was billed again meanwhile nothing is restored: the refusal is
recorded on the edited version, as before, and a person decides.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.domain import payments
from fieldbill.domain.model import ItemStatus, SyncStatus
from fieldbill.domain.states import ITEM_MACHINE, SYNC_MACHINE
from fieldbill.observability import logger
from fieldbill.store import account_balances, common, transitions
from fieldbill.store.models import META, BillableItem, Invoice, InvoiceVersion

ACTOR = "qbo_sync"
TEXTS = ("memo", "customer_message", "billing_email")


def snapshot(record: Invoice) -> InvoiceVersion:
    """The invoice's current content, as QuickBooks holds it (the caller checked it is synced)."""
    return InvoiceVersion(
        version=int(record.version),
        lines=list(record.lines or []),
        item_ids=[str(i) for i in record.item_ids or []],
        subtotal=record.subtotal,
        total=record.total,
        issue_date=record.issue_date,
        due_date=record.due_date,
        terms_days=record.terms_days,
        memo=record.memo,
        customer_message=record.customer_message,
        billing_email=record.billing_email,
    )


def restorable(invoice: Invoice) -> bool:
    """QuickBooks refused a change of an invoice it holds, whose last good version we kept."""
    good = invoice.last_good
    return bool(invoice.qbo_id) and good is not None and int(invoice.version) > int(good.version)


def _retake(invoice: Invoice, item_id: str) -> tuple[BillableItem, list[Any], Any]:
    decided = transitions.change(
        BillableItem,
        "status",
        ITEM_MACHINE,
        item_id,
        str(ItemStatus.PENDING),
        str(ItemStatus.INVOICED),
        actor=ACTOR,
        reason=f"back on invoice {invoice.id}: QuickBooks refused the edit that removed it",
        extra=[
            BillableItem.invoice_id.set(invoice.id),
            BillableItem.destination.set(invoice.destination),
            BillableItem.gsi1pk.set(BillableItem.status_key(invoice.tenant_id, str(ItemStatus.INVOICED))),
        ],
    )
    item = BillableItem(BillableItem.key(invoice.tenant_id, item_id), META)
    return item, decided.actions, decided.condition & BillableItem.invoice_id.does_not_exist()


def restore(invoice: Invoice, error: dict[str, Any], reason: str) -> bool:
    """Record the refusal and give the invoice its last good version back, in one transaction.
    False (nothing written) when it cannot be: it changed meanwhile, an item was billed again, or
    the payments and credits recorded since exceed the old total."""
    good = invoice.last_good
    assert good is not None
    before = payments.Balance(
        total=good.total,
        amount_paid=Decimal(invoice.amount_paid or 0),
        amount_credited=Decimal(invoice.amount_credited or 0),
    )
    if before.balance < 0:
        return False
    retaken = [str(i) for i in good.item_ids or [] if i not in set(invoice.item_ids or [])]
    if set(invoice.item_ids or []) - set(good.item_ids or []):
        return False  # the edit took items the old version did not have: nothing to give back to
    version = int(invoice.version) + 1
    back = (
        f"QuickBooks refused version {invoice.version}: back to the version it holds "
        f"({good.version}) as {version}"
    )
    extra: list[Any] = [
        Invoice.lines.set(list(good.lines or [])),
        Invoice.item_ids.set(list(good.item_ids or [])),
        Invoice.subtotal.set(good.subtotal),
        Invoice.total.set(good.total),
        Invoice.balance.set(before.balance),
        Invoice.issue_date.set(good.issue_date),
        Invoice.gsi1sk.set(f"{good.issue_date}#{invoice.id}"),
        Invoice.version.set(version),
        Invoice.sync_error.set(error),
        Invoice.create_claim.remove(),
        Invoice.create_claim_until.remove(),
        Invoice.due_date.set(good.due_date) if good.due_date else Invoice.due_date.remove(),
    ]
    if good.terms_days is not None:
        extra.append(Invoice.terms_days.set(good.terms_days))
    for name in TEXTS:
        value = getattr(good, name)
        extra.append(getattr(Invoice, name).set(value) if value else getattr(Invoice, name).remove())
    if invoice.run_id:
        extra += [
            Invoice.gsi2pk.set(Invoice.run_key(invoice.tenant_id, invoice.run_id)),
            Invoice.gsi2sk.set(Invoice.run_sort_key(SyncStatus.ERROR, invoice.id)),
        ]
    current = str(invoice.sync_status)
    if current == SyncStatus.ERROR:
        return False  # recorded already (a redelivery)
    decided = transitions.change(
        Invoice,
        "sync_status",
        SYNC_MACHINE,
        invoice.id,
        current,
        str(SyncStatus.ERROR),
        actor=ACTOR,
        reason=f"{reason}; {back}",
        extra=extra,
    )
    condition = decided.condition & (Invoice.version == int(invoice.version))
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(invoice, actions=decided.actions, condition=condition)
            for item_id in retaken:
                item, actions, item_condition = _retake(invoice, item_id)
                tx.update(item, actions=actions, condition=item_condition)
            owed = account_balances.owed_delta(invoice, str(invoice.status), before.balance)
            if owed != 0:  # the contact's maintained balance follows the total given back
                balance, balance_actions = account_balances.balance_part(
                    invoice.tenant_id, invoice.contact_id, owed
                )
                tx.update(balance, actions=balance_actions)
    except TransactWriteError as exc:
        if common.conditional_failed(exc) or common.transaction_conflict(exc):
            logger.warning("the refused edit could not be undone; the refusal is recorded on it")
            return False
        raise
    return True
