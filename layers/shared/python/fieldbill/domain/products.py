"""Which product a billable line uses.

Resolution per line kind, first hit wins:

| # | scope      | source                                                                    |
|---|------------|---------------------------------------------------------------------------|
| 1 | entry      | the entry's explicit product_id, for the entry's primary line only (1)    |
| 2 | task       | assignment at task scope; else the task's billing product (task_entry only)|
| 3 | contact    | assignment at the client contact                                          |
| 4 | membership | assignment at the contact's membership                                    |
| 5 | team       | assignment at the contact's team                                          |
| 6 | tenant     | assignment at tenant scope                                                |
| 7 | default    | the tenant's built-in default product for the line kind (below)           |

(1) A mileage entry's product is a per-km product; its transport_time line is a different
product and is resolved from the assignments.

Built-in defaults, created once per tenant (auto_created=True) and reused:

| line kind          | product        | unit | default unit price |
|--------------------|----------------|------|--------------------|
| task_entry         | Work           | hour | none               |
| goods              | Work           | hour | none               |
| expense            | Work           | hour | none               |
| transport_distance | Transport      | km   | 5.0                |
| transport_time     | Transport Time | hour | 1000.0             |

The domain only names them (deterministic ids such as "default-work"; product keys are
tenant-scoped in the store): the store creates a missing one with a conditional put and keeps
an existing one, so a tenant's edits to a default product are respected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from fieldbill.domain.errors import NotFound, ValidationError
from fieldbill.domain.model import (
    BillableItem,
    Contact,
    EntryKind,
    LineKind,
    Product,
    ProductAssignment,
    ProductScope,
    Task,
    TaskEntry,
)


@dataclass(frozen=True, slots=True)
class DefaultProduct:
    name: str
    unit: str
    default_unit_price: Decimal | None


_WORK = DefaultProduct("Work", "hour", None)
DEFAULT_PRODUCTS: Mapping[LineKind, DefaultProduct] = {
    LineKind.TASK_ENTRY: _WORK,
    LineKind.GOODS: _WORK,
    LineKind.EXPENSE: _WORK,
    LineKind.TRANSPORT_DISTANCE: DefaultProduct("Transport", "km", Decimal("5.0")),
    LineKind.TRANSPORT_TIME: DefaultProduct("Transport Time", "hour", Decimal("1000.0")),
}

PRIMARY_LINE_KIND: Mapping[EntryKind, LineKind] = {
    EntryKind.TIME: LineKind.TASK_ENTRY,
    EntryKind.GOODS: LineKind.GOODS,
    EntryKind.EXPENSE: LineKind.EXPENSE,
    EntryKind.MILEAGE: LineKind.TRANSPORT_DISTANCE,
}


def default_product_id(name: str) -> str:
    """Deterministic id of a built-in default product: "Transport Time" -> "default-transport-time"."""
    return "default-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def default_product_spec(tenant_id: str, line_kind: LineKind) -> Product:
    """The product to create when the tenant's default for this line kind does not exist yet."""
    default = DEFAULT_PRODUCTS[line_kind]
    return Product(
        id=default_product_id(default.name),
        tenant_id=tenant_id,
        name=default.name,
        unit=default.unit,
        default_unit_price=default.default_unit_price,
        auto_created=True,
    )


def default_products_for(tenant_id: str, items: Iterable[BillableItem]) -> list[Product]:
    """Specs of the default products the items use, once each, for the store to ensure exist."""
    specs: dict[str, Product] = {}
    for item in items:
        if item.product_scope is ProductScope.DEFAULT:
            spec = default_product_spec(tenant_id, item.line_kind)
            specs.setdefault(spec.id, spec)
    return [specs[key] for key in sorted(specs)]


class AssignmentLookup(Protocol):
    def product_for(self, scope: ProductScope, scope_id: str, line_kind: LineKind) -> str | None: ...


class Assignments:
    """In-memory AssignmentLookup over the assignments the store loaded."""

    def __init__(self, assignments: Iterable[ProductAssignment] = ()) -> None:
        self._by_key: dict[tuple[ProductScope, str, LineKind], str] = {}
        for a in assignments:
            key = (a.scope, a.scope_id, a.line_kind)
            if self._by_key.get(key, a.product_id) != a.product_id:
                # Two products for one slot would make resolution depend on load order.
                raise ValidationError("assignments", f"two products assigned for {key}")
            self._by_key[key] = a.product_id

    def product_for(self, scope: ProductScope, scope_id: str, line_kind: LineKind) -> str | None:
        return self._by_key.get((scope, scope_id, line_kind))


@dataclass(frozen=True, slots=True)
class ResolvedProduct:
    product: Product
    scope: ProductScope


def _scope_chain(task: Task, contact: Contact) -> list[tuple[ProductScope, str | None]]:
    return [
        (ProductScope.TASK, task.id),
        (ProductScope.CONTACT, contact.id),
        (ProductScope.MEMBERSHIP, contact.membership_id),
        (ProductScope.TEAM, contact.team_id),
        (ProductScope.TENANT, task.tenant_id),
    ]


def resolve_product_id(
    line_kind: LineKind,
    *,
    entry: TaskEntry,
    task: Task,
    contact: Contact,
    assignments: AssignmentLookup,
) -> tuple[str, ProductScope]:
    """Product id and the scope it came from; falls back to the default product's id."""
    if entry.product_id and PRIMARY_LINE_KIND[entry.kind] == line_kind:
        return entry.product_id, ProductScope.ENTRY
    for scope, scope_id in _scope_chain(task, contact):
        if scope_id is None:
            continue
        product_id = assignments.product_for(scope, scope_id, line_kind)
        if product_id is None and scope is ProductScope.TASK and line_kind == LineKind.TASK_ENTRY:
            # The task's own billing product is what its time is sold as.
            product_id = task.billing.product_id
        if product_id:
            return product_id, scope
    return default_product_id(DEFAULT_PRODUCTS[line_kind].name), ProductScope.DEFAULT


def resolve_product(
    line_kind: LineKind,
    *,
    entry: TaskEntry,
    task: Task,
    contact: Contact,
    assignments: AssignmentLookup,
    products: Mapping[str, Product],
) -> ResolvedProduct:
    """The product record for a line. A dangling reference is an error, not a silent fallback."""
    product_id, scope = resolve_product_id(
        line_kind, entry=entry, task=task, contact=contact, assignments=assignments
    )
    product = products.get(product_id)
    if product is None and scope is ProductScope.DEFAULT:
        product = default_product_spec(task.tenant_id, line_kind)
    if product is None:
        raise NotFound("product", product_id)
    return ResolvedProduct(product, scope)
