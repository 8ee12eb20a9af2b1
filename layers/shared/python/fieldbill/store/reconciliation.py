"""The reads and writes of a reconciliation (workflows/inbound/reconcile.py): our QuickBooks
invoices of a period, linked contacts, and the operation holding the report."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from fieldbill.domain.states import OperationStatus
from fieldbill.store import common, connections, runs
from fieldbill.store.models import META, Contact, Entity, Invoice, Operation, qbo_ref_key

KIND = "reconcile"


def settings(tenant_id: str) -> dict[str, Any]:
    record = connections.get(tenant_id, consistent=False)
    return record.settings.as_dict() if record is not None and record.settings else {}


def quickbooks_invoices(tenant_id: str, date_from: date, date_to: date) -> list[Invoice]:
    """The tenant's invoices for QuickBooks issued in the period (the list index by issue date)."""
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id),
        Entity.gsi1sk.between(date_from.isoformat(), f"{date_to.isoformat()}#\uffff"),
        filter_condition=(Invoice.destination == "quickbooks") & (Invoice.status != "deleted"),
    )
    return [r for r in query if isinstance(r, Invoice)]


def contact_invoices(tenant_id: str, contact_id: str) -> list[Invoice]:
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id),
        filter_condition=(Invoice.contact_id == contact_id) & (Invoice.destination == "quickbooks"),
    )
    return [r for r in query if isinstance(r, Invoice)]


def linked_contacts(tenant_id: str, contact_ids: Iterable[str] | None) -> list[Contact]:
    """Linked contacts: these ids, or every linked contact of the tenant (the QuickBooks index)."""
    if contact_ids is not None:
        found = common.batch_get(Contact, ((Contact.key(tenant_id, c), META) for c in contact_ids))
        return [c for c in found.values() if c.qbo_id]
    query = Entity.gsi2.query(qbo_ref_key(tenant_id, "Customer"))
    return [r for r in query if isinstance(r, Contact) and r.qbo_id]


def create(tenant_id: str, date_from: date, date_to: date, actor: str) -> Operation:
    request = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
    return runs.create_operation(tenant_id, uuid.uuid4().hex, KIND, request, actor)


def start(tenant_id: str, operation_id: str, actor: str) -> Operation | None:
    """The operation, running; None when it finished already (a redelivered message)."""
    operation = runs.get_operation(tenant_id, operation_id)
    if runs.is_finished(operation):  # ended, or cancelled by a person (wt-door)
        return None
    if operation.status == OperationStatus.QUEUED:
        runs.advance_operation(operation, OperationStatus.RUNNING, actor)
    return operation


def finish(operation: Operation, result: dict[str, Any], actor: str) -> None:
    runs.advance_operation(operation, OperationStatus.SUCCEEDED, actor, result=result)


def fail(tenant_id: str, operation_id: str, error: dict[str, Any], actor: str) -> None:
    operation = runs.get_operation(tenant_id, operation_id)
    if not runs.is_finished(operation):
        runs.advance_operation(operation, OperationStatus.FAILED, actor, error=error)
