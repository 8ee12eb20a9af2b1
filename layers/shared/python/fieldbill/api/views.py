"""Records to response models (fieldbill.api.responses): only declared fields leave, money as plain
decimal strings, never floats or exponents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from fieldbill.api import responses as out
from fieldbill.clock import today
from fieldbill.domain import badges, money, states, tax
from fieldbill.domain.model import InvoiceStatus

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import (
        BillableItem,
        BillingRun,
        Contact,
        Entity,
        Invoice,
        Membership,
        Operation,
        PriceList,
        Product,
        ProductAssignment,
        Task,
        TaskEntry,
        Team,
    )

M = TypeVar("M", bound=out.Out)


def decimal_text(value: Decimal) -> str:
    """`72.50` stays `72.50`; `1E+3` is `1000`: a plain decimal string, whatever the stored exponent."""
    return format(value, "f")


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if hasattr(value, "as_dict"):  # a stored map (a MapAttribute): its plain values
        return plain(value.as_dict())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


def build(model: type[M], record: Entity, **extra: Any) -> M:
    """The response model of a record: its declared fields read from the record, nothing else."""
    values = {name: plain(getattr(record, name, None)) for name in model.model_fields if name not in extra}
    return model.model_validate({k: v for k, v in values.items() if v is not None} | extra)


def contact(record: Contact) -> out.ContactOut:
    return build(out.ContactOut, record)


def product(record: Product) -> out.ProductOut:
    return build(out.ProductOut, record)


def price_list(record: PriceList) -> out.PriceListOut:
    return build(out.PriceListOut, record)


def group(record: Membership | Team) -> out.GroupOut:
    return build(out.GroupOut, record)


def assignment(record: ProductAssignment) -> out.AssignmentOut:
    return build(out.AssignmentOut, record)


def task(record: Task) -> out.TaskOut:
    return build(out.TaskOut, record)


def entry(record: TaskEntry) -> out.EntryOut:
    return build(out.EntryOut, record)


def billing_run(record: BillingRun) -> out.BillingRunOut:
    return build(out.BillingRunOut, record)


def operation(record: Operation) -> out.OperationOut:
    return build(out.OperationOut, record)


def deleted(record_id: str) -> out.DeletedOut:
    return out.DeletedOut(deleted=True, id=record_id)


def history_entries(record: Entity) -> list[out.HistoryEntryOut]:
    return [
        out.HistoryEntryOut.model_validate(
            {"at": h.at, "actor": h.actor, "from": h.from_state, "to": h.to_state, "reason": h.reason}
        )
        for h in record.history or []
    ]


def history(entity: str, record_id: str, record: Entity, was_deleted: bool) -> out.HistoryOut:
    return out.HistoryOut(entity=entity, id=record_id, deleted=was_deleted, history=history_entries(record))


def page(model: type[M], records: Sequence[Entity], cursor: str | None) -> out.Page[M]:
    page_of: Any = out.Page[model]  # type: ignore[valid-type]
    return page_of(items=[build(model, r) for r in records], next_cursor=cursor)


def invoice_badge(record: Invoice) -> badges.BadgeView:
    error = record.sync_error.as_dict() if record.sync_error else None
    return badges.invoice_badge(record.destination, record.sync_status, error)


def invoice(
    record: Invoice, account_balance: Decimal | None = None, sync_wait: dict[str, Any] | None = None
) -> out.InvoiceOut:
    badge = invoice_badge(record)
    due = date.fromisoformat(record.due_date) if record.due_date else None
    return build(
        out.InvoiceOut,
        record,
        lines=[
            out.InvoiceLineOut.model_validate({k: v for k, v in plain(line).items() if v is not None})
            for line in record.lines or []
        ],
        payments=[
            out.PaymentOut.model_validate({k: v for k, v in plain(p).items() if v is not None})
            for p in record.payments or []
        ],
        credit_memos=credit_memos(record),
        overdue=states.is_overdue(InvoiceStatus(record.status), due, today()),
        tax_total=str(record.tax_total if record.tax_total is not None else "0.00"),
        totals_differ=tax.differs(record.total, record.qbo_total),
        dirty=bool(record.dirty),
        sync_wait=out.SyncWaitOut.model_validate(sync_wait) if sync_wait else None,
        badge=str(badge.badge),
        badge_detail=badge.detail,
        **(
            {} if account_balance is None else {"account_balance": decimal_text(money.cents(account_balance))}
        ),
    )


def item(record: BillableItem, invoice_of_item: Invoice | None, default_destination: str) -> out.ItemOut:
    badge = badges.item_badge(
        record.status,
        invoice_badge(invoice_of_item) if invoice_of_item is not None else None,
        record.destination or default_destination,
    )
    return build(out.ItemOut, record, badge=str(badge.badge), badge_detail=badge.detail)


def credit_memos(record: Invoice) -> list[out.CreditMemoOut]:
    """The invoice's credit memos (issue 13, wt-credit)."""
    return [
        out.CreditMemoOut.model_validate(
            {k: v for k, v in plain(c).items() if v is not None and k != "history"}
            | {"lines": [{k: v for k, v in plain(ln).items() if v is not None} for ln in c.lines or []]}
        )
        # live ones, then removed ones (wt-life): the audit of a credit memo stays visible
        for c in [*(record.credit_memos or []), *(record.removed_credit_memos or [])]
    ]
