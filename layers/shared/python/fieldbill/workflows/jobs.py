"""Asynchronous commands over the API: 202 with an operation id, the work on the jobs queue."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.domain import model as dm
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import billing as billing_store
from fieldbill.store import common
from fieldbill.store.models import META, Operation
from fieldbill.workflows import billing, sync_queue
from fieldbill.workflows.messages import JobMessage


class CompileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    date_from: date | None = None
    date_to: date | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_ids: list[str] = Field(min_length=1, max_length=5000)
    grouping: dm.GroupingMode = dm.GroupingMode.PER_CONTACT
    # None: QuickBooks when the company is connected to it, else local (sync_queue.checked_destination).
    destination: dm.Destination | None = None
    # QuickBooks invoices are queued at once; false keeps them as drafts until POST /invoices/{id}/sync.
    sync: bool = True
    issue_date: date | None = None


def submit(kind: str, tenant_id: str, actor: str, request: BaseModel) -> Operation:
    operation_id = uuid.uuid4().hex
    operation = Operation(
        pk=Operation.key(tenant_id, operation_id),
        sk=META,
        tenant_id=tenant_id,
        id=operation_id,
        kind=kind,
        status="queued",
        request=request.model_dump(mode="json"),
    )
    common.create(operation, actor, reason=f"{kind} requested")
    message = JobMessage(kind=kind, tenant_id=tenant_id, operation_id=operation_id, actor=actor)  # type: ignore[arg-type]
    boto3.client("sqs").send_message(
        QueueUrl=get_settings().jobs_queue_url, MessageBody=message.model_dump_json()
    )
    return operation


def get_operation(tenant_id: str, operation_id: str) -> Operation:
    return common.get(Operation, Operation.key(tenant_id, operation_id), entity="operation")


def handle_record(record: SQSRecord) -> None:
    message = JobMessage.model_validate_json(record.body)
    operation = get_operation(message.tenant_id, message.operation_id)
    if operation.status in ("succeeded", "failed"):
        return  # a redelivered message: the work is done
    logger.append_keys(tenant_id=message.tenant_id, operation_id=message.operation_id)
    _set(operation, "running", message.actor)
    request = (
        operation.request.as_dict() if hasattr(operation.request, "as_dict") else dict(operation.request)
    )
    try:
        result = _run(message, request)
    except Exception as exc:
        _set(operation, "failed", message.actor, error={"type": type(exc).__name__, "message": str(exc)})
        if isinstance(exc, (ValueError,)) or exc.__class__.__module__.startswith("fieldbill.domain"):
            return  # a permanent problem with the request: recorded, not retried
        raise
    _set(operation, "succeeded", message.actor, result=result)


def _run(message: JobMessage, request: dict[str, Any]) -> dict[str, Any]:
    if message.kind == "compile":
        req = CompileRequest.model_validate(request)
        scope = billing.Scope(
            contact_ids=req.contact_ids,
            date_from=req.date_from.isoformat() if req.date_from else None,
            date_to=req.date_to.isoformat() if req.date_to else None,
        )
        done = billing.compile_all(
            message.tenant_id, message.actor, scope, run_id=f"op-{message.operation_id}"
        )
        return {
            "entries_billed": done.entries_billed,
            "items_created": done.items_created,
            "entries_skipped": done.entries_skipped,
        }
    gen = GenerateRequest.model_validate(request)
    items = list(billing_store.items_by_id(message.tenant_id, gen.item_ids).values())
    missing = sorted(set(gen.item_ids) - {i.id for i in items})
    destination = gen.destination or sync_queue.default_destination(message.tenant_id)
    run_id = f"op-{message.operation_id}"
    result = billing.generate(
        message.tenant_id,
        message.actor,
        run_id,
        gen.grouping,
        items,
        gen.issue_date or date.today(),
        destination,
    )
    queued = 0
    if destination is dm.Destination.QUICKBOOKS and gen.sync:
        # Invoices created for QuickBooks go there at once, through the throttled queue.
        more = True
        while more:
            count, more = sync_queue.enqueue_not_synced(message.tenant_id, run_id, message.actor)
            queued += count
            more = more and count > 0  # a page with nothing to queue would come back the same
    return {
        "destination": str(destination),
        "queued_for_quickbooks": queued,
        "invoice_ids": result.invoice_ids,
        "items_invoiced": result.items_invoiced,
        "conflicts": result.conflicts,
        "missing_item_ids": missing,
        "not_pending_item_ids": sorted(i.id for i in items if i.status != "pending"),
    }


def _set(
    operation: Operation,
    status: str,
    actor: str,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    actions: list[Action] = [
        Operation.status.set(status),
        Operation.updated_at.set(now_iso()),
        Operation.history.set(
            Operation.history.append([common.history_entry(actor, operation.status, status, None)])
        ),
    ]
    if result is not None:
        actions.append(Operation.result.set(result))
    if error is not None:
        actions.append(Operation.error.set(error))
    operation.update(actions=actions)
