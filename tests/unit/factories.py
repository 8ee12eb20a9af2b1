"""Factories for domain records: sensible defaults, override what the test is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fieldbill.domain.model import (
    BillingContext,
    Contact,
    EntryKind,
    LineKind,
    PriceList,
    Product,
    ProductAssignment,
    ProductScope,
    Task,
    TaskEntry,
)
from fieldbill.domain.products import Assignments

TENANT = "t1"
START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def contact(**kw: Any) -> Contact:
    values: dict[str, Any] = {"id": "c1", "tenant_id": TENANT, "name": "Pool Owner"}
    return Contact(**(values | kw))


def task(**kw: Any) -> Task:
    values: dict[str, Any] = {
        "id": "task1",
        "tenant_id": TENANT,
        "title": "Pool service",
        "client_contact_id": "c1",
        "billable": True,
    }
    return Task(**(values | kw))


def billing(**kw: Any) -> BillingContext:
    return BillingContext(**kw)


def time_entry(id: str = "e1", minutes: int = 90, **kw: Any) -> TaskEntry:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": TENANT,
        "task_id": "task1",
        "kind": EntryKind.TIME,
        "started_at": START,
        "stopped_at": START + timedelta(minutes=minutes),
    }
    return TaskEntry(**(values | kw))


def mileage_entry(id: str = "m1", km: str = "12.5", minutes: str | None = None, **kw: Any) -> TaskEntry:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": TENANT,
        "task_id": "task1",
        "kind": EntryKind.MILEAGE,
        "started_at": START,
        "distance_km": Decimal(km),
        "transport_minutes": None if minutes is None else Decimal(minutes),
    }
    return TaskEntry(**(values | kw))


def goods_entry(id: str = "g1", qty: str = "3", price: str | None = "4.50", **kw: Any) -> TaskEntry:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": TENANT,
        "task_id": "task1",
        "kind": EntryKind.GOODS,
        "started_at": START,
        "quantity": Decimal(qty),
        "unit_price": None if price is None else Decimal(price),
    }
    return TaskEntry(**(values | kw))


def expense_entry(id: str = "x1", qty: str = "1", price: str | None = "20", **kw: Any) -> TaskEntry:
    return goods_entry(id=id, qty=qty, price=price, kind=EntryKind.EXPENSE, **kw)


def product(id: str, price: str | None = None, unit: str | None = "hour", **kw: Any) -> Product:
    values: dict[str, Any] = {
        "id": id,
        "tenant_id": TENANT,
        "name": id.title(),
        "unit": unit,
        "default_unit_price": None if price is None else Decimal(price),
    }
    return Product(**(values | kw))


def price_list(id: str, **prices: str) -> PriceList:
    return PriceList(id=id, tenant_id=TENANT, name=id, prices={k: Decimal(v) for k, v in prices.items()})


def assign(scope: ProductScope, scope_id: str, line_kind: LineKind, product_id: str) -> ProductAssignment:
    return ProductAssignment(
        tenant_id=TENANT, scope=scope, scope_id=scope_id, line_kind=line_kind, product_id=product_id
    )


def assignments(*items: ProductAssignment) -> Assignments:
    return Assignments(items)
