"""Compile: a task's eligible entries become pending billable items.

Eligible = unbilled and stopped entries of a billable task whose client is a contact.
Each eligible entry yields one item per line kind:

| entry kind | line kinds                                           | quantity          |
|------------|------------------------------------------------------|-------------------|
| time       | task_entry                                           | hours (duration)  |
| goods      | goods                                                | quantity          |
| expense    | expense                                              | quantity          |
| mileage    | transport_distance; transport_time if minutes > 0    | km; minutes / 60  |

Item ids are f"{entry_id}.{line_kind}": compiling twice (a retry, a double click) names the same
items, and the store's conditional put turns the second write into a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import (
    BillableItem,
    Contact,
    EntryKind,
    EntryStatus,
    LineKind,
    PriceList,
    Product,
    Task,
    TaskEntry,
)
from fieldbill.domain.pricing import price_line
from fieldbill.domain.products import AssignmentLookup, resolve_product

_DESCRIPTION_SUFFIX: Mapping[LineKind, str] = {
    LineKind.TRANSPORT_DISTANCE: " (transport distance)",
    LineKind.TRANSPORT_TIME: " (transport time)",
}


def billable_item_id(entry_id: str, line_kind: LineKind) -> str:
    return f"{entry_id}.{line_kind.value}"


def line_kinds_for(entry: TaskEntry) -> tuple[LineKind, ...]:
    if entry.kind is EntryKind.TIME:
        return (LineKind.TASK_ENTRY,)
    if entry.kind is EntryKind.GOODS:
        return (LineKind.GOODS,)
    if entry.kind is EntryKind.EXPENSE:
        return (LineKind.EXPENSE,)
    if entry.transport_minutes:  # None or 0: no time line to bill
        return (LineKind.TRANSPORT_DISTANCE, LineKind.TRANSPORT_TIME)
    return (LineKind.TRANSPORT_DISTANCE,)


def line_quantity(entry: TaskEntry, line_kind: LineKind) -> Decimal:
    """Quantity of one line, kept to 6 places (money.quantity)."""
    if line_kind == LineKind.TASK_ENTRY:
        if entry.stopped_at is None:
            raise ValidationError("stopped_at", "a running time entry has no quantity yet")
        return money.hours_from_duration(entry.stopped_at - entry.started_at)
    if line_kind == LineKind.TRANSPORT_DISTANCE:
        return money.quantity(entry.distance_km or Decimal(0))
    if line_kind == LineKind.TRANSPORT_TIME:
        return money.hours_from_minutes(entry.transport_minutes or Decimal(0))
    return money.quantity(entry.quantity or Decimal(0))


def task_is_billable(task: Task) -> bool:
    return task.billable and task.client_contact_id is not None


def is_eligible(task: Task, entry: TaskEntry) -> bool:
    return task_is_billable(task) and entry.status is EntryStatus.UNBILLED and entry.is_stopped


def _check_inputs(task: Task, contact: Contact | None, entries: list[TaskEntry]) -> None:
    if contact is not None and (contact.id != task.client_contact_id or contact.tenant_id != task.tenant_id):
        raise ValidationError("contact", f"contact {contact.id!r} is not the client of task {task.id!r}")
    for entry in entries:
        if entry.task_id != task.id or entry.tenant_id != task.tenant_id:
            raise ValidationError("entries", f"entry {entry.id!r} does not belong to task {task.id!r}")


def compile_task(
    task: Task,
    contact: Contact | None,
    entries: Iterable[TaskEntry],
    assignments: AssignmentLookup,
    price_lists: Mapping[str, PriceList],
    products: Mapping[str, Product],
) -> list[BillableItem]:
    """Pending billable items for the task's eligible entries, ordered by work date then id.

    contact is the task's client contact (None when the client is not a contact); ineligible
    entries are skipped, never an error. The caller marks the source entries billed.
    """
    entries = list(entries)
    _check_inputs(task, contact, entries)
    if contact is None or not task_is_billable(task):
        return []
    items = [
        _compile_line(task, contact, entry, line_kind, assignments, price_lists, products)
        for entry in entries
        if is_eligible(task, entry)
        for line_kind in line_kinds_for(entry)
    ]
    return sorted(items, key=lambda item: (item.work_date, item.id))


def _compile_line(
    task: Task,
    contact: Contact,
    entry: TaskEntry,
    line_kind: LineKind,
    assignments: AssignmentLookup,
    price_lists: Mapping[str, PriceList],
    products: Mapping[str, Product],
) -> BillableItem:
    resolved = resolve_product(
        line_kind, entry=entry, task=task, contact=contact, assignments=assignments, products=products
    )
    product = resolved.product
    price = price_line(
        line_kind, entry=entry, task=task, contact=contact, product=product, price_lists=price_lists
    )
    qty = line_quantity(entry, line_kind)
    return BillableItem(
        id=billable_item_id(entry.id, line_kind),
        tenant_id=task.tenant_id,
        entry_id=entry.id,
        task_id=task.id,
        contact_id=contact.id,
        line_kind=line_kind,
        work_date=entry.work_date,
        description=(entry.description or task.title) + _DESCRIPTION_SUFFIX.get(line_kind, ""),
        product_id=product.id,
        product_name=product.name,
        product_scope=resolved.scope,
        unit=product.unit or task.billing.unit,
        quantity=qty,
        unit_price=price.unit_price,
        price_source=price.source,
        amount=money.line_amount(qty, price.unit_price),
    )
