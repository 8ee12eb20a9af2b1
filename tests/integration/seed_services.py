"""Completed services at scale for integration tests and the benchmark (issue 17): a pool company's
catalogue through the store's commands, then customers and completed visits with their billable
items written in batches (the items priced by the real domain code, as completing a visit does)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fieldbill.clock import now_iso
from fieldbill.domain.states import VisitStatus
from fieldbill.store import catalog, common
from fieldbill.store import services as store
from fieldbill.store.models import META, Contact, Entity

WORKERS = ("ana", "ben", "cy", "dee", "eli")
TAGS = ("residential", "commercial", "vip", "hoa")


@dataclass
class SeededServices:
    tenant_id: str
    contact_ids: list[str] = field(default_factory=list)
    visit_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


def seed_catalogue(tenant_id: str, actor: str = "seed", default_invoice_type: str = "local") -> None:
    store.put_settings(
        tenant_id,
        {
            "default_invoice_type": default_invoice_type,
            "pricing_source": "customer",
            "default_terms_days": 30,
        },
        actor,
    )
    for worker in WORKERS:
        catalog.workers.create(tenant_id, actor, {"id": worker, "name": worker.title()})
    store.create_role_product(
        tenant_id,
        actor,
        store.INVENTORY_ITEM,
        {"id": "chlorine", "name": "Chlorine tabs", "default_unit_price": Decimal("12.00"), "taxable": True},
    )
    store.create_role_product(
        tenant_id,
        actor,
        store.SERVICE_TYPE,
        {"id": "trip", "name": "Trip fee", "default_unit_price": Decimal("15.00"), "is_trip_fee": True},
    )
    store.create_role_product(
        tenant_id,
        actor,
        store.SERVICE_TYPE,
        {
            "id": "weekly",
            "name": "Weekly cleaning",
            "billing_method": "fixed",
            "default_unit_price": Decimal("85.00"),
            "trip_fee_id": "trip",
        },
    )
    store.create_role_product(
        tenant_id,
        actor,
        store.SERVICE_TYPE,
        {
            "id": "repair",
            "name": "Equipment repair",
            "billing_method": "hourly_per_worker",
            "default_unit_price": Decimal("60.00"),
            "taxable": True,
            "round_up_minutes": 15,
            "minimum_hours": Decimal("1"),
        },
    )


def seed_services(
    tenant_id: str,
    customers: int,
    visits_per_customer: int,
    *,
    rng: random.Random | None = None,
    month: date = date(2026, 11, 1),
    default_invoice_type: str = "local",
) -> SeededServices:
    rng = rng or random.Random(17)
    seed_catalogue(tenant_id, default_invoice_type=default_invoice_type)
    products = {
        p: common.get(store.Product, store.Product.key(tenant_id, p))
        for p in ("chlorine", "trip", "weekly", "repair")
    }
    workers = {w: catalog.workers.get(tenant_id, w) for w in WORKERS}
    settings = store.pricing_settings(store.get_settings(tenant_id))
    seeded = SeededServices(tenant_id)
    stamp = now_iso()
    with Entity.batch_write() as batch:
        for c in range(customers):
            contact_id = f"c{c:05d}"
            seeded.contact_ids.append(contact_id)
            batch.save(
                Contact(
                    pk=Contact.key(tenant_id, contact_id),
                    sk=META,
                    tenant_id=tenant_id,
                    id=contact_id,
                    gsi1pk=Contact.list_key(tenant_id),
                    gsi1sk=f"customer {c:05d}#{contact_id}",
                    name=f"Customer {c:05d}",
                    email=f"{contact_id}@example.com",
                    tags=[TAGS[c % 2], *([TAGS[2]] if c % 7 == 0 else [])],
                )
            )
            for v in range(visits_per_customer):
                day = month + timedelta(days=rng.randrange(28))
                start = datetime(day.year, day.month, day.day, 8 + rng.randrange(8), tzinfo=UTC)
                repair = rng.random() < 0.2
                crew = rng.sample(WORKERS, 2 if repair else 1)
                inventory = (
                    [{"item_id": "chlorine", "quantity": Decimal(rng.randrange(1, 4))}]
                    if rng.random() < 0.3
                    else []
                )
                data = {
                    "contact_id": contact_id,
                    "service_date": day,
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=rng.randrange(20, 150)),
                    "service_type_id": "repair" if repair else "weekly",
                    "worker_ids": crew,
                    "inventory": inventory,
                }
                visit = store.new_visit(tenant_id, f"{contact_id}-v{v:03d}", data, VisitStatus.COMPLETED)
                items, status = store.item_records(visit, products, {}, settings, workers)
                visit.item_ids = [i.id for i in items]  # type: ignore[misc]
                visit.completed_at = visit.created_at = visit.updated_at = stamp
                visit.history = [common.history_entry("seed", None, "completed", "seeded")]
                batch.save(visit)
                seeded.visit_ids.append(visit.id)
                for item in items:
                    item.created_at = item.updated_at = stamp
                    item.history = [
                        common.history_entry("seed", None, status, f"compiled from service {visit.id}")
                    ]
                    batch.save(item)
                    seeded.item_ids.append(item.id)
    return seeded
