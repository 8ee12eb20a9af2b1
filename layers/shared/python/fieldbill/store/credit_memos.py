"""Credit memos against an invoice (issue 13): recorded on the invoice in ONE write with the balance,
the status it implies and its history; a full credit releases the invoice's items (pending again,
billable on the next run) in the same transaction, as a void does.

The write is conditional on the invoice's version, status, amount paid and its credit memos as
read, so two credits decided from the same balance never both land (Conflict: read again).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.domain import payments, states
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound
from fieldbill.domain.model import InvoiceStatus
from fieldbill.domain.states import INVOICE_MACHINE
from fieldbill.store import account_balances, common
from fieldbill.store import invoices as lifecycle
from fieldbill.store.models import CreditMemo, CreditMemoLine, Invoice

# A credit memo corrects what was billed: only an invoice the customer has (sent or synced).
CREDITABLE = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)


def credited_before(record: Invoice) -> Decimal:
    return sum((Decimal(c.amount) for c in record.credit_memos or []), Decimal("0"))


def is_fully_credited(record: Invoice) -> bool:
    return any(bool(c.full) for c in record.credit_memos or [])


def list_for(tenant_id: str, invoice_id: str) -> list[CreditMemo]:
    return list(lifecycle.get(tenant_id, invoice_id).credit_memos or [])


def _same_credits(record: Invoice) -> Any:
    credited = Decimal(record.amount_credited or 0)
    same = Invoice.amount_credited == credited
    if credited == 0:
        same = same | Invoice.amount_credited.does_not_exist()
    memos = list(record.credit_memos or [])
    same_list = Invoice.credit_memos == memos if memos else Invoice.credit_memos.does_not_exist()
    if not memos:
        same_list = same_list | (Invoice.credit_memos == [])
    return same & same_list


def record_credit(
    tenant_id: str,
    invoice_id: str,
    *,
    credit_id: str,
    amount: Decimal,
    on: str,
    reason: str,
    lines: list[payments.CreditLine],
    actor: str,
) -> Invoice:
    """Add a credit memo: the part that fits lowers the balance, the rest is the contact's
    unapplied credit. The same id again with the same amount is a retry (the invoice as it is);
    with another amount a Conflict."""
    record = lifecycle.get(tenant_id, invoice_id)
    earlier = next((c for c in record.credit_memos or [] if c.id == credit_id), None)
    if earlier is not None:
        if Decimal(earlier.amount) != amount:
            raise Conflict(
                f"credit memo {credit_id!r} is recorded with amount {earlier.amount}: use another id"
            )
        return record
    status = InvoiceStatus(record.status)
    if status not in CREDITABLE:
        raise InvalidTransition(
            INVOICE_MACHINE.name,
            status,
            InvoiceStatus.PAID,
            f"a {status} invoice takes no credit memo"
            + (": send it first" if status is InvoiceStatus.DRAFT else ""),
        )
    before = payments.Balance(
        total=record.total,
        amount_paid=Decimal(record.amount_paid or 0),
        amount_credited=Decimal(record.amount_credited or 0),
    )
    split = payments.apply_credit_memo(before, amount, credited_before(record))
    full = split.full and not is_fully_credited(record)
    memo = CreditMemo(
        id=credit_id,
        amount=amount,
        applied=split.applied,
        unapplied=split.unapplied,
        date=on,
        reason=reason,
        lines=[
            CreditMemoLine(
                description=line.description or None,
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
            )
            for line in lines
        ],
        full=full,
        recorded_by=actor,
        recorded_at=now_iso(),
    )
    why = f"credit memo {credit_id}: {amount} ({reason})" + (
        "; fully credited, items billable again" if full else ""
    )
    extra: list[Action] = [
        Invoice.credit_memos.set(Invoice.credit_memos.append([memo])),
        Invoice.amount_credited.set(split.after.amount_credited),
        Invoice.balance.set(split.after.balance),
    ]
    releases = []
    if full:
        releases = lifecycle._release(
            tenant_id,
            invoice_id,
            [str(i) for i in record.item_ids or []],
            actor,
            f"invoice {invoice_id} fully credited",
        )
    target = states.status_for_balance(status, record.total, split.after.balance)
    condition = lifecycle._unchanged(record) & _same_credits(record)
    # The contact's maintained account balance moves in the same transaction (store/account_balances):
    # by what the invoice owes less, and by the credit left over (the contact's credit lowers it).
    owed = account_balances.owed_delta(record, str(target), split.after.balance) - split.unapplied
    if target != status:
        decided = lifecycle._status_change(record, target, actor, why, extra)
        lifecycle._write(record, decided.actions, decided.condition & condition, releases, owed)
    else:
        actions = [
            *extra,
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(Invoice.history.append([lifecycle._note(actor, record.status, why)])),
        ]
        lifecycle._write(record, actions, condition, releases, owed)
    return lifecycle.get(tenant_id, invoice_id)


def _set_memo(tenant_id: str, invoice_id: str, credit_id: str, change: Any) -> bool:
    """Rewrite one credit memo's QuickBooks fields, conditional on the list read (no status,
    balance or history). False when the credit memo is not on the invoice."""
    for _attempt in range(3):
        record = lifecycle.get(tenant_id, invoice_id)
        read = copy.deepcopy(list(record.credit_memos or []))
        if not any(c.id == credit_id for c in read):
            return False
        kept = [change(c) if c.id == credit_id else c for c in record.credit_memos or []]
        try:
            record.update(
                actions=[Invoice.credit_memos.set(kept), Invoice.updated_at.set(now_iso())],
                condition=Invoice.credit_memos == read,
            )
            return True
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    raise Conflict(f"invoice {invoice_id!r} kept changing; its credit memo's QuickBooks link is retried")


def link_credit(
    tenant_id: str, invoice_id: str, credit_id: str, *, qbo_id: str, apply_id: str | None = None
) -> bool:
    """Our credit memo is QuickBooks' CreditMemo `qbo_id` (and applied by Payment `apply_id`)."""

    def linked(c: CreditMemo) -> CreditMemo:
        c.qbo_id, c.qbo_error = qbo_id, None
        if apply_id:
            c.qbo_apply_id = apply_id
        return c

    return _set_memo(tenant_id, invoice_id, credit_id, linked)


def credit_error(tenant_id: str, invoice_id: str, credit_id: str, error: dict[str, Any]) -> None:
    """QuickBooks refused the credit memo: ours says why (its effect here stays)."""

    def failed(c: CreditMemo) -> CreditMemo:
        c.qbo_error = error
        return c

    _set_memo(tenant_id, invoice_id, credit_id, failed)


def find(tenant_id: str, invoice_id: str, credit_id: str) -> tuple[Invoice, CreditMemo]:
    record = lifecycle.get(tenant_id, invoice_id)
    memo = next((c for c in record.credit_memos or [] if c.id == credit_id), None)
    if memo is None:
        raise NotFound("credit memo", credit_id)
    return record, memo


def unapplied_credits(tenant_id: str, contact_id: str) -> list[Decimal]:
    """The contact's credit memos' unapplied parts (its credit), over its invoices."""
    from fieldbill.store.models import Entity  # the list index, read once

    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id),
        filter_condition=(Invoice.contact_id == contact_id) & Invoice.credit_memos.exists(),
    )
    return [
        Decimal(c.unapplied)
        for r in query
        if isinstance(r, Invoice)
        for c in r.credit_memos or []
        if Decimal(c.unapplied or 0) > 0
    ]


def waiting_credit(invoice: Invoice) -> Decimal:
    """Credit applied here that QuickBooks' invoice balance does not show yet (its applying
    Payment is not there): the inbound flow takes it off QuickBooks' balance, as for payments."""
    return sum(
        (Decimal(c.applied) for c in invoice.credit_memos or [] if not c.qbo_apply_id and not c.qbo_error),
        Decimal("0"),
    )


# ---------------------------------------------------------------------------- standalone (wt-jobs2)
def record_standalone(
    tenant_id: str, invoice_id: str, *, credit_id: str, amount: Decimal, on: str, reason: str, actor: str
) -> Invoice:
    """A credit memo for the customer of a document that credits no invoice of theirs (a job's
    negative correction for a customer with no invoice of the job): all of it is unapplied, the
    contact's credit. Kept on that document, so its QuickBooks link and sync state live there, and
    the contact's account balance drops by its amount IN THE SAME TRANSACTION. The document's
    own balance and status do not change. The same id again is a retry (Conflict with another amount)."""
    record = lifecycle.get(tenant_id, invoice_id)
    earlier = next((c for c in record.credit_memos or [] if c.id == credit_id), None)
    if earlier is not None:
        if Decimal(earlier.amount) != amount:
            raise Conflict(
                f"credit memo {credit_id!r} is recorded with amount {earlier.amount}: use another id"
            )
        return record
    memo = CreditMemo(
        id=credit_id,
        amount=amount,
        applied=Decimal("0.00"),
        unapplied=amount,
        date=on,
        reason=reason,
        lines=[],
        full=False,
        recorded_by=actor,
        recorded_at=now_iso(),
    )
    why = f"standalone credit memo {credit_id}: {amount} ({reason}), the customer's credit"
    actions: list[Action] = [
        Invoice.credit_memos.set(Invoice.credit_memos.append([memo])),
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(Invoice.history.append([lifecycle._note(actor, record.status, why)])),
    ]
    condition = lifecycle._unchanged(record) & _same_credits(record)
    lifecycle._write(record, actions, condition, [], -amount)
    return lifecycle.get(tenant_id, invoice_id)
