"""Compile, billable items, invoice generation, invoices and their sync, billing runs, operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import (
    BillingRunIn,
    CompileIn,
    Cursor,
    DayQuery,
    GenerateIn,
    IdQuery,
    ItemLineKind,
    PageLimit,
    ReasonIn,
)
from fieldbill.domain.errors import ValidationError
from fieldbill.store import billing as billing_store
from fieldbill.store import runs
from fieldbill.workflows.billing import destination as destinations
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.billing import run as billing_run
from fieldbill.workflows.billing.requests import RunRequest

if TYPE_CHECKING:  # records come from store/ functions; the class only types them
    from fieldbill.store.models import BillableItem

router = APIGatewayHttpRouter()

# docs/api.md: lists take 1 to 200, billable items up to 500.
ItemLimit = Annotated[int, Query(ge=1, le=500)]
Limit = PageLimit
ItemStatus = Literal["pending", "invoiced", "unbillable", "void"]
Destination = Literal["quickbooks", "local"]
OK = responses()
ACCEPTED = responses(202, "Accepted")


# ---------------------------------------------------------------------------- compile and items
@router.post(
    "/billable-items/compile",
    summary="Compile unbilled entries into billable items (202, operation)",
    tags=["billing"],
    status_code=202,
    responses=ACCEPTED,
)
def compile_items(body: CompileIn) -> out.OperationAccepted:
    tenant = context.tenant_id(router)
    request = jobs.CompileRequest.model_validate(body.model_dump())
    operation = jobs.submit("compile", tenant, context.actor(router), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)


@router.get(
    "/billable-items",
    summary="List billable items by status with badges (filters: contact, task, kind, destination, dates)",
    tags=["billing"],
    responses=OK,
)
def list_items(
    status: Annotated[ItemStatus, Query()] = "pending",
    contact_id: IdQuery = None,
    task_id: IdQuery = None,
    line_kind: Annotated[ItemLineKind | None, Query()] = None,
    destination: Annotated[Destination | None, Query()] = None,
    date_from: DayQuery = None,
    date_to: DayQuery = None,
    limit: ItemLimit = 100,
    cursor: Cursor = None,
) -> out.Page[out.ItemOut]:
    tenant = context.tenant_id(router)
    if destination and status == "pending":
        # Not invoiced yet: they all go where the company's invoices go by default.
        if destination != destinations.resolve(tenant):
            return out.Page[out.ItemOut](items=[], next_cursor=None)
        destination = None
    records, next_cursor = billing_store.list_items(
        tenant,
        status,
        limit,
        cursor,
        contact_id=contact_id,
        task_id=task_id,
        line_kind=line_kind,
        destination=destination,
        date_from=date_from,
        date_to=date_to,
    )
    return out.Page[out.ItemOut](items=_item_views(tenant, records), next_cursor=next_cursor)


@router.get(
    "/billable-items/<item_id>", summary="Get a billable item with its badge", tags=["billing"], responses=OK
)
def get_item(item_id: str) -> out.ItemOut:
    tenant = context.tenant_id(router)
    (found,) = _item_views(tenant, [billing_store.get_item(tenant, item_id)])
    return found


class ItemStatusIn(BaseModel):
    """Billing page: mark a service not billable, or billable again."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["unbillable", "pending"]
    reason: str | None = Field(default=None, max_length=500)


@router.patch(
    "/billable-items/<item_id>",
    summary="Mark a billable item unbillable, or billable again (pending)",
    tags=["billing"],
    responses=OK,
)
def set_item_status(item_id: str, body: ItemStatusIn) -> out.ItemOut:
    tenant = context.tenant_id(router)
    record = billing_store.set_item_status(tenant, item_id, body.status, context.actor(router), body.reason)
    (found,) = _item_views(tenant, [record])
    return found


def _item_views(tenant: str, records: Sequence[BillableItem]) -> list[out.ItemOut]:
    """Items with their badges: an invoiced item's badge is its invoice's (one batch read for the
    page's QuickBooks invoices); the others need the company's default destination (one read)."""
    wanted = {
        r.invoice_id for r in records if r.status == "invoiced" and r.invoice_id and r.destination != "local"
    }
    invoices = billing_store.invoices_by_id(tenant, wanted) if wanted else {}
    needs_default = any(not r.destination and r.status not in ("unbillable", "void") for r in records)
    default = str(destinations.resolve(tenant)) if needs_default else "local"
    return [views.item(r, invoices.get(r.invoice_id or ""), default) for r in records]


@router.post(
    "/invoices/generate",
    summary="Generate invoices from pending items (202, operation)",
    tags=["invoices"],
    status_code=202,
    responses=ACCEPTED,
)
def generate_invoices(body: GenerateIn) -> out.OperationAccepted:
    tenant = context.tenant_id(router)
    if len(set(body.item_ids)) != len(body.item_ids):
        raise ValidationError("item_ids", "an item is selected twice")
    request = jobs.GenerateRequest.model_validate(body.model_dump())
    # Resolved now, so the operation records where its invoices go (and 422 before any work).
    request = request.model_copy(update={"destination": destinations.resolve(tenant, request.destination)})
    operation = jobs.submit("generate", tenant, context.actor(router), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)


@router.get(
    "/operations/<operation_id>", summary="Poll an asynchronous operation", tags=["operations"], responses=OK
)
def get_operation(operation_id: str) -> out.OperationOut:
    tenant = context.tenant_id(router)
    return views.operation(jobs.get_operation(tenant, operation_id))


# wt-door: a person stops a long operation.
@router.post(
    "/operations/<operation_id>/cancel",
    summary="Cancel a queued or running operation (what it did so far stays done)",
    tags=["operations"],
    responses=OK,
)
def cancel_operation(operation_id: str, body: ReasonIn) -> out.OperationOut:
    """Cancelled at once, with who and why in its history; its worker stops at its next progress
    write and records how far it got in the result (`cancelled: true`). An ended or cancelled
    operation: 409 invalid_transition naming the machine; an unknown id: 404."""
    tenant = context.tenant_id(router)
    return views.operation(jobs.cancel(tenant, operation_id, context.actor(router), body.reason))


# ---------------------------------------------------------------------------- billing runs
@router.post(
    "/billing-runs",
    summary="Start a billing run: compile, generate, sync (202)",
    tags=["billing runs"],
    status_code=202,
    responses=ACCEPTED,
)
def start_billing_run(body: BillingRunIn) -> out.BillingRunOut:
    tenant = context.tenant_id(router)
    request = RunRequest.model_validate(body.model_dump())
    run = billing_run.start_run(tenant, context.actor(router), request)
    return views.billing_run(run)


@router.post(
    "/billing-runs/<run_id>/cancel",
    summary="Cancel a billing run before it ends (what it made so far stays)",
    tags=["billing runs"],
    responses=OK,
)
def cancel_billing_run(run_id: str, body: ReasonIn) -> out.BillingRunOut:
    """Cancelled at once with the lock released, so the next run can start; its execution is
    stopped. Compiled items stay pending and invoices stay (delete unwanted drafts). A finished
    run: 409 invalid_transition."""
    tenant = context.tenant_id(router)
    return views.billing_run(billing_run.cancel_run(tenant, run_id, context.actor(router), body.reason))


@router.get("/billing-runs", summary="List billing runs, newest first", tags=["billing runs"], responses=OK)
def list_billing_runs(limit: Limit = 20, cursor: Cursor = None) -> out.Page[out.BillingRunOut]:
    records, next_cursor = runs.list_runs(context.tenant_id(router), limit, cursor)
    return views.page(out.BillingRunOut, records, next_cursor)


@router.get(
    "/billing-runs/<run_id>",
    summary="Get a billing run and its progress",
    tags=["billing runs"],
    responses=OK,
)
def get_billing_run(run_id: str) -> out.BillingRunOut:
    tenant = context.tenant_id(router)
    return views.billing_run(billing_run.get_run(tenant, run_id))
