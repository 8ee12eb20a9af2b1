"""Work records: tasks and their entries (time, mileage, goods, expenses).

Entries live in their task's partition (one query reads a task's work); an entry that can be
billed carries the sparse "unbilled" index keys compile reads (store/billing.py). Every write goes
through store/catalog.py's counted-reference writes (a task pins its contact and products, an
entry its task and product), so a delete that would break billing is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.domain.model import EntryStatus
from fieldbill.domain.states import check_entry_unbilled
from fieldbill.store import common
from fieldbill.store.catalog import create, delete, get, new_id, same, update
from fieldbill.store.models import META, Task, TaskEntry


# ---------------------------------------------------------------------------- tasks
def create_task(tenant_id: str, actor: str, data: Mapping[str, Any]) -> Task:
    values = dict(data)
    task_id = new_id(values.pop("id", None))
    record = Task(
        Task.key(tenant_id, task_id),
        META,
        tenant_id=tenant_id,
        id=task_id,
        gsi1pk=Task.list_key(tenant_id),
        gsi1sk=f"{now_iso()}#{task_id}",
        **values,
    )
    return create(record, actor)


def update_task(tenant_id: str, task_id: str, changes: Mapping[str, Any], actor: str) -> Task:
    return update(get(Task, tenant_id, task_id), changes, actor)


def list_tasks(
    tenant_id: str, limit: int, cursor: str | None, client_contact_id: str | None, status: str | None
) -> tuple[list[Task], str | None]:
    filters: Any = None
    if client_contact_id:
        filters = Task.client_contact_id == client_contact_id
    if status:
        filters = (Task.status == status) if filters is None else filters & (Task.status == status)
    list_key = Task.list_key(tenant_id)
    return common.list_by_gsi1(
        Task, list_key, limit, common.checked_cursor(cursor, gsi1pk=list_key), filter_condition=filters
    )


def get_task(tenant_id: str, task_id: str) -> Task:
    return get(Task, tenant_id, task_id)


def delete_task(tenant_id: str, task_id: str, actor: str) -> None:
    """Delete a task without entries (its entries pin it: 409 otherwise)."""
    delete(get_task(tenant_id, task_id), actor)


# ---------------------------------------------------------------------------- entries
def get_entry(tenant_id: str, task_id: str, entry_id: str) -> TaskEntry:
    return common.get(
        TaskEntry, TaskEntry.key(tenant_id, task_id), TaskEntry.sort_key(entry_id), entity="entry"
    )


def list_entries(
    tenant_id: str, task_id: str, limit: int, cursor: str | None
) -> tuple[list[TaskEntry], str | None]:
    pk = TaskEntry.key(tenant_id, task_id)
    query = TaskEntry.query(
        pk,
        TaskEntry.sk.startswith("ENTRY#"),
        limit=limit,
        last_evaluated_key=common.decode_cursor(common.checked_cursor(cursor, pk=pk)),
    )
    return common.page(query, limit)


def create_entry(tenant_id: str, task_id: str, actor: str, data: Mapping[str, Any]) -> TaskEntry:
    """Record work on a task (which must exist: 404); it is in the unbilled index once eligible."""
    values = dict(data)
    entry_id = new_id(values.pop("id", None))
    started: datetime = values.pop("started_at")
    stopped: datetime | None = values.pop("stopped_at", None)
    work_date = started.date().isoformat()
    stopped_iso = stopped.isoformat() if stopped else None
    record = TaskEntry(
        TaskEntry.key(tenant_id, task_id),
        TaskEntry.sort_key(entry_id),
        tenant_id=tenant_id,
        id=entry_id,
        task_id=task_id,
        work_date=work_date,
        started_at=started.isoformat(),
        stopped_at=stopped_iso,
        **values,
    )
    for name, value in entry_index(tenant_id, task_id, entry_id, record.kind, work_date, stopped_iso).items():
        setattr(record, name, value)
    return create(record, actor, reason="recorded")


def eligible(kind: str, stopped_at: str | None) -> bool:
    """Time entries wait to be stopped; mileage, goods and expenses are complete when recorded."""
    return kind != "time" or stopped_at is not None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def entry_index(
    tenant_id: str, task_id: str, entry_id: str, kind: str, work_date: str, stopped_at: str | None
) -> dict[str, str | None]:
    """The sparse "unbilled" index keys an unbilled entry must carry (None: not in the index)."""
    if eligible(kind, stopped_at):
        return {
            "gsi2pk": TaskEntry.unbilled_key(tenant_id),
            "gsi2sk": TaskEntry.unbilled_sort_key(work_date, task_id, entry_id),
        }
    return {"gsi2pk": None, "gsi2sk": None}


_KIND_FIELDS = {"mileage": ("distance_km",), "goods": ("quantity",), "expense": ("quantity",)}
_MILEAGE_ONLY = ("distance_km", "transport_minutes")


def check_entry(kind: str, values: Mapping[str, Any]) -> None:
    """An entry's cross-field rules (the schema checks each field alone)."""
    started, stopped = _parse(values.get("started_at")), _parse(values.get("stopped_at"))
    if started and stopped and stopped < started:
        raise ValidationError("stopped_at", "must not be before started_at")
    if stopped and kind != "time":
        raise ValidationError("stopped_at", "only time entries are started and stopped")
    for field in _KIND_FIELDS.get(kind, ()):
        if values.get(field) is None:
            raise ValidationError(field, f"is required for a {kind} entry")
    if kind != "mileage":
        for field in _MILEAGE_ONLY:
            if values.get(field) is not None:
                raise ValidationError(field, "belongs to mileage entries")


def update_entry(
    tenant_id: str, task_id: str, entry_id: str, changes: Mapping[str, Any], actor: str
) -> TaskEntry:
    """Edit an unbilled entry; its place in the unbilled index follows its new times."""
    record = get_entry(tenant_id, task_id, entry_id)
    check_entry_unbilled(entry_id, _status(record), "edited")
    values = {k: getattr(record, k) for k in record.get_attributes()} | dict(changes)
    check_entry(record.kind, values)
    full = dict(changes)
    if "started_at" in changes:
        started = _parse(changes["started_at"])
        full["work_date"] = started.date().isoformat() if started else record.work_date
    if "started_at" in changes or "stopped_at" in changes:
        work_date = full.get("work_date", record.work_date)
        full |= entry_index(tenant_id, task_id, entry_id, record.kind, work_date, values.get("stopped_at"))
    condition = TaskEntry.billed == False  # noqa: E712
    # Times are compared as read: a concurrent stop or edit makes this one a conflict, not a mix.
    for field in ("started_at", "stopped_at"):
        condition = condition & same(TaskEntry, field, getattr(record, field))
    return update(
        record,
        full,
        actor,
        condition=condition,
        refused=f"entry {entry_id!r} was billed or changed meanwhile; it was not edited",
    )


def stop_entry(tenant_id: str, task_id: str, entry_id: str, stopped_at: datetime, actor: str) -> TaskEntry:
    record = get_entry(tenant_id, task_id, entry_id)
    if record.kind != "time":
        raise ValidationError("kind", "only time entries are started and stopped")
    check_entry_unbilled(entry_id, _status(record), "stopped")
    if record.stopped_at:
        raise Conflict(f"entry {entry_id!r} is already stopped")
    started = _parse(record.started_at)
    if started and stopped_at < started:
        raise ValidationError("stopped_at", "must not be before started_at")
    stopped = stopped_at.isoformat()
    changes = {
        "stopped_at": stopped,
        **entry_index(tenant_id, task_id, entry_id, record.kind, record.work_date, stopped),
    }
    return update(
        record,
        changes,
        actor,
        reason="stopped",
        states=("running", "stopped"),
        condition=TaskEntry.stopped_at.does_not_exist() & (TaskEntry.billed == False),  # noqa: E712
        refused=f"entry {entry_id!r} is already stopped or billed",
    )


def delete_entry(tenant_id: str, task_id: str, entry_id: str, actor: str) -> None:
    record = get_entry(tenant_id, task_id, entry_id)
    check_entry_unbilled(entry_id, _status(record), "deleted")
    delete(
        record,
        actor,
        condition=(TaskEntry.billed == False),  # noqa: E712
        refused=f"entry {entry_id!r} was billed meanwhile; it was not deleted",
    )


def _status(record: TaskEntry) -> EntryStatus:
    """The entry's status in ENTRY_MACHINE's words (the record keeps it as `billed`)."""
    return EntryStatus.BILLED if record.billed else EntryStatus.UNBILLED
