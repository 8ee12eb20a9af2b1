"""Generate draft invoices from selected pending billable items.

Grouping modes (one invoice per group; an invoice is always for a single contact):

| mode              | group key                                            |
|-------------------|------------------------------------------------------|
| per_contact       | contact id                                           |
| per_task          | task id + contact id (a task's client may have changed between compiles) |
| per_contact_month | contact id + "YYYY-MM" of the item's work date       |

Invoice ids are a UUID5 of (tenant, run id, sorted item ids): a retried generate names the same
invoices, so the store's conditional put cannot create a second one. Lines are ordered by
(work date, item id); line amounts are the items' amounts and the totals are their sum, so
nothing is rounded twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.domain.model import (
    BillableItem,
    Destination,
    GroupingMode,
    Invoice,
    InvoiceLine,
    ItemStatus,
)

DEFAULT_NET_DAYS = 30
# Fixed forever: changing it would rename every invoice a retry is expected to find.
_INVOICE_NAMESPACE = uuid.UUID("6f1c2a0e-2b7d-5c4e-9a51-3d8f0b7e4c21")


def invoice_id(tenant_id: str, run_id: str, item_ids: Iterable[str]) -> str:
    name = "\n".join([tenant_id, run_id, *sorted(item_ids)])
    return str(uuid.uuid5(_INVOICE_NAMESPACE, name))


def group_key(item: BillableItem, mode: GroupingMode) -> str:
    # == rather than `is`: a plain string from the API compares equal to the StrEnum member.
    if mode == GroupingMode.PER_CONTACT:
        return item.contact_id
    if mode == GroupingMode.PER_TASK:
        return f"{item.task_id}|{item.contact_id}"
    if mode == GroupingMode.PER_CONTACT_MONTH:
        return f"{item.contact_id}|{item.work_date:%Y-%m}"
    raise ValidationError("mode", f"unknown grouping mode {mode!r}")


def group_items(items: Iterable[BillableItem], mode: GroupingMode) -> dict[str, list[BillableItem]]:
    """Items per group key; keys sorted and items in line order, so output never depends on input order."""
    groups: dict[str, list[BillableItem]] = defaultdict(list)
    for item in items:
        groups[group_key(item, mode)].append(item)
    return {key: sorted(groups[key], key=_line_order) for key in sorted(groups)}


def _line_order(item: BillableItem) -> tuple[date, str]:
    return (item.work_date, item.id)


def _check_selection(items: Sequence[BillableItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValidationError("item_ids", f"billable item {item.id!r} selected twice")
        seen.add(item.id)
        if item.status is not ItemStatus.PENDING or item.invoice_id is not None:
            raise Conflict(f"billable item {item.id!r} is {item.status}, not pending")
    if len({item.tenant_id for item in items}) > 1:
        raise ValidationError("item_ids", "items of several tenants selected")


def build_invoice(
    items: Sequence[BillableItem],
    *,
    run_id: str,
    grouping: GroupingMode,
    issue_date: date,
    net_days: int = DEFAULT_NET_DAYS,
    destination: Destination = Destination.QUICKBOOKS,
) -> Invoice:
    """One draft invoice for one group of items (all of one contact)."""
    if not items:
        raise ValidationError("item_ids", "an invoice needs at least one item")
    if net_days < 0:
        raise ValidationError("net_days", "must not be negative")
    if len({item.contact_id for item in items}) > 1:
        raise ValidationError("item_ids", "an invoice is for a single contact")
    ordered = sorted(items, key=_line_order)
    first = ordered[0]
    lines = tuple(invoice_line(n, item) for n, item in enumerate(ordered, start=1))
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    return Invoice(
        id=invoice_id(first.tenant_id, run_id, (item.id for item in ordered)),
        tenant_id=first.tenant_id,
        run_id=run_id,
        contact_id=first.contact_id,
        grouping=grouping,
        group_key=group_key(first, grouping),
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=net_days),
        lines=lines,
        subtotal=subtotal,
        total=subtotal,  # no tax yet
        task_id=first.task_id if grouping == GroupingMode.PER_TASK else None,
        period=f"{first.work_date:%Y-%m}" if grouping == GroupingMode.PER_CONTACT_MONTH else None,
        destination=destination,
    )


def invoice_line(line_no: int, item: BillableItem) -> InvoiceLine:
    """An invoice's line for a billable item: every kind of invoice builds its lines here."""
    return InvoiceLine(
        line_no=line_no,
        item_id=item.id,
        line_kind=item.line_kind,
        work_date=item.work_date,
        description=item.description,
        product_id=item.product_id,
        product_name=item.product_name,
        unit=item.unit,
        quantity=item.quantity,
        unit_price=item.unit_price,
        amount=item.amount,
        taxable=item.taxable,
    )


def generate_invoices(
    items: Iterable[BillableItem],
    *,
    mode: GroupingMode,
    run_id: str,
    issue_date: date,
    net_days: int = DEFAULT_NET_DAYS,
    destination: Destination = Destination.QUICKBOOKS,
) -> list[Invoice]:
    """Draft invoices for the selected pending items, one per group, ordered by group key.

    Raises Conflict if an item is not pending (already invoiced, unbillable, void) and
    ValidationError for a duplicate selection. The caller marks the items invoiced.
    """
    selected = list(items)
    _check_selection(selected)
    return [
        build_invoice(
            group,
            run_id=run_id,
            grouping=mode,
            issue_date=issue_date,
            net_days=net_days,
            destination=destination,
        )
        for group in group_items(selected, mode).values()
    ]
