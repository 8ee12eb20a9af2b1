"""Job-shop jobs (issue 14): jobs and their invoiceables, the policies' invoices, the accounting
workflow (approve, export, post), the journal and the tenant's job-billing settings.

Not the asynchronous operations (/operations): a job here is a job shop's job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import schemas_jobs as s
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Cursor, DayQuery, IdQuery, PageLimit
from fieldbill.clock import today
from fieldbill.domain import job_accounting as acc
from fieldbill.domain import job_policies as jp
from fieldbill.domain import jobs as dj
from fieldbill.domain.errors import ValidationError
from fieldbill.store import jobs as job_store
from fieldbill.workflows.job_billing import accounting
from fieldbill.workflows.job_billing import invoices as job_invoices
from fieldbill.workflows.job_billing import jobs as job_commands

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Job

router = APIGatewayHttpRouter()
OK = responses()
CREATED = responses(201, "Created")
TAGS = ["jobs"]


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


# ---------------------------------------------------------------------------- views
def job_out(job: dj.Job, record: Job | None = None) -> s.JobOut:
    summary = dj.summarize(job)
    text = views.decimal_text
    return s.JobOut(
        id=job.id,
        created_at=record.created_at if record is not None else None,
        updated_at=record.updated_at if record is not None else None,
        name=job.name or None,
        customer_id=job.customer_id,
        billing_type=job.billing_type.value,  # type: ignore[arg-type]
        status=job.status.value,  # type: ignore[arg-type]
        price_list_id=job.price_list_id,
        version=job.version,
        invoice_count=job.invoice_count,
        suggested_price=text(summary.suggested_price),
        invoiced=text(summary.invoiced),
        deposits=text(summary.deposits),
        open_deposits=text(summary.open_deposits),
        remaining=text(summary.remaining),
        invoiceables=[
            s.InvoiceableOut(
                id=i.id,
                kind=str(i.kind),
                product_id=i.product_id,
                description=i.description,
                quantity=text(i.quantity),
                unit_price=text(i.unit_price),
                category=i.category,
                charge_kind=str(i.charge_kind) if i.charge_kind else None,
                taxable=i.taxable,
                counts=row.counts,
                amount=text(row.amount),
                price=text(row.price),
                billed=text(row.billed),
                remaining=text(row.remaining),
            )
            for i, row in zip(job.invoiceables, summary.items, strict=True)
        ],
    )


def _record_out(record: Job) -> s.JobOut:
    return job_out(job_store.to_domain(record), record)


def _invoiceable(body: s.InvoiceableIn) -> dj.Invoiceable:
    return dj.Invoiceable(
        id=body.id,
        kind=dj.InvoiceableKind(body.kind),
        description=body.description,
        product_id=body.product_id,
        quantity=body.quantity,
        # A charge's price is looked up in the price structure (workflows/job_billing/jobs.py).
        unit_price=body.unit_price if body.unit_price is not None else dj.ZERO,
        category=body.category or dj.ORDER_ITEMS_CATEGORY,
        charge_kind=dj.ChargeKind(body.charge_kind) if body.charge_kind else None,
        taxable=body.taxable,
    )


def _request(body: s.JobInvoiceIn) -> jp.PolicyRequest:
    return jp.PolicyRequest(
        policy=jp.Policy(body.policy),
        amount=body.amount,
        percent=body.percent,
        items=body.items,
        categories=body.categories,
        apply_deposits=body.apply_deposits,
        description=body.description,
    )


# ---------------------------------------------------------------------------- settings
@router.get("/jobs/settings", summary="The tenant's job-billing settings", tags=TAGS, responses=OK)
def get_settings_route() -> s.JobSettingsOut:
    return _settings_out(job_store.settings(_tenant()))


@router.put(
    "/jobs/settings",
    summary="Set numbering (none, automatic, automatic_fixed), backdating, accounting, GL accounts",
    tags=TAGS,
    responses=OK,
)
def put_settings(body: s.JobSettingsIn) -> s.JobSettingsOut:
    value = acc.JobBillingSettings(**body.model_dump())
    return _settings_out(job_store.save_settings(_tenant(), value, _actor()))


def _settings_out(value: acc.JobBillingSettings) -> s.JobSettingsOut:
    return s.JobSettingsOut(
        numbering=str(value.numbering),
        backdating_days=value.backdating_days,
        accounting_integration=value.accounting_integration,
        receivable_account=value.receivable_account,
        income_account=value.income_account,
        deposit_account=value.deposit_account,
        category_accounts=dict(value.category_accounts),
    )


# ---------------------------------------------------------------------------- jobs
@router.post(
    "/jobs",
    summary="Create a job (Open) with its invoiceables",
    tags=TAGS,
    status_code=201,
    responses=CREATED,
)
def create_job(body: s.JobIn) -> s.JobOut:
    tenant = _tenant()
    if len({i.id for i in body.invoiceables}) != len(body.invoiceables):
        raise ValidationError("invoiceables", "ids must be unique within the job")
    job = dj.Job(
        id=body.id,
        tenant_id=tenant,
        customer_id=body.customer_id,
        billing_type=dj.BillingType(body.billing_type),
        name=body.name or "",
        price_list_id=body.price_list_id,
        invoiceables=tuple(_invoiceable(i) for i in body.invoiceables),
    )
    given = {i.id: i.unit_price for i in body.invoiceables}
    return _record_out(job_commands.create(job, given, _actor()))


@router.get("/jobs", summary="List jobs with their suggested price and what is left", tags=TAGS, responses=OK)
def list_jobs(
    status: Annotated[s.JobStatusName | None, Query()] = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> s.JobPage:
    records, next_cursor = job_store.list_jobs(_tenant(), limit, cursor, status)
    return s.JobPage(items=[_record_out(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/jobs/<job_id>",
    summary="A job: invoiceables, suggested price, invoiced, deposits, remaining",
    tags=TAGS,
    responses=OK,
)
def get_job(job_id: str) -> s.JobOut:
    return _record_out(job_store.get(_tenant(), job_id))


@router.delete("/jobs/<job_id>", summary="Delete a job that has no invoice", tags=TAGS, responses=OK)
def delete_job(job_id: str) -> s.DeletedJobOut:
    job_commands.delete(_tenant(), job_id, _actor())
    return s.DeletedJobOut(deleted=True, id=job_id)


@router.post("/jobs/<job_id>/close", summary="Close a job: open -> closed", tags=TAGS, responses=OK)
def close_job(job_id: str, body: s.JobStatusIn) -> s.JobOut:
    return _record_out(job_commands.set_status(_tenant(), job_id, dj.JobStatus.CLOSED, _actor(), body.reason))


@router.post("/jobs/<job_id>/reopen", summary="Reopen a closed job: closed -> open", tags=TAGS, responses=OK)
def reopen_job(job_id: str, body: s.JobStatusIn) -> s.JobOut:
    return _record_out(job_commands.set_status(_tenant(), job_id, dj.JobStatus.OPEN, _actor(), body.reason))


@router.post(
    "/jobs/<job_id>/invoiceables",
    summary="Add an order item or a charge (open jobs only)",
    tags=TAGS,
    status_code=201,
    responses=CREATED,
)
def add_invoiceable(job_id: str, body: s.InvoiceableIn) -> s.JobOut:
    record = job_commands.add_invoiceable(_tenant(), job_id, _invoiceable(body), body.unit_price, _actor())
    return _record_out(record)


@router.put(
    "/jobs/<job_id>/invoiceables/<invoiceable_id>",
    summary="Replace an invoiceable nothing is invoiced on",
    tags=TAGS,
    responses=OK,
)
def replace_invoiceable(job_id: str, invoiceable_id: str, body: s.InvoiceableIn) -> s.JobOut:
    if body.id != invoiceable_id:
        raise ValidationError("id", "must be the invoiceable id of the path")
    record = job_commands.replace_invoiceable(
        _tenant(), job_id, _invoiceable(body), body.unit_price, _actor()
    )
    return _record_out(record)


@router.delete(
    "/jobs/<job_id>/invoiceables/<invoiceable_id>",
    summary="Remove an invoiceable nothing is invoiced on",
    tags=TAGS,
    responses=OK,
)
def remove_invoiceable(job_id: str, invoiceable_id: str) -> s.JobOut:
    return _record_out(job_commands.remove_invoiceable(_tenant(), job_id, invoiceable_id, _actor()))


# ---------------------------------------------------------------------------- invoices
@router.post(
    "/jobs/<job_id>/invoices/preview",
    summary="The invoice a policy would build now (nothing is written)",
    tags=TAGS,
    responses=OK,
)
def preview_invoice(job_id: str, body: s.JobInvoiceIn) -> s.JobInvoiceDraftOut:
    tenant = _tenant()
    job = job_store.to_domain(job_store.get(tenant, job_id))
    draft = job_invoices.preview(tenant, job_id, _request(body), _actor())
    text = views.decimal_text
    return s.JobInvoiceDraftOut(
        policy=draft.policy.value,  # type: ignore[arg-type]
        invoice_type=draft.invoice_type.value,  # type: ignore[arg-type]
        total=text(draft.total),
        lines=[
            s.DraftLineOut(
                line_kind=str(ln.kind),
                description=ln.description,
                product_id=ln.product_id,
                amount=text(ln.amount),
                invoiceable_id=ln.invoiceable_id,
                category=ln.category,
                taxable=ln.taxable,
            )
            for ln in draft.lines
        ],
        job_after=job_out(jp.apply(job, draft)),
    )


@router.post(
    "/jobs/<job_id>/invoices",
    summary="Save a policy's invoice (409 when the job's status forbids the policy)",
    tags=TAGS,
    status_code=201,
    responses=CREATED,
)
def create_invoice(job_id: str, body: s.JobInvoiceIn) -> s.InvoiceOut:
    options = job_invoices.InvoiceOptions(
        customer_id=body.customer_id,
        issue_date=body.issue_date,
        terms_days=body.terms_days,
        number=body.number,
        given_id=body.id,
    )
    record = job_invoices.create(_tenant(), job_id, _request(body), options, today(), _actor())
    return views.invoice(record)


@router.get(
    "/jobs/<job_id>/invoices", summary="A job with its invoices, oldest first", tags=TAGS, responses=OK
)
def list_job_invoices(job_id: str) -> s.JobInvoicesOut:
    record, invoices = job_invoices.of_job(_tenant(), job_id)
    return s.JobInvoicesOut(job=_record_out(record), invoices=[views.invoice(r) for r in invoices])


# ---------------------------------------------------------------------------- accounting workflow
@router.post(
    "/invoices/<invoice_id>/approve",
    summary="Approve a job invoice: fully distributed to GL accounts (debits = credits)",
    tags=TAGS,
    responses=OK,
)
def approve_invoice(invoice_id: str, body: s.ApproveIn) -> s.InvoiceOut:
    entries = None
    if body.distribution is not None:
        entries = [acc.Entry(e.account, e.debit, e.credit) for e in body.distribution]
    return views.invoice(accounting.approve(_tenant(), invoice_id, entries, _actor()))


@router.post(
    "/invoices/export",
    summary="Export approved job invoices: to QuickBooks (the sync) or as a CSV / IIF file (presigned link)",
    tags=TAGS,
    responses=OK,
)
def export_invoices(body: s.ExportIn) -> s.ExportOut:
    if len(set(body.invoice_ids)) != len(body.invoice_ids):
        raise ValidationError("invoice_ids", "an invoice is selected twice")
    done = accounting.export(_tenant(), body.invoice_ids, body.target, _actor())
    return s.ExportOut(
        target=body.target,
        url=done.url,
        expires_at=done.expires_at.isoformat().replace("+00:00", "Z") if done.expires_at else None,
        invoices=[views.invoice(r) for r in done.invoices],
    )


@router.post(
    "/invoices/<invoice_id>/post",
    summary="Post a job invoice (locked from then on: no edit, delete or void)",
    tags=TAGS,
    responses=OK,
)
def post_invoice(invoice_id: str) -> s.InvoiceOut:
    return views.invoice(accounting.post(_tenant(), invoice_id, _actor()))


@router.get(
    "/invoices/journal",
    summary="Journal of posted job invoices: totals, by type, tax distribution, by GL account",
    tags=TAGS,
    responses=OK,
)
def invoice_journal(
    posted_from: DayQuery = None,
    posted_to: DayQuery = None,
    job_id: IdQuery = None,
    contact_id: IdQuery = None,
    invoice_type: Annotated[Literal["partial", "complete", "correction"] | None, Query()] = None,
) -> s.JournalOut:
    if posted_from and posted_to and posted_to < posted_from:
        raise ValidationError("posted_to", "must not be before posted_from")
    filters = {"job_id": job_id, "contact_id": contact_id, "invoice_type": invoice_type}
    found, records = accounting.journal(_tenant(), posted_from, posted_to, filters)
    text = views.decimal_text
    return s.JournalOut(
        count=found.count,
        total=text(found.total),
        by_type={k: text(v) for k, v in found.by_type.items()},
        taxable=text(found.taxable),
        non_taxable=text(found.non_taxable),
        by_account=[
            s.JournalAccountOut(account=a, debit=text(d), credit=text(c))
            for a, (d, c) in found.by_account.items()
        ],
        invoices=[views.invoice(r) for r in records],
    )
