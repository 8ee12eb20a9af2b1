"""Contacts, tasks, task entries, and the audit trail of any record."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import names_missing, responses
from fieldbill.api.schemas import (
    ContactIn,
    ContactPatch,
    Cursor,
    EntryIn,
    EntryPatch,
    IdQuery,
    NamePrefix,
    PageLimit,
    StopIn,
    TaskIn,
    TaskPatch,
    TaskStatus,
)
from fieldbill.store import catalog, history, qbo_links, work
from fieldbill.workflows.qbo_sync import enqueue

router = APIGatewayHttpRouter()

Limit = PageLimit
OK = responses()
CREATED = responses(201, "Created")


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


# ---------------------------------------------------------------------------- contacts
@router.post("/contacts", summary="Create a contact", tags=["contacts"], status_code=201, responses=CREATED)
def create_contact(body: ContactIn) -> out.ContactOut:
    _check_contact_tax(body.tax_code_id, body.tax_exempt)
    _check_exemption_reason(body.tax_exemption_reason, body.tax_exempt)
    # Marked dirty in its own write and pushed at once (issue 15): in QuickBooks before any invoice.
    record = catalog.contacts.create(_tenant(), _actor(), qbo_links.marked_dirty(body.model_dump()))
    enqueue.push(record.tenant_id, "sync_contact", record.id)
    return views.contact(record)


@router.get(
    "/contacts",
    summary="List contacts by name (filters: name prefix, tag)",
    tags=["contacts"],
    responses=OK,
)
def list_contacts(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None, tag: NamePrefix = None
) -> out.Page[out.ContactOut]:
    return views.page(out.ContactOut, *catalog.list_contacts(_tenant(), limit, cursor, name_prefix, tag))


@router.get("/contacts/<contact_id>", summary="Get a contact", tags=["contacts"], responses=OK)
def get_contact(contact_id: str) -> out.ContactOut:
    return views.contact(catalog.contacts.get(_tenant(), contact_id))


@router.patch("/contacts/<contact_id>", summary="Change a contact (partial)", tags=["contacts"], responses=OK)
def update_contact(contact_id: str, body: ContactPatch) -> out.ContactOut:
    _check_contact_tax(body.tax_code_id, body.tax_exempt)
    changes = _reason_changes(contact_id, body.changes())
    record = catalog.contacts.update(_tenant(), contact_id, qbo_links.marked_dirty(changes), _actor())
    enqueue.push(record.tenant_id, "sync_contact", record.id)  # the customer in QuickBooks follows
    return views.contact(record)


@router.delete(
    "/contacts/<contact_id>",
    summary="Delete a contact nothing refers to (409 if it has tasks)",
    tags=["contacts"],
    responses=OK,
)
def delete_contact(contact_id: str) -> out.DeletedOut:
    catalog.contacts.delete(_tenant(), contact_id, _actor())
    return views.deleted(contact_id)


# ---------------------------------------------------------------------------- tasks
@router.post("/tasks", summary="Create a task", tags=["tasks"], status_code=201, responses=CREATED)
def create_task(body: TaskIn) -> out.TaskOut:
    return views.task(work.create_task(_tenant(), _actor(), body.model_dump()))


@router.get(
    "/tasks",
    summary="List tasks, oldest first (filters: client contact, status)",
    tags=["tasks"],
    responses=OK,
)
def list_tasks(
    limit: Limit = 50,
    cursor: Cursor = None,
    client_contact_id: IdQuery = None,
    status: Annotated[TaskStatus | None, Query()] = None,
) -> out.Page[out.TaskOut]:
    return views.page(out.TaskOut, *work.list_tasks(_tenant(), limit, cursor, client_contact_id, status))


@router.get("/tasks/<task_id>", summary="Get a task", tags=["tasks"], responses=OK)
def get_task(task_id: str) -> out.TaskOut:
    return views.task(work.get_task(_tenant(), task_id))


@router.patch("/tasks/<task_id>", summary="Change a task (partial)", tags=["tasks"], responses=OK)
def update_task(task_id: str, body: TaskPatch) -> out.TaskOut:
    return views.task(work.update_task(_tenant(), task_id, body.changes(), _actor()))


@router.delete(
    "/tasks/<task_id>", summary="Delete a task without entries or assignments", tags=["tasks"], responses=OK
)
def delete_task(task_id: str) -> out.DeletedOut:
    work.delete_task(_tenant(), task_id, _actor())
    return views.deleted(task_id)


# ---------------------------------------------------------------------------- entries
@router.post(
    "/tasks/<task_id>/entries",
    summary="Record a task entry (time, mileage, goods, expense)",
    tags=["entries"],
    status_code=201,
    responses=CREATED,
)
def create_entry(task_id: str, body: EntryIn) -> out.EntryOut:
    return views.entry(work.create_entry(_tenant(), task_id, _actor(), body.model_dump()))


@router.get("/tasks/<task_id>/entries", summary="List a task's entries", tags=["entries"], responses=OK)
def list_entries(task_id: str, limit: Limit = 200, cursor: Cursor = None) -> out.Page[out.EntryOut]:
    return views.page(out.EntryOut, *work.list_entries(_tenant(), task_id, limit, cursor))


@router.get(
    "/tasks/<task_id>/entries/<entry_id>/history",
    summary="Audit trail of an entry",
    tags=["history"],
    responses=OK,
)
def get_entry_history(task_id: str, entry_id: str) -> out.HistoryOut:
    tenant = _tenant()
    with names_missing("entry", entry_id):
        record, deleted = history.entry_history(tenant, task_id, entry_id)
    return views.history("entry", entry_id, record, deleted)


@router.get("/tasks/<task_id>/entries/<entry_id>", summary="Get a task entry", tags=["entries"], responses=OK)
def get_entry(task_id: str, entry_id: str) -> out.EntryOut:
    with names_missing("entry", entry_id):
        return views.entry(work.get_entry(_tenant(), task_id, entry_id))


@router.patch(
    "/tasks/<task_id>/entries/<entry_id>",
    summary="Change an unbilled entry (409 once billed)",
    tags=["entries"],
    responses=OK,
)
def update_entry(task_id: str, entry_id: str, body: EntryPatch) -> out.EntryOut:
    with names_missing("entry", entry_id):
        return views.entry(work.update_entry(_tenant(), task_id, entry_id, body.changes(), _actor()))


@router.delete(
    "/tasks/<task_id>/entries/<entry_id>",
    summary="Delete an unbilled entry (409 once billed)",
    tags=["entries"],
    responses=OK,
)
def delete_entry(task_id: str, entry_id: str) -> out.DeletedOut:
    with names_missing("entry", entry_id):
        work.delete_entry(_tenant(), task_id, entry_id, _actor())
    return views.deleted(entry_id)


@router.post(
    "/tasks/<task_id>/entries/<entry_id>/stop",
    summary="Stop a running time entry",
    tags=["entries"],
    responses=OK,
)
def stop_entry(task_id: str, entry_id: str, body: StopIn) -> out.EntryOut:
    with names_missing("entry", entry_id):
        return views.entry(work.stop_entry(_tenant(), task_id, entry_id, body.stopped_at, _actor()))


# ---------------------------------------------------------------------------- history
@router.get(
    "/history/<entity>/<record_id>",
    summary="Audit trail of a record (also after it was deleted)",
    tags=["history"],
    responses=OK,
)
def get_history(entity: str, record_id: str) -> out.HistoryOut:
    """Who or which run changed the record, when, from, to, why. Entities: contact, product,
    price-list, membership, team, assignment, task, billable-item, invoice, billing-run, operation, job."""
    record, deleted = history.history_record(_tenant(), entity, record_id)
    return views.history(entity, record_id, record, deleted)


# ---------------------------------------------------------------------------- issue 15: tax per contact
def _check_contact_tax(code_id: str | None, exempt: bool | None) -> None:
    """A contact names one of the tenant's active codes, or is exempt, not both (422 otherwise)."""
    from fieldbill.domain.errors import ValidationError
    from fieldbill.store import tax_codes

    if code_id is not None and exempt:
        raise ValidationError("tax_exempt", "a tax-exempt contact names no tax code")
    tax_codes.check_code(_tenant(), code_id)


def _check_exemption_reason(reason: int | None, exempt: bool | None) -> None:
    from fieldbill.domain import tax

    tax.check_exemption_reason(reason, exempt)


def _reason_changes(contact_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A patch's exemption reason checked against the contact's exemption after the patch; a
    contact no longer exempt loses its reason in the same write."""
    exempt = changes.get("tax_exempt")
    if "tax_exempt" not in changes and changes.get("tax_exemption_reason") is not None:
        from fieldbill.store import tax_codes

        exempt = tax_codes.contact_exempt(_tenant(), contact_id)
    _check_exemption_reason(changes.get("tax_exemption_reason"), exempt)
    if "tax_exempt" in changes and not changes["tax_exempt"]:
        return {**changes, "tax_exemption_reason": None}
    return changes
