"""Audit trails: the record behind GET /history/{entity}/{id}, or its tombstone once deleted.

Every record carries its history (appended in the write that changes it); a delete leaves a
tombstone (the record, its history and the deletion) in the tenant's DELETED partition, outside
every index (store/catalog.py writes it), so nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Mapping

from fieldbill.domain.errors import NotFound
from fieldbill.store import common
from fieldbill.store.catalog import NAMED, assignment_key, key_of
from fieldbill.store.models import (
    META,
    BillableItem,
    BillingRun,
    Entity,
    Invoice,
    Job,
    Operation,
    ProductAssignment,
    Task,
    TaskEntry,
    Visit,
    Worker,
)

# The entity names of /history/{entity}/{id} that are one record per id (assignments and entries
# have their own keys: below).
HISTORY: Mapping[str, type[Entity]] = {
    **NAMED,
    "task": Task,
    "billable-item": BillableItem,
    "invoice": Invoice,
    "billing-run": BillingRun,
    "operation": Operation,
    "job": Job,  # job-shop jobs (issue 14)
    "service": Visit,  # completed services (issue 17)
    "worker": Worker,
}


def tombstone(tenant_id: str, entity: str, record_id: str) -> Entity | None:
    """The last tombstone of a deleted record, if any."""
    query = Entity.query(
        common.deleted_key(tenant_id),
        Entity.sk.startswith(f"{entity}#{record_id}#"),
        scan_index_forward=False,
        limit=1,
    )
    return next(iter(query), None)


def history_of(
    tenant_id: str,
    entity: str,
    record_id: str,
    model: type[Entity] | None,
    pk: str | None = None,
    sk: str = META,
) -> tuple[Entity, bool]:
    """A record for its audit trail, or its tombstone once deleted (second value True)."""
    if model is None:
        raise NotFound("entity type", entity)
    record = common.find(model, pk or key_of(model, tenant_id, record_id), sk)
    if record is not None:
        return record, False
    tomb = tombstone(tenant_id, entity, record_id)
    if tomb is None:
        raise NotFound(entity, record_id)
    return tomb, True


def history_record(tenant_id: str, entity: str, record_id: str) -> tuple[Entity, bool]:
    """The record behind /history/{entity}/{id} (catalogue, work and billing entities)."""
    if entity == "assignment":
        _, sk = assignment_key(record_id)
        return history_of(
            tenant_id, entity, record_id, ProductAssignment, ProductAssignment.key(tenant_id), sk
        )
    return history_of(tenant_id, entity, record_id, HISTORY.get(entity))


def entry_history(tenant_id: str, task_id: str, entry_id: str) -> tuple[Entity, bool]:
    """A task entry for its audit trail (it lives in its task's partition), or its tombstone."""
    return history_of(
        tenant_id,
        "entry",
        entry_id,
        TaskEntry,
        TaskEntry.key(tenant_id, task_id),
        TaskEntry.sort_key(entry_id),
    )
