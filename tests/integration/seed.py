"""Store-level factories for integration tests and the benchmark: real records, written in batches."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fieldbill.store.models import META, Contact, Entity, Task, TaskEntry


@dataclass
class Seeded:
    tenant_id: str
    contact_ids: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    entry_ids: list[str] = field(default_factory=list)


def seed_work(
    tenant_id: str,
    contacts: int,
    entries_per_contact: int,
    *,
    rng: random.Random | None = None,
    mileage_share: float = 0.3,
    month: datetime | None = None,
) -> Seeded:
    """Contacts, one billable task each, and stopped entries (time, some mileage) within one month."""
    rng = rng or random.Random(7)
    start = month or datetime(2026, 10, 1, tzinfo=UTC)
    seeded = Seeded(tenant_id)
    with Entity.batch_write() as batch:
        for c in range(contacts):
            contact_id, task_id = f"c{c:05d}", f"task{c:05d}"
            batch.save(
                Contact(
                    pk=Contact.key(tenant_id, contact_id),
                    sk=META,
                    tenant_id=tenant_id,
                    id=contact_id,
                    gsi1pk=Contact.list_key(tenant_id),
                    gsi1sk=f"customer {c}#{contact_id}",
                    name=f"Customer {c}",
                )
            )
            batch.save(
                Task(
                    pk=Task.key(tenant_id, task_id),
                    sk=META,
                    tenant_id=tenant_id,
                    id=task_id,
                    gsi1pk=Task.list_key(tenant_id),
                    gsi1sk=task_id,
                    title=f"Service {c}",
                    client_contact_id=contact_id,
                    billable=True,
                    status="done",
                    unit_price=Decimal("80.00"),
                )
            )
            seeded.contact_ids.append(contact_id)
            seeded.task_ids.append(task_id)
            for n in range(entries_per_contact):
                entry_id = f"e{c:05d}-{n:04d}"
                day = start + timedelta(days=rng.randint(0, 27), hours=8)
                mileage = rng.random() < mileage_share
                work_date = day.date().isoformat()
                entry = TaskEntry(
                    pk=TaskEntry.key(tenant_id, task_id),
                    sk=TaskEntry.sort_key(entry_id),
                    tenant_id=tenant_id,
                    id=entry_id,
                    task_id=task_id,
                    work_date=work_date,
                    started_at=day.isoformat(),
                    gsi2pk=TaskEntry.unbilled_key(tenant_id),
                    gsi2sk=TaskEntry.unbilled_sort_key(work_date, task_id, entry_id),
                )
                if mileage:
                    entry.kind = "mileage"
                    entry.distance_km = Decimal(rng.randint(10, 500)) / 10
                    entry.transport_minutes = Decimal(rng.choice([0, 15, 30]))
                else:
                    entry.kind = "time"
                    entry.stopped_at = (day + timedelta(minutes=rng.randint(5, 240))).isoformat()
                batch.save(entry)
                seeded.entry_ids.append(entry_id)
    return seeded


def entries_of(tenant_id: str, seeded: Seeded) -> list[TaskEntry]:
    out: list[TaskEntry] = []
    for task_id in seeded.task_ids:
        out += [
            e for e in TaskEntry.query(TaskEntry.key(tenant_id, task_id), TaskEntry.sk.startswith("ENTRY#"))
        ]
    return out
