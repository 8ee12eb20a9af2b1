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
    totals: Any = None,
) -> Invoice:
    """Add a credit memo: the part that fits lowers the balance, the rest is the contact's
    unapplied credit. The same id again with the same amount is a retry (the invoice as it is);
    with another amount a Conflict. `totals` (domain/credit_tax.CreditTotals, wt-life): its
    subtotal and tax, `amount` being their total."""
    record = lifecycle.get(tenant_id, invoice_id)
    if any(c.id == credit_id for c in record.removed_credit_memos or []):  # wt-life: ids are not reused
        raise Conflict(f"credit memo {credit_id!r} was removed: use another id")
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
    if totals is not None:  # wt-life: the tax it credits (decision 0011 amended)
        _with_tax(memo, totals)
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
    lifecycle.write_with_status(record, target, actor, why, extra, condition, releases, owed)
    return lifecycle.get(tenant_id, invoice_id)


def _rewrite_listed(
    tenant_id: str, invoice_id: str, credit_id: str, change: Any, listed: Any, retried: str
) -> bool:
    """Rewrite one credit memo of the invoice's list `listed` (live or removed ones): its
    QuickBooks fields only, conditional on the list read (no status, balance or history). False
    when the credit memo is not in that list."""
    for _attempt in range(3):
        record = lifecycle.get(tenant_id, invoice_id)
        current = list(getattr(record, listed.attr_name) or [])
        read = copy.deepcopy(current)
        if not any(c.id == credit_id for c in read):
            return False
        kept = [change(c) if c.id == credit_id else c for c in current]
        try:
            record.update(
                actions=[listed.set(kept), Invoice.updated_at.set(now_iso())],
                condition=listed == read,
            )
            return True
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    raise Conflict(f"invoice {invoice_id!r} kept changing; {retried} is retried")


def _set_memo(tenant_id: str, invoice_id: str, credit_id: str, change: Any) -> bool:
    return _rewrite_listed(
        tenant_id, invoice_id, credit_id, change, Invoice.credit_memos, "its credit memo's QuickBooks link"
    )


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


# ---------------------------------------------------------------------------- tax (wt-life)
def _with_tax(memo: CreditMemo, totals: Any) -> None:
    memo.subtotal, memo.tax_total, memo.tax_rate = totals.subtotal, totals.tax_total, totals.rate
    memo.taxable = totals.amount_taxable
    for line, taxable in zip(memo.lines or [], totals.line_taxable, strict=False):
        line.taxable = taxable


def link_total(tenant_id: str, invoice_id: str, credit_id: str, qbo_total: Any) -> bool:
    """QuickBooks' TotalAmt of the CreditMemo (it computed the tax, with automated tax)."""

    def taken(c: CreditMemo) -> CreditMemo:
        c.qbo_total = qbo_total
        return c

    return _set_memo(tenant_id, invoice_id, credit_id, taken)


# ---------------------------------------------------------------------------- removal (wt-life)
# A credit memo removed here: out of the live list into `removed_credit_memos` (status removed, who,
# when, why) in ONE transaction with the balance it had lowered, the invoice's status the balance
# implies (INVOICE_MACHINE), the contact's account balance and, when it undoes a full credit, the
# invoice's items taken back (they had been released); conditional on the credits as read.


def _same_removed(record: Invoice) -> Any:
    removed = list(record.removed_credit_memos or [])
    if not removed:
        return Invoice.removed_credit_memos.does_not_exist()
    return Invoice.removed_credit_memos == removed


def _copy(memo: CreditMemo, **changes: Any) -> CreditMemo:
    values = {name: getattr(memo, name) for name in CreditMemo.get_attributes()}
    values.update(changes)
    return CreditMemo(**values)


def _take_back(record: Invoice, actor: str, why: str) -> list[Any]:
    """The transaction parts putting the invoice's released items back on it (pending ->
    invoiced); Conflict naming them when one was billed again meanwhile (a person decides)."""
    from fieldbill.domain.model import ItemStatus
    from fieldbill.store import transitions
    from fieldbill.store.billing import items_by_id
    from fieldbill.store.models import META, BillableItem

    item_ids = [str(i) for i in record.item_ids or []]
    found = items_by_id(record.tenant_id, item_ids)
    taken = sorted(i for i in item_ids if i not in found or found[i].status != ItemStatus.PENDING)
    if taken:
        raise Conflict(
            f"the credit memo made the invoice's items billable again and {', '.join(taken)} "
            "were billed again since: it cannot be removed (credit the other invoice instead)"
        )
    parts = []
    for item_id in item_ids:
        decided = transitions.change(
            BillableItem,
            "status",
            states.ITEM_MACHINE,
            item_id,
            str(ItemStatus.PENDING),
            str(ItemStatus.INVOICED),
            actor=actor,
            reason=why,
            extra=[
                BillableItem.invoice_id.set(record.id),
                BillableItem.destination.set(record.destination),
                BillableItem.gsi1pk.set(BillableItem.status_key(record.tenant_id, str(ItemStatus.INVOICED))),
            ],
        )
        item = BillableItem(BillableItem.key(record.tenant_id, item_id), META)
        parts.append((item, decided.actions, decided.condition & BillableItem.invoice_id.does_not_exist()))
    return parts


def remove_credit(
    tenant_id: str, invoice_id: str, credit_id: str, actor: str, reason: str | None
) -> tuple[Invoice, CreditMemo, bool]:
    """Remove a live credit memo: (the invoice, the removed credit memo, True when removed now).
    Removed already: the same answer, nothing written (a retried DELETE)."""
    from fieldbill.store import transitions

    record = lifecycle.get(tenant_id, invoice_id)
    gone = next((c for c in record.removed_credit_memos or [] if c.id == credit_id), None)
    if gone is not None:
        return record, gone, False
    memo = next((c for c in record.credit_memos or [] if c.id == credit_id), None)
    if memo is None:
        raise NotFound("credit memo", credit_id)
    status = InvoiceStatus(record.status)
    if status not in CREDITABLE:
        raise InvalidTransition(
            INVOICE_MACHINE.name, status, InvoiceStatus.OPEN, f"a {status} invoice's credit memos stay"
        )
    why = f"credit memo {credit_id} ({memo.amount}) removed" + (f": {reason}" if reason else "")
    _, entry = transitions.nested(
        states.CREDIT_MEMO_MACHINE,
        credit_id,
        str(memo.status or states.CreditMemoStatus.LIVE),
        str(states.CreditMemoStatus.REMOVED),
        actor=actor,
        reason=reason or "removed",
    )
    removed = _copy(
        memo,
        status=entry.to_state,
        removed_by=actor,
        removed_at=entry.at,
        removed_reason=reason,
        history=[*(memo.history or []), entry],
    )
    before = payments.Balance(
        total=record.total,
        amount_paid=Decimal(record.amount_paid or 0),
        amount_credited=Decimal(record.amount_credited or 0),
    )
    after = payments.remove_credit_memo(before, Decimal(memo.applied))
    remaining = [c for c in record.credit_memos or [] if c.id != credit_id]
    still_full = record.total > 0 and sum((Decimal(c.amount) for c in remaining), Decimal(0)) >= record.total
    takes_back: list[Any] = []
    if is_fully_credited(record) and not still_full:
        # The invoice bills its work again: its items come back to it, no memo says "full" now.
        remaining = [_copy(c, full=False) for c in remaining]
        takes_back = _take_back(record, actor, f"back on invoice {invoice_id}: {why}")
        why += "; no longer fully credited, its items are on it again"
    elif memo.full and still_full and remaining:
        remaining[-1] = _copy(remaining[-1], full=True)  # the invoice stays fully credited
    extra: list[Action] = [
        Invoice.credit_memos.set(remaining),
        Invoice.removed_credit_memos.set([*(record.removed_credit_memos or []), removed]),
        Invoice.amount_credited.set(after.amount_credited),
        Invoice.balance.set(after.balance),
    ]
    target = states.status_for_balance(status, record.total, after.balance)
    condition = lifecycle._unchanged(record) & _same_credits(record) & _same_removed(record)
    # What the invoice owes again, and the contact's credit (the unapplied part) given back.
    owed = account_balances.owed_delta(record, str(target), after.balance) + Decimal(memo.unapplied)
    lifecycle.write_with_status(record, target, actor, why, extra, condition, takes_back, owed)
    return lifecycle.get(tenant_id, invoice_id), removed, True


def _set_removed(tenant_id: str, invoice_id: str, credit_id: str, change: Any) -> bool:
    return _rewrite_listed(
        tenant_id, invoice_id, credit_id, change, Invoice.removed_credit_memos, "its credit memo's removal"
    )


def removed_in_quickbooks(tenant_id: str, invoice_id: str, credit_id: str) -> bool:
    """QuickBooks no longer holds the removed credit memo nor its applying Payment."""
    return _set_removed(
        tenant_id, invoice_id, credit_id, lambda c: _copy(c, qbo_removed=True, qbo_error=None)
    )


def removal_error(tenant_id: str, invoice_id: str, credit_id: str, error: dict[str, Any]) -> None:
    """QuickBooks refused to delete it: the removed credit memo says why (removed here still)."""
    _set_removed(tenant_id, invoice_id, credit_id, lambda c: _copy(c, qbo_error=error))


def find_removed(invoice: Invoice, credit_id: str) -> CreditMemo | None:
    return next((c for c in invoice.removed_credit_memos or [] if c.id == credit_id), None)


def removal_waiting(invoice: Invoice) -> Decimal:
    """Credit removed here that QuickBooks still applies (its Payment not deleted there yet): the
    inbound flow adds it back to QuickBooks' balance, as it takes off credit not there yet. A
    deletion QuickBooks refused counts too: the removal stands here (as a refused credit does) and
    the balance check shows the difference until it is removed again."""
    return sum(
        (
            Decimal(c.applied)
            for c in invoice.removed_credit_memos or []
            if c.qbo_apply_id and not c.qbo_removed
        ),
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
