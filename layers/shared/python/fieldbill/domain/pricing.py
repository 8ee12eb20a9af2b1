"""Unit price of a billable line, and where it came from (recorded as the item's price_source).

First source that has a price wins:

| # | transport_distance, transport_time       | task_entry, goods, expense                      |
|---|------------------------------------------|-------------------------------------------------|
| 1 | snapshot: price captured on the entry    | snapshot: price captured on the entry           |
| 2 | product: resolved product's default price| entry: the entry's own unit_price (goods/expense)|
| 3 | task: the task's billing unit price      | task: the task's billing unit price             |
| 4 |                                          | price_list: the product's price in the task's   |
|   |                                          | price list, else in the contact's price list    |
| 5 |                                          | product: resolved product's default unit price  |
| - | none: unit price 0                       | none: unit price 0                              |

Why the orders differ: a transport rate is a property of the transport product (the built-in
defaults carry 5.0/km and 1000.0/hour), so it beats the task's rate, which is an hourly rate for
the work. For work, goods and expenses the most specific agreement wins: what was captured on the
entry, then what was agreed for the task, then the customer's price list, then the catalogue.
With no source the line is still compiled, at 0, and marked price_source=none so it shows up.

Snapshot: the entry's snapshot_unit_price applies to its primary line; the transport_time line of
a mileage entry uses transport_time_snapshot_unit_price (a per-km price must not price hours).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import NotFound
from fieldbill.domain.model import (
    TRANSPORT_LINE_KINDS,
    Contact,
    LineKind,
    PriceList,
    PriceSource,
    Product,
    Task,
    TaskEntry,
)
from fieldbill.domain.products import PRIMARY_LINE_KIND


@dataclass(frozen=True, slots=True)
class Price:
    unit_price: Decimal
    source: PriceSource


def snapshot_price(entry: TaskEntry, line_kind: LineKind) -> Decimal | None:
    if line_kind == LineKind.TRANSPORT_TIME:
        return entry.transport_time_snapshot_unit_price
    return entry.snapshot_unit_price if PRIMARY_LINE_KIND[entry.kind] == line_kind else None


def price_list_for(task: Task, contact: Contact, price_lists: Mapping[str, PriceList]) -> PriceList | None:
    """The task's price list, else the contact's; a dangling reference is an error."""
    price_list_id = task.billing.price_list_id or contact.price_list_id
    if price_list_id is None:
        return None
    price_list = price_lists.get(price_list_id)
    if price_list is None:
        raise NotFound("price list", price_list_id)
    return price_list


def price_line(
    line_kind: LineKind,
    *,
    entry: TaskEntry,
    task: Task,
    contact: Contact,
    product: Product,
    price_lists: Mapping[str, PriceList],
) -> Price:
    """Unit price (kept to 6 places) and its source, following the table in the module docstring."""

    def from_price_list() -> Decimal | None:
        price_list = price_list_for(task, contact, price_lists)
        return price_list.price_for(product.id) if price_list else None

    sources: list[tuple[PriceSource, Callable[[], Decimal | None]]]
    if line_kind in TRANSPORT_LINE_KINDS:
        sources = [
            (PriceSource.SNAPSHOT, lambda: snapshot_price(entry, line_kind)),
            (PriceSource.PRODUCT, lambda: product.default_unit_price),
            (PriceSource.TASK, lambda: task.billing.unit_price),
        ]
    else:
        sources = [
            (PriceSource.SNAPSHOT, lambda: snapshot_price(entry, line_kind)),
            (PriceSource.ENTRY, lambda: entry.unit_price),
            (PriceSource.TASK, lambda: task.billing.unit_price),
            (PriceSource.PRICE_LIST, from_price_list),
            (PriceSource.PRODUCT, lambda: product.default_unit_price),
        ]
    # Lazy, so a price list is only required when the earlier sources are empty.
    for source, lookup in sources:
        value = lookup()
        if value is not None:
            return Price(money.unit_price(value), source)
    return Price(Decimal("0.000000"), PriceSource.NONE)
