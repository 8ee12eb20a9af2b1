"""The jobs worker: asynchronous commands over the API (202 with an operation id, the work on the
jobs queue). Operation statuses go through OPERATION_MACHINE."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel

from fieldbill.domain import model as dm
from fieldbill.domain.errors import OperationCancelled
from fieldbill.domain.states import OperationStatus
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import billing as billing_store
from fieldbill.store import runs
from fieldbill.workflows.billing import pages as billing
from fieldbill.workflows.billing.destination import resolve as resolve_destination
from fieldbill.workflows.billing.requests import CompileRequest, GenerateRequest
from fieldbill.workflows.messages import JobMessage
from fieldbill.workflows.qbo_sync import enqueue

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Operation


def submit(kind: str, tenant_id: str, actor: str, request: BaseModel) -> Operation:
    """Record the operation, then queue its message; if the message cannot be sent, the operation
    ends failed (saying why) instead of waiting queued for ever."""
    operation_id = uuid.uuid4().hex
    operation = runs.create_operation(tenant_id, operation_id, kind, request.model_dump(mode="json"), actor)
    message = JobMessage(kind=kind, tenant_id=tenant_id, operation_id=operation_id, actor=actor)  # type: ignore[arg-type]
    try:
        boto3.client("sqs").send_message(
            QueueUrl=get_settings().jobs_queue_url, MessageBody=message.model_dump_json()
        )
    except Exception as exc:
        error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        runs.set_operation(
            operation, OperationStatus.FAILED, actor, error=error, reason="could not be queued"
        )
        raise
    return operation


def get_operation(tenant_id: str, operation_id: str) -> Operation:
    return runs.get_operation(tenant_id, operation_id)


def cancel(tenant_id: str, operation_id: str, actor: str, reason: str | None) -> Operation:
    """A person stops an operation (POST /operations/{id}/cancel): its worker sees it at its next
    progress write (store/runs.record_progress) and stops there."""
    return runs.cancel_operation(tenant_id, operation_id, actor, reason)


def handle_record(record: SQSRecord) -> None:
    message = JobMessage.model_validate_json(record.body)
    try:
        _handle(message)
    except OperationCancelled:
        # A person cancelled it: the worker stopped at its next write, what it did stays done and
        # the operation's result says how far it got. Not an error: the message is done.
        logger.info(
            "operation cancelled: stopped",
            extra={"tenant_id": message.tenant_id, "operation_id": message.operation_id},
        )


def _handle(message: JobMessage) -> None:
    operation = get_operation(message.tenant_id, message.operation_id)
    if runs.is_finished(operation):
        return  # a redelivered message (the work is done), or cancelled before it started
    logger.append_keys(tenant_id=message.tenant_id, operation_id=message.operation_id)
    resuming = operation.status != OperationStatus.QUEUED  # a redelivery after a crash: still running
    if not resuming:
        runs.advance_operation(operation, OperationStatus.RUNNING, message.actor)
    request = (
        operation.request.as_dict() if hasattr(operation.request, "as_dict") else dict(operation.request)
    )
    try:
        result = _run(message, request, resuming)
        if result is None:
            return  # handed over to a fresh copy of its message (it goes on from its progress)
    except OperationCancelled:
        raise
    except Exception as exc:
        error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        runs.advance_operation(operation, OperationStatus.FAILED, message.actor, error=error)
        if isinstance(exc, (ValueError,)) or exc.__class__.__module__.startswith("fieldbill.domain"):
            return  # a permanent problem with the request: recorded, not retried
        raise
    runs.advance_operation(operation, OperationStatus.SUCCEEDED, message.actor, result=result)


def _run(message: JobMessage, request: dict[str, Any], resuming: bool = False) -> dict[str, Any] | None:
    if message.kind == "recurring_drafts":
        return _recurring_drafts(message, request)
    if message.kind == "compile":
        req = CompileRequest.model_validate(request)
        scope = billing.Scope(
            contact_ids=req.contact_ids,
            date_from=req.date_from.isoformat() if req.date_from else None,
            date_to=req.date_to.isoformat() if req.date_to else None,
        )
        operation = get_operation(message.tenant_id, message.operation_id)
        done = billing.compile_all(
            message.tenant_id,
            message.actor,
            scope,
            run_id=f"op-{message.operation_id}",
            progress=lambda partial: runs.record_progress(operation, partial),
        )
        return {
            "entries_billed": done.entries_billed,
            "items_created": done.items_created,
            "entries_skipped": done.entries_skipped,
        }
    if message.kind == "services_invoices":  # issue 17: the billing page's bulk invoices
        from fieldbill.workflows.services import billing as services

        operation = get_operation(message.tenant_id, message.operation_id)
        return services.run_bulk(
            message.tenant_id,
            message.actor,
            message.operation_id,
            services.BulkServicesRequest.model_validate(request),
            lambda partial: runs.record_progress(operation, partial),
        )
    if message.kind == "invoices_bulk":
        # lazy: only this kind needs it (the invoice commands, sends, mail errors: cold start)
        from fieldbill.workflows.invoices import bulk

        operation = get_operation(message.tenant_id, message.operation_id)
        # Running already: a redelivery after a crash, which goes on from what was recorded (wt-life2)
        resume = None
        if resuming:
            point = runs.resume_point(operation)
            resume = bulk.Resume(result=point.result, since=point.since)
        return bulk.run(
            message.tenant_id,
            message.actor,
            bulk.BulkRequest.model_validate(request),
            lambda partial: runs.record_progress(operation, partial),
            resume,
        )
    gen = GenerateRequest.model_validate(request)
    items = list(billing_store.items_by_id(message.tenant_id, gen.item_ids).values())
    missing = sorted(set(gen.item_ids) - {i.id for i in items})
    destination = resolve_destination(message.tenant_id, gen.destination)
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
            count, more = enqueue.enqueue_not_synced(message.tenant_id, run_id, message.actor)
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


# ---------------------------------------------------------------------------- recurring billing (issue 16)
def _recurring_drafts(message: JobMessage, request: dict[str, Any]) -> dict[str, Any] | None:
    """A profile's period, written account after account; when its time budget is spent, the
    progress is recorded and the same message queued again: the next copy goes on from there."""
    from fieldbill.workflows.recurring import drafts  # lazy: only this kind needs it

    operation = get_operation(message.tenant_id, message.operation_id)
    before = operation.result.as_dict() if operation.result is not None else {}
    wanted = drafts.DraftsRequest.model_validate({**request, "start_after": before.get("resume_after")})
    result, last_written = drafts.commit(
        message.tenant_id, message.actor, wanted, lambda partial: runs.record_progress(operation, partial)
    )
    earlier = before.get("counts_before_resume") or {}
    counts = {k: int(v) + int(earlier.get(k, 0)) for k, v in (result.get("counts") or {}).items()}
    result = {**result, "counts": counts} if counts else result
    if last_written is None:
        return result
    runs.record_progress(operation, {**result, "resume_after": last_written, "counts_before_resume": counts})
    boto3.client("sqs").send_message(
        QueueUrl=get_settings().jobs_queue_url, MessageBody=message.model_dump_json()
    )
    return None


__all__ = ["CompileRequest", "GenerateRequest", "cancel", "get_operation", "handle_record", "submit"]
