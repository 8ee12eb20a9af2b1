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

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.domain import invoice_edits, payments, states, tax
from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from fieldbill.domain.model import InvoiceStatus, ItemStatus, SyncStatus
from fieldbill.domain.states import INVOICE_MACHINE, ITEM_MACHINE, SYNC_MACHINE
from fieldbill.store import account_balances, billing, common, edit_refusals, transitions
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
            tax_code_id=line.tax_code_id,
            tax_rate=line.tax_rate,
            tax_source=line.tax_source,
            tax_amount=line.tax_amount,
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
        contact_id=record.contact_id,
    )


def paid_and_credited(record: Invoice) -> Decimal:
    return Decimal(record.amount_paid or 0) + Decimal(record.amount_credited or 0)


def product_names(tenant_id: str, product_ids: Iterable[str]) -> dict[str, str]:
    """The catalog's name of each product that exists (an unknown id is absent)."""
    found = common.batch_get(Product, ((Product.key(tenant_id, p), META) for p in set(product_ids)))
    return {record.id: record.name for record in found.values()}


# ---------------------------------------------------------------------------- job invoices (issue 14)
def check_unlocked(record: Invoice, requested: str) -> None:
    """A job invoice changes only through a correction: a posted one is locked (409), and any other
    would no longer match the job's billed amounts (store/jobs.py). Edit, delete and void ask here."""
    if not record.job_id:
        return
    status = record.workflow_status or "invoiced"
    detail = (
        "posted invoices are locked" if status == "posted" else "a job invoice changes through a correction"
    )
    raise InvalidTransition(
        "job_invoice_workflow", status, requested, f"{detail}: issue a correction invoice"
    )


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


def release_parts(
    tenant_id: str, invoice_id: str, item_ids: Iterable[str], actor: str, why: str
) -> list[Any]:
    """The transaction parts that make items of this invoice pending again (a regenerated draft)."""
    return _release(tenant_id, invoice_id, item_ids, actor, why)


def _write(
    record: Invoice, actions: list[Action], condition: Any, releases: list[Any], owed: Decimal = Decimal(0)
) -> None:
    """One update of the invoice, with its items' releases and the change `owed` of its contact's
    account balance (store/account_balances) in the same transaction when any."""
    account_balances.write_invoice_with_balance(record, actions, condition, owed, releases)


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
    rules: tax.TaxRules | None = None,
) -> tuple[Invoice, bool]:
    """Apply a person's edit; the stored invoice and True when QuickBooks must take the new version.
    `rules`: the tenant's invoice tax rules (issue 15), so edited lines are taxed as new ones are.

    Conflict when `expected_version` is not the stored one (someone else edited it meanwhile)."""
    record = get(tenant_id, invoice_id)
    check_unlocked(record, "edited")
    if expected_version is not None and expected_version != int(record.version):
        raise Conflict(
            f"invoice {invoice_id!r} is at version {record.version}, not {expected_version}: read it again"
        )
    if record.sync_status == SyncStatus.UNKNOWN:
        raise Conflict(
            f"invoice {invoice_id!r}: QuickBooks' answer to its last sync is not known yet; try again shortly"
        )
    edit = _with_product_names(tenant_id, edit)
    edit = _with_tax_rates(tenant_id, edit)
    done = invoice_edits.apply_edit(content(record), edit, rules)
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
    if record.sync_status == SyncStatus.SYNCED and record.qbo_id:
        # QuickBooks holds this version: kept, so an edit it refuses can give it back (wt-credit)
        actions.append(Invoice.last_good.set(edit_refusals.snapshot(record)))
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
    owed = account_balances.owed_delta(record, str(record.status), done.balance)
    released = _release(tenant_id, invoice_id, done.released_item_ids, actor, why)
    _write(record, actions, condition, released, owed)
    to_quickbooks = (
        record.destination == str(dm.Destination.QUICKBOOKS) and record.sync_status != SyncStatus.NOT_SYNCED
    )
    return get(tenant_id, invoice_id), to_quickbooks


def _with_tax_rates(tenant_id: str, edit: invoice_edits.InvoiceEdit) -> invoice_edits.InvoiceEdit:
    """The rates of the tax codes an edit's lines name (issue 15; an unknown or inactive code
    keeps None: refused naming the line's tax_code_id), and whether a product a line is given is
    non-taxable (its line is then untaxed unless the line itself names a code)."""
    if not edit.lines:
        return edit
    from fieldbill.store import tax_codes  # only edits that name a code or a product read them

    lines = edit.lines
    if any(line.tax_code_id for line in lines):
        codes = tax_codes.rules(tenant_id).codes
        lines = tuple(
            dataclasses.replace(line, tax_rate=found.rate)
            if line.tax_code_id and (found := codes.get(line.tax_code_id)) is not None and found.active
            else line
            for line in lines
        )
    wanted = [line.product_id for line in lines if line.product_id]
    if wanted:
        products = tax_codes.ProductChoices(tenant_id)
        products.prefetch(wanted)
        lines = tuple(
            dataclasses.replace(line, product_non_taxable=True)
            if line.product_id
            and (choice := products.get(line.product_id)) is not None
            and choice.taxable is False
            else line
            for line in lines
        )
    return dataclasses.replace(edit, lines=lines)


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
    check_unlocked(record, str(InvoiceStatus.DELETED))
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
    check_unlocked(record, str(InvoiceStatus.VOID))
    why = reason or "voided"
    decided = _status_change(record, InvoiceStatus.VOID, actor, why, [Invoice.balance.set(Decimal("0"))])
    releases = _release(
        tenant_id, invoice_id, [str(i) for i in record.item_ids or []], actor, f"invoice {invoice_id} voided"
    )
    owed = account_balances.owed_delta(record, str(InvoiceStatus.VOID), Decimal("0"))
    _write(record, decided.actions, decided.condition & _unchanged(record), releases, owed)
    in_quickbooks = bool(record.qbo_id) or record.sync_status in IN_FLIGHT
    return get(tenant_id, invoice_id), record.destination == str(dm.Destination.QUICKBOOKS) and in_quickbooks


def mark_sent(tenant_id: str, invoice_id: str, actor: str, via: str) -> Invoice:
    """A draft becomes open; an invoice already open (or paid) records that it was sent again."""
    record = get(tenant_id, invoice_id)
    stamp = now_iso()
    extra: list[Action] = [Invoice.sent_at.set(stamp), Invoice.sent_via.set(via)]
    if record.status == InvoiceStatus.DRAFT:
        decided = _status_change(record, InvoiceStatus.OPEN, actor, f"sent ({via})", extra)
        owed = account_balances.owed_delta(record, str(InvoiceStatus.OPEN), _balance(record))
        _write(record, decided.actions, decided.condition & _unchanged(record), [], owed)
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


def move_to_quickbooks(tenant_id: str, invoice_id: str, actor: str) -> Invoice:
    """A local invoice goes to QuickBooks Online from now on: its destination changes in one
    conditional write, with who and why in its history (the caller then queues its sync). One
    already going there is answered as it is; a void or deleted one, or a job invoice, is refused."""
    record = get(tenant_id, invoice_id)
    if record.destination == str(dm.Destination.QUICKBOOKS):
        return record
    if record.destination != str(dm.Destination.LOCAL):
        raise ValidationError(
            "destination", f"a {record.destination} invoice cannot move to QuickBooks Online"
        )
    if record.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        raise InvalidTransition(
            SYNC_MACHINE.name, record.sync_status, SyncStatus.PENDING, f"the invoice is {record.status}"
        )
    check_unlocked(record, str(SyncStatus.PENDING))
    why = "moved from local to QuickBooks Online"
    actions: list[Action] = [
        Invoice.destination.set(str(dm.Destination.QUICKBOOKS)),
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(Invoice.history.append([_note(actor, record.status, why)])),
    ]
    _write(record, actions, _unchanged(record) & (Invoice.destination == str(dm.Destination.LOCAL)), [])
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
    owed = account_balances.owed_delta(record, str(InvoiceStatus.OPEN), _balance(record))
    try:
        account_balances.write_invoice_with_balance(record, decided.actions, decided.condition, owed)
    except Conflict:
        return False
    return True


def _balance(record: Invoice) -> Decimal:
    """What the invoice still owes (a record written before balances were kept owes its total)."""
    return Decimal(record.balance if record.balance is not None else record.total)


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
    extra: list[Action] = [Invoice.payments.set(kept)]
    if removed.qbo_id:
        extra.append(Invoice.removed_payments.set([*(record.removed_payments or []), removed]))
    return _write_balance(record, after, actor, why, extra), removed.qbo_id


def payment_removal_waiting(record: Invoice, linked_payment_ids: Iterable[str]) -> Decimal:
    """Payments removed here that QuickBooks' copy of the invoice still lists (its Payment not
    deleted there yet): the inbound flow adds them back to QuickBooks' balance, so a late event
    or the backfill never brings a removed payment back."""
    linked = set(linked_payment_ids)
    return sum(
        (Decimal(p.amount) for p in record.removed_payments or [] if p.qbo_id and str(p.qbo_id) in linked),
        Decimal("0"),
    )


def _write_balance(record: Invoice, after: Any, actor: str, reason: str, extra: list[Action]) -> Invoice:
    target = states.status_for_balance(InvoiceStatus(record.status), record.total, after.balance)
    extra = [
        *extra,
        Invoice.amount_paid.set(after.amount_paid),
        Invoice.amount_credited.set(after.amount_credited),
        Invoice.balance.set(after.balance),
    ]
    owed = account_balances.owed_delta(record, str(target), after.balance)
    write_with_status(record, target, actor, reason, extra, _unchanged(record), [], owed)
    return get(record.tenant_id, record.id)


def write_with_status(
    record: Invoice,
    target: Any,
    actor: str,
    reason: str,
    extra: list[Action],
    condition: Any,
    releases: list[Any],
    owed: Decimal,
) -> None:
    """A balance change's one write: through the invoice machine when the status moves (paid,
    partly paid, open), else a history note; `condition` and the account balance's `owed` with it."""
    if target != record.status:
        decided = _status_change(record, target, actor, reason, extra)
        _write(record, decided.actions, decided.condition & condition, releases, owed)
        return
    actions = [
        *extra,
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(Invoice.history.append([_note(actor, record.status, reason)])),
    ]
    _write(record, actions, condition, releases, owed)


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
    # --- recurring billing (issue 16) and issue 13 item 6: filters on the contact and a search.
    account_balance: AmountFilter | None = None
    tag: str | None = None
    q: str | None = None
    bill_profile_id: str | None = None
    period_key: str | None = None
    sort: str = "date"  # date | -date | number | -number | total | -total | balance | -balance
    # --- job invoices (issue 14)
    job_id: str | None = None
    invoice_type: str | None = None
    policy: str | None = None
    workflow_status: str | None = None


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
    if wanted.bill_profile_id:
        parts.append(Invoice.bill_profile_id == wanted.bill_profile_id)
    if wanted.period_key:
        parts.append(Invoice.period_key == wanted.period_key)
    for name in ("job_id", "invoice_type", "policy", "workflow_status"):  # job invoices (issue 14)
        if getattr(wanted, name):
            parts.append(getattr(Invoice, name) == getattr(wanted, name))
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


# ---------------------------------------------------------------------------- the list with account balances
# (issue 16 item 5, issue 13 item 6): account balance, tag and text search are decided on the
# invoices DynamoDB read (they live on the contact, not the invoice); sorting by anything but the
# date reads every match (at most SORT_MAX) and pages the sorted list by offset.
SORT_MAX = 10_000
SORTS = ("date", "number", "total", "balance")


@dataclass
class Listed:
    records: list[Invoice]
    next_cursor: str | None
    account_balances: dict[str, Decimal]


def _contact_ids(tenant_id: str, tag: str | None, q: str | None) -> tuple[set[str] | None, set[str]]:
    """Contacts with the tag (None: no tag filter) and contacts whose name holds `q`: one query."""
    if tag is None and q is None:
        return None, set()
    tagged: set[str] = set()
    named: set[str] = set()
    needle = q.lower() if q else None
    for record in Entity.gsi1.query(Contact.list_key(tenant_id)):
        if not isinstance(record, Contact):
            continue
        if tag is not None and tag in (record.tags or []):
            tagged.add(record.id)
        if needle and needle in str(record.name).lower():
            named.add(record.id)
    return (tagged if tag is not None else None), named


def _admits(
    record: Invoice,
    wanted: InvoiceFilter,
    balances: dict[str, Decimal],
    tagged: set[str] | None,
    named: set[str],
) -> bool:
    if wanted.account_balance is not None:
        mine = balances.get(record.contact_id, Decimal("0"))
        if not _COMPARE[wanted.account_balance.operator](mine, wanted.account_balance.amount):
            return False
    if tagged is not None and record.contact_id not in tagged:
        return False
    if wanted.q:
        needle = wanted.q.lower()
        numbers = (record.number or "", record.qbo_doc_number or "", record.id)
        if record.contact_id not in named and not any(needle in n.lower() for n in numbers):
            return False
    return True


_COMPARE = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "gte": lambda a, b: a >= b,
}


def _number_order(text: str) -> tuple[int, int, str]:
    """Numbers in numeric order (999 before 1000), then anything else (ids) as text."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _sort_key(field: str) -> Any:
    if field == "number":
        # The number a person sees (documents/views.number_of): ours, QuickBooks', else the id.
        return lambda r: (_number_order(r.number or r.qbo_doc_number or r.id), r.gsi1sk or "")
    if field == "total":
        return lambda r: (Decimal(r.total or 0), r.gsi1sk or "")
    if field == "balance":
        return lambda r: (Decimal(r.balance if r.balance is not None else r.total or 0), r.gsi1sk or "")
    return lambda r: r.gsi1sk or ""


def find_listed(tenant_id: str, wanted: InvoiceFilter, limit: int, cursor: str | None) -> Listed:
    """One page of the list with each contact's account balance. Requests: the account balances
    (one query), the contacts when a tag or a search is given (one query), and the invoices (a
    request per READ_AHEAD invoices read, as `find`)."""
    field = wanted.sort.lstrip("-")
    if field not in SORTS:
        raise ValidationError("sort", "use date, number, total or balance, with - for descending")
    descending = wanted.sort.startswith("-")
    balances = account_balances.all_balances(tenant_id)
    tagged, named = _contact_ids(tenant_id, wanted.tag, wanted.q)
    list_key = Invoice.list_key(tenant_id)
    if field != "date":
        return _sorted_page(tenant_id, wanted, limit, cursor, balances, tagged, named, field, descending)
    checked = common.checked_cursor(cursor, gsi1pk=list_key)
    query = Entity.gsi1.query(
        list_key,
        _range(wanted),
        filter_condition=_conditions(wanted),
        scan_index_forward=not descending,
        page_size=READ_AHEAD,
        last_evaluated_key=common.decode_cursor(checked),
    )
    records: list[Invoice] = []
    for record in query:
        if isinstance(record, Invoice) and _admits(record, wanted, balances, tagged, named):
            records.append(record)
            if len(records) == limit:
                # The page ends right after its last invoice (the query stops reading here).
                return Listed(records, common.cursor_after_gsi1(record), balances)
    return Listed(records, common.encode_cursor(query.last_evaluated_key), balances)


def _range(wanted: InvoiceFilter) -> Any:
    low = wanted.issue_date_from.isoformat() if wanted.issue_date_from else None
    high = f"{wanted.issue_date_to.isoformat()}#\uffff" if wanted.issue_date_to else None
    if low and high:
        return Entity.gsi1sk.between(low, high)
    if low:
        return Entity.gsi1sk >= low
    if high:
        return Entity.gsi1sk <= high
    return None


def _sorted_page(
    tenant_id: str,
    wanted: InvoiceFilter,
    limit: int,
    cursor: str | None,
    balances: dict[str, Decimal],
    tagged: set[str] | None,
    named: set[str],
    field: str,
    descending: bool,
) -> Listed:
    list_key = Invoice.list_key(tenant_id)
    offset = 0
    if cursor:
        decoded = common.decode_cursor(common.checked_cursor(cursor, gsi1pk=list_key)) or {}
        given = decoded.get("offset")
        if not isinstance(given, int) or given < 0 or decoded.get("sort") != wanted.sort:
            raise ValidationError("cursor", "not a cursor this API returned for this list")
        offset = given
    query = Entity.gsi1.query(
        list_key, _range(wanted), filter_condition=_conditions(wanted), page_size=READ_AHEAD
    )
    matches: list[Invoice] = []
    for record in query:
        if isinstance(record, Invoice) and _admits(record, wanted, balances, tagged, named):
            matches.append(record)
            if len(matches) > SORT_MAX:
                raise ValidationError("sort", f"more than {SORT_MAX} invoices match: narrow the filter")
    matches.sort(key=_sort_key(field), reverse=descending)
    page = matches[offset : offset + limit]
    more = offset + limit < len(matches)
    next_cursor = (
        common.encode_cursor({"gsi1pk": {"S": list_key}, "offset": offset + limit, "sort": wanted.sort})
        if more
        else None
    )
    return Listed(page, next_cursor, balances)


# ---------------------------------------------------------------------------- bulk resume (wt-life2)
@dataclass(frozen=True, slots=True)
class HistoryChange:
    """One history entry of an invoice, as a bulk operation resuming after a crash reads it."""

    at: str
    from_status: str | None
    to_status: str
    reason: str | None


def changes_by(tenant_id: str, invoice_id: str, actor: str, since: str) -> list[HistoryChange]:
    """What `actor` changed on the invoice since `since` (ISO time), oldest first: a redelivered
    bulk operation tells a command it already applied from one it has still to do."""
    record = get(tenant_id, invoice_id)
    return [
        HistoryChange(at=str(h.at), from_status=h.from_state, to_status=str(h.to_state), reason=h.reason)
        for h in record.history or []
        if h.actor == actor and str(h.at) >= since
    ]
