"""An invoice's lifecycle after it is generated: edit, delete, void, mark sent, payments.

Every change is ONE write (an update, or a transaction with the items it releases), conditional on
the version and status it was decided from, with its history record: a concurrent change loses
cleanly (Conflict, read again) and nothing is half done. Items leave an invoice only here: when
their line is removed from a draft, or the invoice is deleted or voided, each goes back to pending
(billable again) in the same transaction, conditional on still being on this invoice.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain import invoice_edits, payments, states
from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from fieldbill.domain.model import InvoiceStatus, ItemStatus, SyncStatus
from fieldbill.domain.states import INVOICE_MACHINE, ITEM_MACHINE, SYNC_MACHINE
from fieldbill.store import billing, common, transitions
from fieldbill.store.models import META, BillableItem, Contact, Entity, Invoice, Payment, Product

TEXTS = ("memo", "customer_message", "billing_email")
# A sync in flight: its outcome is not known yet, so the invoice cannot be deleted under it.
IN_FLIGHT = (SyncStatus.PENDING, SyncStatus.UNKNOWN)


# ---------------------------------------------------------------------------- reads
def get(tenant_id: str, invoice_id: str) -> Invoice:
    """The invoice as stored now (consistent: a change is decided from the latest version)."""
    try:
        record = Entity.get(Invoice.key(tenant_id, invoice_id), META, consistent_read=True)
    except Entity.DoesNotExist:
        raise NotFound("invoice", invoice_id) from None
    if not isinstance(record, Invoice):
        raise NotFound("invoice", invoice_id)
    return record


def lines_to_domain(record: Invoice) -> tuple[dm.InvoiceLine, ...]:
    return tuple(
        dm.InvoiceLine(
            line_no=int(line.line_no) if line.line_no is not None else number,
            item_id=line.item_id,
            line_kind=dm.LineKind(line.line_kind),
            work_date=date.fromisoformat(line.work_date) if line.work_date else None,
            description=line.description or "",
            product_id=line.product_id or "",
            product_name=line.product_name or "",
            unit=line.unit,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            taxable=bool(line.taxable),
        )
        for number, line in enumerate(record.lines or [], start=1)
    )


def content(record: Invoice) -> invoice_edits.InvoiceContent:
    return invoice_edits.InvoiceContent(
        status=InvoiceStatus(record.status),
        lines=lines_to_domain(record),
        issue_date=date.fromisoformat(record.issue_date),
        due_date=date.fromisoformat(record.due_date) if record.due_date else None,
        terms_days=int(record.terms_days) if record.terms_days is not None else None,
        paid_and_credited=paid_and_credited(record),
        texts={name: getattr(record, name) for name in TEXTS},
        tax_rate=Decimal(record.tax_rate) if record.tax_rate is not None else None,
    )


def paid_and_credited(record: Invoice) -> Decimal:
    return Decimal(record.amount_paid or 0) + Decimal(record.amount_credited or 0)


def product_names(tenant_id: str, product_ids: Iterable[str]) -> dict[str, str]:
    """The catalog's name of each product that exists (an unknown id is absent)."""
    found = common.batch_get(Product, ((Product.key(tenant_id, p), META) for p in set(product_ids)))
    return {record.id: record.name for record in found.values()}


# ---------------------------------------------------------------------------- writes
def _unchanged(record: Invoice) -> Any:
    """The condition of every lifecycle write: the version (the document's content), status and
    amount paid it was decided from."""
    paid = Decimal(record.amount_paid or 0)
    same_paid = Invoice.amount_paid == paid
    if paid == 0:  # invoices written before payments existed have no amount_paid at all
        same_paid = same_paid | Invoice.amount_paid.does_not_exist()
    return (Invoice.version == int(record.version)) & (Invoice.status == str(record.status)) & same_paid


def _release(tenant_id: str, invoice_id: str, item_ids: Iterable[str], actor: str, why: str) -> list[Any]:
    """The transaction parts that make each item pending again, if it is still on this invoice."""
    parts = []
    for item_id in item_ids:
        decided = transitions.change(
            BillableItem,
            "status",
            ITEM_MACHINE,
            item_id,
            str(ItemStatus.INVOICED),
            str(ItemStatus.PENDING),
            actor=actor,
            reason=why,
            extra=[
                BillableItem.invoice_id.remove(),
                BillableItem.destination.remove(),
                BillableItem.gsi1pk.set(BillableItem.status_key(tenant_id, str(ItemStatus.PENDING))),
            ],
        )
        item = BillableItem(BillableItem.key(tenant_id, item_id), META)
        parts.append((item, decided.actions, decided.condition & (BillableItem.invoice_id == invoice_id)))
    return parts


def _write(record: Invoice, actions: list[Action], condition: Any, releases: list[Any]) -> None:
    """One update of the invoice, with its items' releases in the same transaction when any."""
    try:
        if not releases:
            record.update(actions=actions, condition=condition)
            return
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(record, actions=actions, condition=condition)
            for item, item_actions, item_condition in releases:
                tx.update(item, actions=item_actions, condition=item_condition)
    except (UpdateError, TransactWriteError) as exc:
        if common.conditional_failed(exc) or common.transaction_conflict(exc):
            raise Conflict(f"invoice {record.id!r} changed meanwhile; read it again") from None
        raise


def _note(actor: str, status: str, reason: str) -> Any:
    """A history entry of a change that is not a status change (the status is unchanged)."""
    return common.history_entry(actor, status, status, reason)


def _sync_again(
    record: Invoice, actor: str, why: str, extra: list[Action], note: Any
) -> transitions.Change | None:
    """An invoice QuickBooks holds (or is about to) must take the new version: synced or failed
    becomes pending in the same write (with `extra` and the edit's `note`); pending stays pending
    (its message syncs the latest)."""
    if record.destination != str(dm.Destination.QUICKBOOKS):
        return None
    if record.sync_status not in (SyncStatus.SYNCED, SyncStatus.ERROR):
        return None
    return transitions.change(
        Invoice,
        "sync_status",
        SYNC_MACHINE,
        record.id,
        record.sync_status,
        SyncStatus.PENDING,
        actor=actor,
        reason=why,
        extra=extra,
        more_history=[note],
    )


def edit(
    tenant_id: str,
    invoice_id: str,
    edit: invoice_edits.InvoiceEdit,
    actor: str,
    expected_version: int | None = None,
) -> tuple[Invoice, bool]:
    """Apply a person's edit; the stored invoice and True when QuickBooks must take the new version.

    Conflict when `expected_version` is not the stored one (someone else edited it meanwhile)."""
    record = get(tenant_id, invoice_id)
    if expected_version is not None and expected_version != int(record.version):
        raise Conflict(
            f"invoice {invoice_id!r} is at version {record.version}, not {expected_version}: read it again"
        )
    if record.sync_status == SyncStatus.UNKNOWN:
        raise Conflict(
            f"invoice {invoice_id!r}: QuickBooks' answer to its last sync is not known yet; try again shortly"
        )
    edit = _with_product_names(tenant_id, edit)
    done = invoice_edits.apply_edit(content(record), edit)
    if not done.changed:
        return record, False
    version = int(record.version) + 1
    reason = f"edited: {', '.join(done.changed)} (version {version})"
    actions: list[Action] = [
        Invoice.lines.set(billing.line_records(done.lines)),
        Invoice.item_ids.set([line.item_id for line in done.lines if line.item_id]),  # type: ignore[misc]
        Invoice.subtotal.set(done.subtotal),
        Invoice.total.set(done.total),
        Invoice.tax_total.set(done.tax_total),
        Invoice.tax_source.remove(),  # our figure again until QuickBooks answers (automated tax)
        Invoice.balance.set(done.balance),
        Invoice.issue_date.set(done.issue_date.isoformat()),
        Invoice.version.set(version),
        Invoice.gsi1sk.set(f"{done.issue_date.isoformat()}#{record.id}"),
    ]
    actions.append(
        Invoice.due_date.set(done.due_date.isoformat()) if done.due_date else Invoice.due_date.remove()
    )
    if done.terms_days is not None:
        actions.append(Invoice.terms_days.set(done.terms_days))
    for name in TEXTS:
        value = done.texts.get(name)
        attribute = getattr(Invoice, name)
        actions.append(attribute.set(value) if value else attribute.remove())
    if record.destination == str(dm.Destination.QUICKBOOKS) and record.sync_status != SyncStatus.NOT_SYNCED:
        actions.append(Invoice.dirty.set(True))  # QuickBooks' copy is older now (issue 15)
    entry = _note(actor, record.status, reason)
    resync = _sync_again(record, actor, f"version {version} to QuickBooks", actions, entry)
    if resync is not None:
        actions, condition = resync.actions, _unchanged(record) & resync.condition
    else:
        actions += [Invoice.updated_at.set(now_iso()), Invoice.history.set(Invoice.history.append([entry]))]
        condition = _unchanged(record)
    why = f"line removed from invoice {invoice_id}"
    _write(record, actions, condition, _release(tenant_id, invoice_id, done.released_item_ids, actor, why))
    to_quickbooks = (
        record.destination == str(dm.Destination.QUICKBOOKS) and record.sync_status != SyncStatus.NOT_SYNCED
    )
    return get(tenant_id, invoice_id), to_quickbooks


def _with_product_names(tenant_id: str, edit: invoice_edits.InvoiceEdit) -> invoice_edits.InvoiceEdit:
    """The catalog's names of the products an edit names (an unknown product keeps None: refused)."""
    if not edit.lines:
        return edit
    wanted = [line.product_id for line in edit.lines if line.product_id]
    if not wanted:
        return edit
    names = product_names(tenant_id, wanted)
    lines = tuple(
        dataclasses.replace(line, product_name=names.get(line.product_id)) if line.product_id else line
        for line in edit.lines
    )
    return dataclasses.replace(edit, lines=lines)


def _status_change(
    record: Invoice, target: InvoiceStatus, actor: str, reason: str, extra: list[Action]
) -> transitions.Change:
    return transitions.change(
        Invoice,
        "status",
        INVOICE_MACHINE,
        record.id,
        str(record.status),
        str(target),
        actor=actor,
        reason=reason,
        extra=extra,
    )


def delete_draft(tenant_id: str, invoice_id: str, actor: str, reason: str | None) -> Invoice:
    """draft -> deleted, its items pending again, in one transaction. The record stays (deleted
    is a status: nothing disappears silently)."""
    record = get(tenant_id, invoice_id)
    if record.sync_status in IN_FLIGHT:
        raise InvalidTransition(
            INVOICE_MACHINE.name,
            record.status,
            InvoiceStatus.DELETED,
            "it is being synced to QuickBooks: void it once synced",
        )
    why = reason or "draft deleted"
    decided = _status_change(record, InvoiceStatus.DELETED, actor, why, [])
    releases = _release(
        tenant_id, invoice_id, [str(i) for i in record.item_ids or []], actor, f"invoice {invoice_id} deleted"
    )
    _write(record, decided.actions, decided.condition & _unchanged(record), releases)
    return get(tenant_id, invoice_id)


def void(tenant_id: str, invoice_id: str, actor: str, reason: str | None) -> tuple[Invoice, bool]:
    """open -> void, its items pending again, in one transaction; True when QuickBooks holds (or
    may hold) a copy that must be voided too."""
    record = get(tenant_id, invoice_id)
    why = reason or "voided"
    decided = _status_change(record, InvoiceStatus.VOID, actor, why, [Invoice.balance.set(Decimal("0"))])
    releases = _release(
        tenant_id, invoice_id, [str(i) for i in record.item_ids or []], actor, f"invoice {invoice_id} voided"
    )
    _write(record, decided.actions, decided.condition & _unchanged(record), releases)
    in_quickbooks = bool(record.qbo_id) or record.sync_status in IN_FLIGHT
    return get(tenant_id, invoice_id), record.destination == str(dm.Destination.QUICKBOOKS) and in_quickbooks


def mark_sent(tenant_id: str, invoice_id: str, actor: str, via: str) -> Invoice:
    """A draft becomes open; an invoice already open (or paid) records that it was sent again."""
    record = get(tenant_id, invoice_id)
    stamp = now_iso()
    extra: list[Action] = [Invoice.sent_at.set(stamp), Invoice.sent_via.set(via)]
    if record.status == InvoiceStatus.DRAFT:
        decided = _status_change(record, InvoiceStatus.OPEN, actor, f"sent ({via})", extra)
        _write(record, decided.actions, decided.condition & _unchanged(record), [])
    elif record.status in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID):
        actions = [
            *extra,
            Invoice.updated_at.set(stamp),
            Invoice.history.set(Invoice.history.append([_note(actor, record.status, f"sent again ({via})")])),
        ]
        _write(record, actions, _unchanged(record), [])
    else:
        raise InvalidTransition(
            INVOICE_MACHINE.name,
            record.status,
            InvoiceStatus.OPEN,
            f"a {record.status} invoice cannot be sent",
        )
    return get(tenant_id, invoice_id)


def open_synced(record: Invoice, actor: str) -> bool:
    """A draft QuickBooks now holds is open. False when it is not a draft (nothing to do) or
    changed meanwhile (whoever changed it decided its status)."""
    if record.status != InvoiceStatus.DRAFT:
        return False
    decided = transitions.change(
        Invoice,
        "status",
        INVOICE_MACHINE,
        record.id,
        str(record.status),
        str(InvoiceStatus.OPEN),
        actor=actor,
        reason="in QuickBooks",
    )
    try:
        record.update(actions=decided.actions, condition=decided.condition)
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return False
        raise
    return True


def record_payment(tenant_id: str, invoice_id: str, payment: dict[str, Any], actor: str) -> Invoice:
    """Add a payment: balance down and the status it implies, in one write. A payment with an id
    already recorded is a retry: the invoice is answered as it is (idempotent)."""
    record = get(tenant_id, invoice_id)
    earlier = next((p for p in record.payments or [] if p.id == payment["id"]), None)
    if earlier is not None:
        if Decimal(earlier.amount) != payment["amount"]:
            raise Conflict(
                f"payment {payment['id']!r} is recorded with amount {earlier.amount}: use another id"
            )
        return record  # a retry: recorded already
    status = InvoiceStatus(record.status)
    if status not in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID):
        raise InvalidTransition(
            INVOICE_MACHINE.name,
            status,
            InvoiceStatus.PAID,
            f"a {status} invoice takes no payment: send it first",
        )
    before = payments.Balance(
        total=record.total,
        amount_paid=Decimal(record.amount_paid or 0),
        amount_credited=Decimal(record.amount_credited or 0),
    )
    after = payments.apply_payment(before, payment["amount"])
    return _write_balance(
        record,
        after,
        actor,
        f"payment {payment['amount']} ({payment.get('method') or 'unspecified'})",
        [
            Invoice.payments.set(
                Invoice.payments.append([Payment(**payment, recorded_by=actor, recorded_at=now_iso())])
            )
        ],
    )


def _set_payments(tenant_id: str, invoice_id: str, change: Any) -> None:
    """Rewrite the payments list with `change(payment)` applied, conditional on the list read
    (a change of QuickBooks fields only: no status, balance or history)."""
    for _attempt in range(3):
        record = get(tenant_id, invoice_id)
        read = copy.deepcopy(list(record.payments or []))
        kept = [change(p) for p in record.payments or []]
        try:
            record.update(
                actions=[Invoice.payments.set(kept), Invoice.updated_at.set(now_iso())],
                condition=Invoice.payments == read,
            )
            return
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    raise Conflict(f"invoice {invoice_id!r} kept changing; its payment's QuickBooks link is retried")


def link_payment(tenant_id: str, invoice_id: str, payment_id: str, qbo_id: str) -> bool:
    """Our payment is in QuickBooks as Payment `qbo_id`. False when the payment was removed here
    meanwhile (the caller deletes QuickBooks' copy)."""
    if not any(p.id == payment_id for p in get(tenant_id, invoice_id).payments or []):
        return False

    def linked(p: Payment) -> Payment:
        if p.id == payment_id:
            p.qbo_id, p.qbo_error = qbo_id, None
        return p

    _set_payments(tenant_id, invoice_id, linked)
    return True


def payment_error(tenant_id: str, invoice_id: str, payment_id: str, error: dict[str, Any]) -> None:
    def failed(p: Payment) -> Payment:
        if p.id == payment_id:
            p.qbo_error = error
        return p

    _set_payments(tenant_id, invoice_id, failed)


def remove_payment(
    tenant_id: str, invoice_id: str, payment_id: str, actor: str, reason: str | None
) -> tuple[Invoice, str | None]:
    """Remove a payment; the invoice and the QuickBooks id the payment had (to delete there)."""
    record = get(tenant_id, invoice_id)
    kept = [p for p in record.payments or [] if p.id != payment_id]
    if len(kept) == len(record.payments or []):
        raise NotFound("payment", payment_id)
    removed = next(p for p in record.payments if p.id == payment_id)
    before = payments.Balance(
        total=record.total,
        amount_paid=Decimal(record.amount_paid or 0),
        amount_credited=Decimal(record.amount_credited or 0),
    )
    after = payments.remove_payment(before, removed.amount)
    why = reason or f"payment {removed.amount} removed"
    return _write_balance(record, after, actor, why, [Invoice.payments.set(kept)]), removed.qbo_id


def _write_balance(record: Invoice, after: Any, actor: str, reason: str, extra: list[Action]) -> Invoice:
    target = states.status_for_balance(InvoiceStatus(record.status), record.total, after.balance)
    extra = [
        *extra,
        Invoice.amount_paid.set(after.amount_paid),
        Invoice.amount_credited.set(after.amount_credited),
        Invoice.balance.set(after.balance),
    ]
    if target != record.status:
        decided = _status_change(record, target, actor, reason, extra)
        _write(record, decided.actions, decided.condition & _unchanged(record), [])
    else:
        actions = [
            *extra,
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(Invoice.history.append([_note(actor, record.status, reason)])),
        ]
        _write(record, actions, _unchanged(record), [])
    return get(record.tenant_id, record.id)


# ---------------------------------------------------------------------------- finding invoices
READ_AHEAD = 1000  # invoices DynamoDB reads per request of a filtered list (1 MB caps it too)
_OPERATORS = {
    "eq": lambda attr, value: attr == value,
    "lt": lambda attr, value: attr < value,
    "gt": lambda attr, value: attr > value,
    "lte": lambda attr, value: attr <= value,
    "gte": lambda attr, value: attr >= value,
}


@dataclass(frozen=True, slots=True)
class AmountFilter:
    field: str
    operator: str
    amount: Decimal


def amount_filter(field: str, text: str | None) -> AmountFilter | None:
    """`gte:100` -> AmountFilter (the API's pattern checked the text already)."""
    if text is None:
        return None
    operator, _, amount = text.partition(":")
    if operator not in _OPERATORS:
        raise ValidationError(field, "use eq, lt, gt, lte or gte, e.g. gt:0")
    return AmountFilter(field, operator, Decimal(amount))


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceFilter:
    status: str | None = None
    sync_status: str | None = None
    destination: str | None = None
    contact_id: str | None = None
    issue_date_from: date | None = None
    issue_date_to: date | None = None
    due_date_from: date | None = None
    due_date_to: date | None = None
    overdue: bool | None = None
    total: AmountFilter | None = None
    balance: AmountFilter | None = None
    today: date | None = None


def _conditions(wanted: InvoiceFilter) -> Any:
    parts: list[Any] = []
    if wanted.status:
        parts.append(Invoice.status == wanted.status)
    else:
        parts.append(Invoice.status != str(InvoiceStatus.DELETED))  # asked for by name only
    if wanted.sync_status:
        parts.append(Invoice.sync_status == wanted.sync_status)
    if wanted.destination:
        parts.append(Invoice.destination == wanted.destination)
    if wanted.contact_id:
        parts.append(Invoice.contact_id == wanted.contact_id)
    if wanted.due_date_from:
        parts.append(Invoice.due_date >= wanted.due_date_from.isoformat())
    if wanted.due_date_to:
        parts.append(Invoice.due_date <= wanted.due_date_to.isoformat())
    if wanted.overdue is not None:
        owed = Invoice.status.is_in(str(InvoiceStatus.OPEN), str(InvoiceStatus.PARTIALLY_PAID))
        late = Invoice.due_date < (wanted.today or date.today()).isoformat()
        parts.append((owed & late) if wanted.overdue else ~(owed & late))
    for amount in (wanted.total, wanted.balance):
        if amount is not None:
            parts.append(_OPERATORS[amount.operator](getattr(Invoice, amount.field), amount.amount))
    condition = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return condition


def find(
    tenant_id: str, wanted: InvoiceFilter, limit: int, cursor: str | None
) -> tuple[list[Invoice], str | None]:
    """One page of the tenant's invoices by issue date (the list index), filtered: `limit` of them
    unless the list ends there (next_cursor null)."""
    list_key = Invoice.list_key(tenant_id)
    checked = common.checked_cursor(cursor, gsi1pk=list_key)
    low = wanted.issue_date_from.isoformat() if wanted.issue_date_from else None
    high = f"{wanted.issue_date_to.isoformat()}#\uffff" if wanted.issue_date_to else None
    range_condition: Any
    if low and high:
        range_condition = Entity.gsi1sk.between(low, high)
    elif low:
        range_condition = Entity.gsi1sk >= low
    elif high:
        range_condition = Entity.gsi1sk <= high
    else:
        range_condition = None
    # A filter skips invoices after DynamoDB has read them: each request reads up to READ_AHEAD
    # (and 1 MB), and the page ends right after its last invoice, so a page is full and a
    # selective filter costs a few requests, not one per `limit` invoices read.
    query = Entity.gsi1.query(
        list_key,
        range_condition,
        filter_condition=_conditions(wanted),
        limit=limit,
        page_size=READ_AHEAD,
        last_evaluated_key=common.decode_cursor(checked),
    )
    records = [r for r in query if isinstance(r, Invoice)]
    if len(records) == limit:
        return records, common.cursor_after_gsi1(records[-1])
    return records, common.encode_cursor(query.last_evaluated_key)


@dataclass(frozen=True, slots=True)
class AccountBalance:
    open_balances: list[Decimal]
    quickbooks_balance: Decimal | None


def account_balance(tenant_id: str, contact_id: str) -> AccountBalance:
    """The contact's open and partly paid invoices' balances, and the balance QuickBooks last
    reported for its customer. Reads the tenant's invoice list with a filter (one pass)."""
    contact = common.find(Contact, Contact.key(tenant_id, contact_id))
    if contact is None:
        raise NotFound("contact", contact_id)
    owed = Invoice.status.is_in(str(InvoiceStatus.OPEN), str(InvoiceStatus.PARTIALLY_PAID))
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id), filter_condition=(Invoice.contact_id == contact_id) & owed
    )
    balances = [Decimal(r.balance or 0) for r in query if isinstance(r, Invoice)]
    linked = contact.qbo_id is not None
    return AccountBalance(
        balances, Decimal(contact.balance) if linked and contact.balance is not None else None
    )
