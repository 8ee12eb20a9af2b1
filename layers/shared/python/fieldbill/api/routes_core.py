"""Contacts, tasks, task entries, and the audit trail of any record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api.schemas import (
    ContactIn,
    ContactPatch,
    Cursor,
    EntryIn,
    EntryPatch,
    NamePrefix,
    PageLimit,
    StopIn,
    TaskIn,
    TaskPatch,
    TaskStatus,
)
from fieldbill.store import catalog
from fieldbill.store.models import (
    BillableItem,
    BillingRun,
    Contact,
    Entity,
    Invoice,
    Operation,
    Task,
    TaskEntry,
)
from fieldbill.workflows import sync_queue

router = APIGatewayHttpRouter()

Limit = PageLimit


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


# ---------------------------------------------------------------------------- contacts
@router.post("/contacts", summary="Create a contact", tags=["contacts"])
def create_contact(body: ContactIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_named(Contact, _tenant(), _actor(), body.model_dump())), 201


@router.get("/contacts", summary="List contacts by name (filters: name prefix, tag)", tags=["contacts"])
def list_contacts(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None, tag: NamePrefix = None
) -> dict[str, Any]:
    return views.page(*catalog.list_contacts(_tenant(), limit, cursor, name_prefix, tag))


@router.get("/contacts/<contact_id>", summary="Get a contact", tags=["contacts"])
def get_contact(contact_id: str) -> dict[str, Any]:
    return views.view(catalog.get(Contact, _tenant(), contact_id))


@router.patch("/contacts/<contact_id>", summary="Change a contact (partial)", tags=["contacts"])
def update_contact(contact_id: str, body: ContactPatch) -> dict[str, Any]:
    record = catalog.update_named(Contact, _tenant(), contact_id, body.changes(), _actor())
    sync_queue.push(record.tenant_id, "sync_contact", record.id)  # the customer in QuickBooks follows
    return views.view(record)


@router.delete(
    "/contacts/<contact_id>",
    summary="Delete a contact nothing refers to (409 if it has tasks)",
    tags=["contacts"],
)
def delete_contact(contact_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(Contact, _tenant(), contact_id, _actor())
    return {"deleted": True, "id": contact_id}, 200


# ---------------------------------------------------------------------------- tasks
@router.post("/tasks", summary="Create a task", tags=["tasks"])
def create_task(body: TaskIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_task(_tenant(), _actor(), body.model_dump())), 201


@router.get("/tasks", summary="List tasks, oldest first (filters: client contact, status)", tags=["tasks"])
def list_tasks(
    limit: Limit = 50,
    cursor: Cursor = None,
    client_contact_id: str | None = None,
    status: TaskStatus | None = None,
) -> dict[str, Any]:
    return views.page(*catalog.list_tasks(_tenant(), limit, cursor, client_contact_id, status))


@router.get("/tasks/<task_id>", summary="Get a task", tags=["tasks"])
def get_task(task_id: str) -> dict[str, Any]:
    return views.view(catalog.get(Task, _tenant(), task_id))


@router.patch("/tasks/<task_id>", summary="Change a task (partial)", tags=["tasks"])
def update_task(task_id: str, body: TaskPatch) -> dict[str, Any]:
    return views.view(catalog.update_task(_tenant(), task_id, body.changes(), _actor()))


@router.delete("/tasks/<task_id>", summary="Delete a task without entries or assignments", tags=["tasks"])
def delete_task(task_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(Task, _tenant(), task_id, _actor())
    return {"deleted": True, "id": task_id}, 200


# ---------------------------------------------------------------------------- entries
@router.post(
    "/tasks/<task_id>/entries",
    summary="Record a task entry (time, mileage, goods, expense)",
    tags=["entries"],
)
def create_entry(task_id: str, body: EntryIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_entry(_tenant(), task_id, _actor(), body.model_dump())), 201


@router.get("/tasks/<task_id>/entries", summary="List a task's entries", tags=["entries"])
def list_entries(task_id: str, limit: Limit = 200, cursor: Cursor = None) -> dict[str, Any]:
    return views.page(*catalog.list_entries(_tenant(), task_id, limit, cursor))


@router.get(
    "/tasks/<task_id>/entries/<entry_id>/history", summary="Audit trail of an entry", tags=["history"]
)
def get_entry_history(task_id: str, entry_id: str) -> dict[str, Any]:
    tenant = _tenant()
    record, deleted = catalog.history_of(
        tenant, "entry", entry_id, TaskEntry, TaskEntry.key(tenant, task_id), TaskEntry.sort_key(entry_id)
    )
    return {"entity": "entry", "id": entry_id, "deleted": deleted, "history": views.history(record)}


@router.get("/tasks/<task_id>/entries/<entry_id>", summary="Get a task entry", tags=["entries"])
def get_entry(task_id: str, entry_id: str) -> dict[str, Any]:
    return views.view(catalog.get_entry(_tenant(), task_id, entry_id))


@router.patch(
    "/tasks/<task_id>/entries/<entry_id>",
    summary="Change an unbilled entry (409 once billed)",
    tags=["entries"],
)
def update_entry(task_id: str, entry_id: str, body: EntryPatch) -> dict[str, Any]:
    return views.view(catalog.update_entry(_tenant(), task_id, entry_id, body.changes(), _actor()))


@router.delete(
    "/tasks/<task_id>/entries/<entry_id>",
    summary="Delete an unbilled entry (409 once billed)",
    tags=["entries"],
)
def delete_entry(task_id: str, entry_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_entry(_tenant(), task_id, entry_id, _actor())
    return {"deleted": True, "id": entry_id}, 200


@router.post(
    "/tasks/<task_id>/entries/<entry_id>/stop", summary="Stop a running time entry", tags=["entries"]
)
def stop_entry(task_id: str, entry_id: str, body: StopIn) -> dict[str, Any]:
    return views.view(catalog.stop_entry(_tenant(), task_id, entry_id, body.stopped_at, _actor()))


# ---------------------------------------------------------------------------- history
_BILLING: dict[str, type[Entity]] = {
    "billable-item": BillableItem,
    "invoice": Invoice,
    "billing-run": BillingRun,
    "operation": Operation,
}


@router.get(
    "/history/<entity>/<record_id>",
    summary="Audit trail of a record (also after it was deleted)",
    tags=["history"],
)
def get_history(entity: str, record_id: str) -> dict[str, Any]:
    """Who or which run changed the record, when, from, to, why. Entities: contact, product,
    price-list, membership, team, assignment, task, billable-item, invoice, billing-run, operation."""
    record, deleted = catalog.history_record(_tenant(), entity, record_id, _BILLING)
    return {"entity": entity, "id": record_id, "deleted": deleted, "history": views.history(record)}
