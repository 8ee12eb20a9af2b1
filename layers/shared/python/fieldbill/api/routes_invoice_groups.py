"""Invoice groups (issue 16 item 6): create, rename, add and remove invoices, the charts and
totals, and the actions (email all / unpaid, mark drafts sent, regenerate drafts, download all)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Cursor, Id, Name, PageLimit, Strict
from fieldbill.clock import today
from fieldbill.domain.errors import ValidationError
from fieldbill.settings import get_settings
from fieldbill.store import account_balances
from fieldbill.store import invoice_groups as store
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.invoice_groups import groups
from fieldbill.workflows.invoices import bulk

router = APIGatewayHttpRouter()
OK = responses()
CREATED = responses(201, "Created")
ACCEPTED = responses(202, "Accepted")
TAGS = ["invoice groups"]
# Invoices a page of the group list reads for its groups' charts before it ends early.
LIST_INVOICE_BUDGET = 2000


class GroupIn(Strict):
    id: Id | None = None
    name: Name
    invoice_ids: Annotated[list[Id], Field(max_length=500)] = Field(default_factory=list)


class RenameIn(Strict):
    name: Name


class MembersIn(Strict):
    invoice_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]


class ActionIn(Strict):
    action: Literal["email_all", "email_unpaid", "mark_drafts_sent", "regenerate_drafts"]


class BucketOut(out.Out):
    count: int
    amount: out.DecimalText


class GroupOut(out.Record):
    name: str
    invoices: int = Field(description="counted invoices (void and deleted ones are left out)")
    left_out: int = Field(description="void or deleted invoices still in the group")
    by_status: dict[str, BucketOut] = Field(description="draft, unpaid, paid: count and amount")
    aging: dict[str, BucketOut] = Field(description="unpaid by days past due: current, 1_30 ... over_90")
    email: dict[str, int] = Field(description="by the delivery status of each invoice's latest email")
    collected: out.DecimalText
    uncollected: out.DecimalText


class GroupInvoicesOut(out.Out):
    group: GroupOut
    invoices: list[out.InvoiceOut] = Field(description="a page of the group's invoices, by invoice id")
    next_cursor: str | None = Field(default=None, description="the next page of invoices (cursor=)")


def _bucket(values: dict[str, Any]) -> BucketOut:
    return BucketOut(count=int(values["count"]), amount=views.decimal_text(values["amount"]))


def _group(tenant_id: str, group_id: str) -> tuple[GroupOut, list[Any]]:
    group, records, summary = groups.summary(tenant_id, group_id, today())
    view = GroupOut(
        id=group.id,
        created_at=group.created_at,
        updated_at=group.updated_at,
        name=group.name,
        invoices=summary.invoices,
        left_out=summary.left_out,
        by_status={k: _bucket(v) for k, v in summary.by_status.items()},
        aging={k: _bucket(v) for k, v in summary.aging.items()},
        email=summary.email,
        collected=views.decimal_text(summary.collected),
        uncollected=views.decimal_text(summary.uncollected),
    )
    return view, records


@router.post(
    "/invoice-groups", summary="Create an invoice group", tags=TAGS, status_code=201, responses=CREATED
)
def create_group(body: GroupIn) -> GroupOut:
    tenant = context.tenant_id(router)
    group_id = body.id or uuid.uuid4().hex
    store.create(tenant, group_id, body.name, context.actor(router))
    if body.invoice_ids:
        store.add(tenant, group_id, body.invoice_ids, context.actor(router))
    return _group(tenant, group_id)[0]


@router.get("/invoice-groups", summary="List invoice groups with their charts", tags=TAGS, responses=OK)
def list_groups(limit: PageLimit = 20, cursor: Cursor = None) -> out.Page[GroupOut]:
    tenant = context.tenant_id(router)
    records, next_cursor = store.list_groups(tenant, limit, cursor)
    items: list[GroupOut] = []
    read = 0
    for n, record in enumerate(records):
        view, members = _group(tenant, record.id)
        items.append(view)
        read += len(members)
        if read >= LIST_INVOICE_BUDGET and n < len(records) - 1:
            # Charts read every member: a page of big groups ends here, the next goes on after it.
            next_cursor = store.cursor_after(record)
            break
    return out.Page[GroupOut](items=items, next_cursor=next_cursor)


@router.get(
    "/invoice-groups/<group_id>",
    summary="An invoice group: charts by status, aging, email status, totals, and its invoices",
    tags=TAGS,
    responses=OK,
)
def get_group(group_id: str, limit: PageLimit = 100, cursor: Cursor = None) -> GroupInvoicesOut:
    tenant = context.tenant_id(router)
    view, records = _group(tenant, group_id)
    # The charts count every invoice; the answer carries a page of them (a group of
    # 5,000 invoices in one answer would pass API Gateway's payload limit).
    shown, next_cursor = groups.invoices_page(group_id, records, limit, cursor)
    balances = account_balances.balances_of(tenant, {r.contact_id for r in shown})
    return GroupInvoicesOut(
        group=view,
        invoices=[views.invoice(r, balances.get(r.contact_id, account_balances.ZERO)) for r in shown],
        next_cursor=next_cursor,
    )


@router.patch("/invoice-groups/<group_id>", summary="Rename an invoice group", tags=TAGS, responses=OK)
def rename_group(group_id: str, body: RenameIn) -> GroupOut:
    tenant = context.tenant_id(router)
    store.rename(tenant, group_id, body.name, context.actor(router))
    return _group(tenant, group_id)[0]


@router.post(
    "/invoice-groups/<group_id>/invoices", summary="Add invoices to a group", tags=TAGS, responses=OK
)
def add_invoices(group_id: str, body: MembersIn) -> GroupOut:
    tenant = context.tenant_id(router)
    store.add(tenant, group_id, body.invoice_ids, context.actor(router))
    return _group(tenant, group_id)[0]


@router.post(
    "/invoice-groups/<group_id>/invoices/remove",
    summary="Take invoices out of a group (the invoices stay as they are)",
    tags=TAGS,
    responses=OK,
)
def remove_invoices(group_id: str, body: MembersIn) -> GroupOut:
    tenant = context.tenant_id(router)
    store.remove(tenant, group_id, body.invoice_ids)
    return _group(tenant, group_id)[0]


@router.post(
    "/invoice-groups/<group_id>/actions",
    summary="Email all or unpaid, mark drafts sent, regenerate drafts: 202, an operation",
    tags=TAGS,
    status_code=202,
    responses=ACCEPTED,
)
def group_action(group_id: str, body: ActionIn) -> out.OperationAccepted:
    tenant = context.tenant_id(router)
    which = {"email_all": "all", "email_unpaid": "unpaid"}.get(body.action, "drafts")
    selected = groups.selection(tenant, group_id, which)
    if not selected:
        raise ValidationError("action", f"the group has no invoice to {body.action.replace('_', ' ')}")
    action = {"mark_drafts_sent": "mark_sent", "regenerate_drafts": "regenerate"}.get(body.action, "send")
    # The worker reads the group's invoices when it runs (every one of them, not a selection's 500).
    request = bulk.BulkRequest(action=action, group_id=group_id, group_members=which)  # type: ignore[arg-type]
    operation = jobs.submit("invoices_bulk", tenant, context.actor(router), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)


@router.post(
    "/invoice-groups/<group_id>/print",
    summary="Download all: the group's invoices as one PDF (a presigned link)",
    tags=TAGS,
    responses=OK,
)
def print_group(group_id: str) -> out.PrintOut:
    from fieldbill.workflows.documents import prints  # lazy: the print path is heavy

    tenant = context.tenant_id(router)
    selected = groups.selection(tenant, group_id, "all")
    if not selected:
        raise ValidationError("group_id", "the group has no invoice to print")
    if len(selected) > prints.MAX_INVOICES:  # one PDF holds so many: say so rather than cut it short
        raise ValidationError(
            "group_id",
            f"the group has {len(selected)} invoices; one PDF holds at most {prints.MAX_INVOICES}: "
            "print it in parts (POST /invoices/bulk, action print)",
        )
    printed = prints.print_invoices(tenant, selected)
    return out.PrintOut(
        url=printed.url,
        expires_at=printed.expires_at.isoformat().replace("+00:00", "Z"),
        expires_in=get_settings().documents_link_seconds,
        invoice_count=printed.invoice_count,
        size_bytes=printed.size_bytes,
    )
