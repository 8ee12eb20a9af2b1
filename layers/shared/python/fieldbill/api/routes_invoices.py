"""Invoices after generation: find, read, edit, delete a draft, void, mark sent, pay, sync."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import (
    BulkIn,
    CreditMemoIn,
    Cursor,
    DayQuery,
    IdQuery,
    InvoicePatch,
    PageLimit,
    PaymentIn,
    ReasonIn,
    SendIn,
)
from fieldbill.clock import today
from fieldbill.domain import invoice_edits, money, payments
from fieldbill.domain.errors import ValidationError
from fieldbill.store import account_balances
from fieldbill.store import credit_memos as credit_store
from fieldbill.store import invoices as invoice_store
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.invoices import bulk, commands
from fieldbill.workflows.invoices import filters as invoice_filters

router = APIGatewayHttpRouter()
OK = responses()
ACCEPTED = responses(202, "Accepted")

# The list's filter values are declared once, with the parser they share with bulk (wt-life).
InvoiceStatusName = invoice_filters.InvoiceStatusName
SyncStatusName = invoice_filters.SyncStatusName
DestinationName = invoice_filters.DestinationName
JobPolicyName = invoice_filters.JobPolicyName
# An amount filter: operator and amount, e.g. gte:100 or eq:0 (=, <, >, <=, >=).
AmountFilter = Annotated[
    str | None,
    Query(
        pattern=invoice_filters.AMOUNT_PATTERN,
        description="operator:amount with eq, lt, gt, lte or gte, e.g. gt:0",
    ),
]


# ---------------------------------------------------------------------------- find and read
@router.get(
    "/invoices", summary="Find invoices (filters; newest issue date last)", tags=["invoices"], responses=OK
)
def list_invoices(
    status: Annotated[InvoiceStatusName | None, Query(description="deleted ones only when asked")] = None,
    sync_status: Annotated[SyncStatusName | None, Query()] = None,
    destination: Annotated[DestinationName | None, Query()] = None,
    contact_id: IdQuery = None,
    issue_date_from: DayQuery = None,
    issue_date_to: DayQuery = None,
    due_date_from: DayQuery = None,
    due_date_to: DayQuery = None,
    overdue: Annotated[
        Literal["true", "false"] | None, Query(description="derived from the due date")
    ] = None,
    total: AmountFilter = None,
    balance: AmountFilter = None,
    # --- issue 16 item 5 / issue 13 item 6: the contact's side and a search, sorting.
    account_balance: AmountFilter = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50, description="a contact tag")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="in the number or customer name")
    ] = None,
    bill_profile_id: IdQuery = None,
    period: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")] = None,
    sort: Annotated[
        Literal["date", "-date", "number", "-number", "total", "-total", "balance", "-balance"],
        Query(description="by issue date (the default), number, total or balance; - for descending"),
    ] = "date",
    job_id: IdQuery = None,
    invoice_type: Annotated[
        Literal["partial", "complete", "correction"] | None, Query(description="job invoices")
    ] = None,
    policy: Annotated[JobPolicyName | None, Query(description="job invoices")] = None,
    workflow_status: Annotated[
        Literal["invoiced", "approved", "exported", "posted"] | None, Query(description="job invoices")
    ] = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> out.Page[out.InvoiceOut]:
    tenant = context.tenant_id(router)
    # One parser for the list's filters and a bulk command's filter (wt-life): workflows/invoices/filters.
    given = {
        "status": status,
        "sync_status": sync_status,
        "destination": destination,
        "contact_id": contact_id,
        "issue_date_from": issue_date_from,
        "issue_date_to": issue_date_to,
        "due_date_from": due_date_from,
        "due_date_to": due_date_to,
        "overdue": overdue,
        "total": total,
        "balance": balance,
        "account_balance": account_balance,
        "tag": tag,
        "q": q,
        "bill_profile_id": bill_profile_id,
        "period": period,
        "job_id": job_id,
        "invoice_type": invoice_type,
        "policy": policy,
        "workflow_status": workflow_status,
    }
    wanted = invoice_filters.parse({k: v for k, v in given.items() if v is not None}, today(), sort=sort)
    listed = invoice_store.find_listed(tenant, wanted, limit, cursor)
    zero = Decimal("0")
    return out.Page[out.InvoiceOut](
        items=[views.invoice(r, listed.account_balances.get(r.contact_id, zero)) for r in listed.records],
        next_cursor=listed.next_cursor,
    )


@router.get(
    "/invoices/<invoice_id>",
    summary="Get an invoice with its lines, payments and badge",
    tags=["invoices"],
    responses=OK,
)
def get_invoice(invoice_id: str) -> out.InvoiceOut:
    from fieldbill.workflows.qbo_sync.waiting import sync_wait  # lazy: the API's cold start

    tenant = context.tenant_id(router)
    record = invoice_store.get(tenant, invoice_id)
    # As in the list: the contact's account balance beside the invoice (issue 16), and why its
    # sync waits on the company, if it does (issue 15).
    return views.invoice(
        record,
        account_balances.balance_of(tenant, record.contact_id),
        sync_wait(record.tenant_id, record.destination, record.sync_status),
    )


# ---------------------------------------------------------------------------- change
@router.patch(
    "/invoices/<invoice_id>",
    summary="Edit a draft or open invoice: lines, dates or terms, memo, message, billing email",
    tags=["invoices"],
    responses=OK,
)
def edit_invoice(invoice_id: str, body: InvoicePatch) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    given = body.model_fields_set
    change = invoice_edits.InvoiceEdit(
        lines=None
        if body.lines is None
        else tuple(invoice_edits.LineChange(**line.model_dump(exclude_unset=True)) for line in body.lines),
        issue_date=body.issue_date,
        due_date=body.due_date,
        terms_days=body.terms_days,
        texts={name: getattr(body, name) for name in invoice_store.TEXTS if name in given},
    )
    record = commands.edit(tenant, invoice_id, change, context.actor(router), body.version)
    return views.invoice(record)


@router.delete(
    "/invoices/<invoice_id>",
    summary="Delete a draft: its billable items become pending again (the record stays, deleted)",
    tags=["invoices"],
    responses=OK,
)
def delete_invoice(invoice_id: str) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    return views.invoice(commands.delete(tenant, invoice_id, context.actor(router), None))


@router.post(
    "/invoices/<invoice_id>/void",
    summary="Void an open invoice (also in QuickBooks); its billable items become pending again",
    tags=["invoices"],
    responses=OK,
)
def void_invoice(invoice_id: str, body: ReasonIn) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    return views.invoice(commands.void(tenant, invoice_id, context.actor(router), body.reason))


@router.post(
    "/invoices/<invoice_id>/mark-sent",
    summary="Mark an invoice sent without email: a draft becomes open",
    tags=["invoices"],
    responses=OK,
)
def mark_sent(invoice_id: str) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    return views.invoice(commands.mark_sent(tenant, invoice_id, context.actor(router)))


@router.post(
    "/invoices/<invoice_id>/send",
    summary="Email the invoice with its PDF (once per version and recipient); a draft becomes open",
    tags=["invoices"],
    responses=OK,
)
def send_invoice(invoice_id: str, body: SendIn) -> out.SentOut:
    tenant = context.tenant_id(router)
    record, sent = commands.send(tenant, invoice_id, context.actor(router), body.to)
    return out.SentOut(
        invoice=views.invoice(record),
        message_id=sent.message_id,
        recipient=sent.recipient,
        subject=sent.subject,
        sent_now=sent.sent_now,
        delivery_status=sent.delivery_status,
    )


@router.post(
    "/invoices/<invoice_id>/payments",
    summary="Record a payment: the balance goes down, the status follows (partially paid, paid)",
    tags=["invoices"],
    status_code=201,
    responses=responses(201, "Created"),
)
def record_payment(invoice_id: str, body: PaymentIn) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    record = commands.record_payment(
        tenant,
        invoice_id,
        payment_id=body.id or uuid.uuid4().hex,
        amount=body.amount,
        paid_on=(body.date or today()).isoformat(),
        method=body.method,
        reference=body.reference,
        actor=context.actor(router),
    )
    return views.invoice(record)


@router.delete(
    "/invoices/<invoice_id>/payments/<payment_id>",
    summary="Remove a payment recorded by mistake: the balance and status follow",
    tags=["invoices"],
    responses=OK,
)
def remove_payment(invoice_id: str, payment_id: str) -> out.InvoiceOut:
    tenant = context.tenant_id(router)
    return views.invoice(commands.remove_payment(tenant, invoice_id, payment_id, context.actor(router), None))


@router.post(
    "/invoices/<invoice_id>/sync",
    summary="Queue an invoice for sync to QuickBooks (202); a local one moves there first",
    tags=["invoices"],
    status_code=202,
    responses=ACCEPTED,
)
def sync_invoice(invoice_id: str) -> out.SyncAccepted:
    tenant = context.tenant_id(router)
    status = commands.sync(tenant, invoice_id, context.actor(router))
    return out.SyncAccepted(invoice_id=invoice_id, sync_status=status)


@router.post(
    "/invoices/bulk",
    summary="One command on many invoices (delete drafts, mark sent, void, sync, send, print: one PDF "
    "behind a presigned link in the result): 202, an operation",
    tags=["invoices"],
    status_code=202,
    responses=ACCEPTED,
)
def bulk_invoices(body: BulkIn) -> out.OperationAccepted:
    tenant = context.tenant_id(router)
    # --- wt-life: a selection or a filter, exactly one; the filter checked as the list checks it
    # (here, so a bad one queues nothing; the worker reads its matches when it runs).
    if body.invoice_ids is not None and body.filter is not None:
        raise ValidationError("filter", "give invoice_ids or filter, not both")
    if body.invoice_ids is None and body.filter is None:
        raise ValidationError("invoice_ids", "give invoice_ids or filter")
    if body.invoice_ids is not None and len(set(body.invoice_ids)) != len(body.invoice_ids):
        raise ValidationError("invoice_ids", "an invoice is selected twice")
    values = body.model_dump()
    if body.filter is not None:
        values["filter"] = body.filter.model_dump(mode="json", exclude_none=True)
        invoice_filters.check(values["filter"], where="body", prefix="filter.")
    # --- invoice groups (issue 16): the group exists (or is created) before the operation runs,
    # so a retried operation adds to the same group and never creates a second one.
    if body.action == "add_to_group":
        values["group_id"] = _group_for(tenant, body.group_id, body.group_name)
    elif body.group_id or body.group_name:
        raise ValidationError("group_id", "only for action add_to_group")
    request = bulk.BulkRequest.model_validate(values)
    operation = jobs.submit("invoices_bulk", tenant, context.actor(router), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)


# ---------------------------------------------------------------------------- credit memos (wt-credit)
@router.post(
    "/invoices/<invoice_id>/credit-memos",
    summary="Credit an invoice (a correction): its balance goes down (never below 0, the rest is the "
    "contact's credit); a full credit makes its items billable again; QuickBooks gets a CreditMemo",
    tags=["invoices"],
    status_code=201,
    responses=responses(201, "Created"),
)
def record_credit_memo(invoice_id: str, body: CreditMemoIn) -> out.InvoiceOut:
    lines = [
        payments.CreditLine(
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            product_id=line.product_id,
            taxable=line.taxable,
        )
        for line in body.lines or []
    ]
    # lazy: the module also holds the consumer's half (QuickBooks client, requests): cold start
    from fieldbill.workflows.qbo_sync import credit_memos

    record = credit_memos.record_and_queue(
        context.tenant_id(router),
        invoice_id,
        credit_id=body.id or uuid.uuid4().hex,
        amount=body.amount,
        lines=lines,
        on=(body.date or today()).isoformat(),
        reason=body.reason,
        actor=context.actor(router),
        # wt-life: a person's credit is before tax and credits the tax it carries on the invoice
        with_tax=True,
        amount_taxable=body.taxable,
    )
    return views.invoice(record)


@router.get(
    "/invoices/<invoice_id>/credit-memos",
    summary="An invoice's credit memos",
    tags=["invoices"],
    responses=OK,
)
def list_credit_memos(invoice_id: str) -> out.CreditMemoList:
    record = invoice_store.get(context.tenant_id(router), invoice_id)
    return out.CreditMemoList(invoice_id=invoice_id, items=views.credit_memos(record))


@router.delete(
    "/invoices/<invoice_id>/credit-memos/<credit_id>",
    summary="Remove a credit memo: the invoice's balance, status and the contact's account "
    "balance are restored at once; QuickBooks deletes its applying Payment and the CreditMemo",
    tags=["invoices"],
    responses=OK,
)
def remove_credit_memo(
    invoice_id: str,
    credit_id: str,
    reason: Annotated[
        str | None, Query(min_length=1, max_length=500, description="why, for the audit")
    ] = None,
) -> out.InvoiceOut:
    # lazy: the module also holds the consumer's half (QuickBooks client, requests): cold start
    from fieldbill.workflows.qbo_sync import credit_memos

    tenant = context.tenant_id(router)
    record = credit_memos.remove_and_queue(tenant, invoice_id, credit_id, context.actor(router), reason)
    return views.invoice(record, account_balances.balance_of(tenant, record.contact_id))


def _group_for(tenant: str, group_id: str | None, group_name: str | None) -> str:
    from fieldbill.store import invoice_groups

    if bool(group_id) == bool(group_name):
        raise ValidationError("group_id", "name an existing group (group_id) or a new one (group_name)")
    if group_id:
        invoice_groups.get(tenant, group_id)
        return group_id
    created = invoice_groups.create(tenant, uuid.uuid4().hex, str(group_name), context.actor(router))
    return str(created.id)


@router.get(
    "/contacts/<contact_id>/balance",
    summary="A contact's account balance, beside the one QuickBooks reports for its customer",
    tags=["invoices"],
    responses=OK,
)
def contact_balance(contact_id: str) -> out.AccountBalanceOut:
    tenant = context.tenant_id(router)
    found = invoice_store.account_balance(tenant, contact_id)
    ours = payments.account_balance(found.open_balances, credit_store.unapplied_credits(tenant, contact_id))
    theirs = None if found.quickbooks_balance is None else money.cents(found.quickbooks_balance)
    return out.AccountBalanceOut(
        contact_id=contact_id,
        account_balance=views.decimal_text(ours),
        open_invoices=len(found.open_balances),
        quickbooks_balance=None if theirs is None else views.decimal_text(theirs),
        differs_by=None if theirs is None else views.decimal_text(ours - theirs),
    )
