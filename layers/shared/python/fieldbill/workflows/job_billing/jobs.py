"""A job and its invoiceables: create, price charges from the price structure, change, close,
reopen, delete. The domain decides (domain/jobs.py), the store writes (store/jobs.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from fieldbill.domain import jobs as dj
from fieldbill.store import jobs as store

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Job


def priced(
    tenant_id: str, job_price_list: str | None, customer_id: str, item: dj.Invoiceable, given: Decimal | None
) -> dj.Invoiceable:
    """A charge priced from the active price structure (the job's price list, else its customer's,
    else the product's default price); an order item keeps its own unit price."""
    if item.kind is dj.InvoiceableKind.ORDER_ITEM:
        store.price_structure(tenant_id, item.product_id, None)  # the product must exist
        return item
    price_list = job_price_list or store.contact_price_list(tenant_id, customer_id)
    prices, default, _ = store.price_structure(tenant_id, item.product_id, price_list)
    unit_price = dj.charge_unit_price(item.product_id, given, prices, default)
    return dj.Invoiceable(
        id=item.id, kind=item.kind, description=item.description, product_id=item.product_id,
        quantity=item.quantity, unit_price=unit_price, category=item.category,
        charge_kind=item.charge_kind, taxable=item.taxable,
    )  # fmt: skip


def create(job: dj.Job, given_prices: dict[str, Decimal | None], actor: str) -> Job:
    store.customer_exists(job.tenant_id, job.customer_id)
    items = tuple(
        priced(job.tenant_id, job.price_list_id, job.customer_id, i, given_prices.get(i.id))
        for i in job.invoiceables
    )
    return store.create(dataclasses.replace(job, invoiceables=items), actor)


def _change(tenant_id: str, job_id: str, actor: str, why: str, decide: Callable[[dj.Job], dj.Job]) -> Job:
    record = store.get(tenant_id, job_id)
    changed = decide(store.to_domain(record))
    return store.save_invoiceables(record, changed, actor, why)


def add_invoiceable(
    tenant_id: str, job_id: str, item: dj.Invoiceable, given: Decimal | None, actor: str
) -> Job:
    record = store.get(tenant_id, job_id)
    job = store.to_domain(record)
    new = priced(tenant_id, job.price_list_id, job.customer_id, item, given)
    return store.save_invoiceables(
        record, dj.add_invoiceable(job, new), actor, f"invoiceable {item.id} added"
    )


def replace_invoiceable(
    tenant_id: str, job_id: str, item: dj.Invoiceable, given: Decimal | None, actor: str
) -> Job:
    record = store.get(tenant_id, job_id)
    job = store.to_domain(record)
    new = priced(tenant_id, job.price_list_id, job.customer_id, item, given)
    return store.save_invoiceables(
        record, dj.replace_invoiceable(job, new), actor, f"invoiceable {item.id} changed"
    )


def remove_invoiceable(tenant_id: str, job_id: str, invoiceable_id: str, actor: str) -> Job:
    return _change(
        tenant_id, job_id, actor, f"invoiceable {invoiceable_id} removed",
        lambda job: dj.remove_invoiceable(job, invoiceable_id),
    )  # fmt: skip


def set_status(tenant_id: str, job_id: str, target: dj.JobStatus, actor: str, reason: str | None) -> Job:
    return store.set_status(store.get(tenant_id, job_id), target, actor, reason)


def delete(tenant_id: str, job_id: str, actor: str) -> None:
    store.delete(store.get(tenant_id, job_id), actor)
