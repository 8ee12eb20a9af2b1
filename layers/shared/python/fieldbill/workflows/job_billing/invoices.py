"""A job's invoices: a policy builds the content (domain/job_policies.py), the person may adjust it
within the type's rules, then ONE transaction writes the invoice, the job and its number
(store/jobs.write_invoice). A job invoice IS an invoice: the invoice list, PDFs, print-many and
the QuickBooks sync take it as any other."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from fieldbill.domain import job_accounting as acc
from fieldbill.domain import job_policies as jp
from fieldbill.domain import model as dm
from fieldbill.domain import tax
from fieldbill.domain.errors import Conflict, InvalidTransition, Unavailable
from fieldbill.domain.products import default_product_id
from fieldbill.observability import logger
from fieldbill.store import jobs as store
from fieldbill.workflows.billing import destination

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice, Job

_NAMESPACE = uuid.UUID("6f9b1c52-14a4-4b1e-9a51-0d4c1f3e0a14")
SUMMARY_PRODUCT = "Job billing"
DEPOSIT_PRODUCT = "Job deposit"
DEFAULT_TERMS_DAYS = 30


def products(tenant_id: str, actor: str) -> jp.Products:
    """The catalogue products of summary, category and deposit lines (created once per tenant)."""
    specs = [
        dm.Product(id=default_product_id(name), tenant_id=tenant_id, name=name, auto_created=True)
        for name in (SUMMARY_PRODUCT, DEPOSIT_PRODUCT)
    ]
    store.ensure_products(specs, actor)
    return jp.Products(summary=specs[0].id, deposit=specs[1].id)


def preview(tenant_id: str, job_id: str, request: jp.PolicyRequest, actor: str) -> jp.JobInvoiceDraft:
    job = store.to_domain(store.get(tenant_id, job_id))
    return jp.build(job, request, products(tenant_id, actor))


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceOptions:
    customer_id: str | None = None  # split billing: any customer; the job's by default
    issue_date: date | None = None
    terms_days: int = DEFAULT_TERMS_DAYS
    number: str | None = None
    given_id: str | None = None  # the client's id of this invoice of the job


def invoice_id(
    tenant_id: str,
    job_id: str,
    request: jp.PolicyRequest,
    options: InvoiceOptions,
    customer: str,
    issue: date,
) -> str:
    """The invoice's id is its request's identity (decision 0013): the client's `id` when given,
    else the request itself (policy, amounts, customer, issue date, terms, number), so a repeat of
    the same request (a double-click, a retry after a lost answer) finds the first invoice instead
    of billing the job again. Not the job's version: the first invoice has moved it already."""
    if options.given_id is not None:
        return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}/job/{job_id}/id/{options.given_id}"))

    def text(value: Decimal | None) -> str:
        return "" if value is None else format(value.normalize(), "f")

    def amounts(values: Mapping[str, Decimal] | None) -> str:
        return "" if values is None else ",".join(f"{k}={text(v)}" for k, v in sorted(values.items()))

    canonical = "|".join(
        (
            str(request.policy),
            text(request.amount),
            text(request.percent),
            amounts(request.items),
            amounts(request.categories),
            text(request.apply_deposits),
            request.description or "",
            customer,
            issue.isoformat(),
            str(options.terms_days),
            options.number or "",
        )
    )
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}/job/{job_id}/request/{canonical}"))


def create(
    tenant_id: str, job_id: str, request: jp.PolicyRequest, options: InvoiceOptions, today: date, actor: str
) -> Invoice:
    record = store.get(tenant_id, job_id)
    job = store.to_domain(record)
    issue = options.issue_date or today
    customer = options.customer_id or job.customer_id
    new_id = invoice_id(tenant_id, job.id, request, options, customer, issue)
    earlier = store.find_invoice(tenant_id, new_id)
    if earlier is not None:
        if (earlier.policy, earlier.contact_id) != (str(request.policy), customer):
            raise Conflict(f"invoice id {options.given_id!r} is used by another invoice of the job")
        # The same request again: answered with the invoice it made (nothing billed twice).
        logger.info("job invoice repeated", extra={"tenant_id": tenant_id, "invoice_id": new_id})
        if (
            earlier.sync_status == str(dm.SyncStatus.NOT_SYNCED)
            and not store.settings(tenant_id).accounting_integration
        ):
            # Its QuickBooks part was refused a queue the first time (a 503): the repeat sends it.
            to_quickbooks(earlier, actor)
            return store.get_invoice(tenant_id, new_id)
        return earlier
    settings = store.settings(tenant_id)
    acc.check_issue_date(issue, today, settings)
    if customer != job.customer_id:
        store.customer_exists(tenant_id, customer)
    draft = jp.build(job, request, products(tenant_id, actor))
    after = jp.apply(job, draft)
    names = store.product_names(tenant_id, [line.product_id for line in draft.lines])
    lines = tuple(
        dm.InvoiceLine(
            line_no=n,
            item_id=None,
            line_kind=dm.LineKind(str(line.kind)),
            work_date=None,
            description=line.description,
            product_id=line.product_id,
            product_name=names.get(line.product_id, line.product_id),
            unit=None,
            quantity=Decimal(1),
            unit_price=line.amount,
            amount=line.amount,
            taxable=line.taxable,
        )
        for n, line in enumerate(draft.lines, start=1)
    )
    chosen = destination.resolve(tenant_id)
    invoice = dm.Invoice(
        id=new_id,
        tenant_id=tenant_id,
        run_id=f"job-{job.id}",
        contact_id=customer,
        grouping=dm.GroupingMode.PER_CONTACT,
        group_key=job.id,
        issue_date=issue,
        due_date=issue + timedelta(days=options.terms_days),
        lines=lines,
        subtotal=draft.total,
        total=draft.total,
        destination=chosen,
    )
    # Sales tax on top of the job's price (issue 15, decision 0010): the same rules as every other
    # invoice; the job's billed amounts (jp.apply above) stay the lines', before tax.
    invoice = tax.apply(invoice, destination.invoice_rules(tenant_id, chosen).tax)
    write = store.JobInvoiceWrite(
        invoice=invoice,
        lines_meta=[(line.invoiceable_id, line.category) for line in draft.lines],
        policy=str(draft.policy),
        invoice_type=str(draft.invoice_type),
        numbering=settings.numbering,
        requested_number=options.number,
        job_before=record,
        job_after=after,
    )
    store.write_invoice(write, actor)
    saved = store.get_invoice(tenant_id, invoice.id)
    logger.info(
        "job invoice written",
        extra={
            "tenant_id": tenant_id,
            "job_id": job.id,
            "invoice_id": invoice.id,
            "policy": str(draft.policy),
        },
    )
    if not settings.accounting_integration:
        # Without accounting integration the invoice goes to QuickBooks now; with it, at export.
        to_quickbooks(saved, actor)
    return store.get_invoice(tenant_id, invoice.id)


def to_quickbooks(record: Invoice, actor: str, *, strict: bool = False) -> bool:
    """Queue a job invoice for QuickBooks: a positive one as an Invoice (the usual sync); a
    negative correction as a credit memo on the job's invoice it corrects (settle_correction)."""
    if record.destination != str(dm.Destination.QUICKBOOKS):
        return False
    if record.total < 0:
        return settle_correction(record, actor, strict=strict)
    from fieldbill.workflows.qbo_sync import enqueue  # lazy: only a QuickBooks company loads the producer

    if record.sync_status in (str(dm.SyncStatus.NOT_SYNCED), str(dm.SyncStatus.ERROR)):
        enqueue.enqueue_invoices([record], actor)
    return True


def settle_correction(record: Invoice, actor: str, *, strict: bool) -> bool:
    """A negative correction of a QuickBooks company: a credit memo (issue 13's path) on the job's
    invoice it corrects, for the same customer, which must be in QuickBooks (open) by then. On save
    that may not be so yet (its sync is on the way): then posting or exporting it settles it, and
    refuses (409 / 422) while it cannot. The credit id is the correction's: a repeat is a no-op."""
    if record.total >= 0 or record.invoice_type != "correction":
        return False
    from fieldbill.workflows.qbo_sync import credit_memos  # lazy: the sync flow only when crediting

    target = store.credit_target(record.tenant_id, record)
    if target is None:
        if record.destination != str(dm.Destination.QUICKBOOKS):
            return False  # without QuickBooks the correction invoice is the credit
        return settle_standalone(record, actor)
    if target.status not in store.CREDITABLE:
        if strict:
            raise InvalidTransition(
                "invoice",
                target.status,
                "credited",
                f"invoice {target.id} is not in QuickBooks yet: sync it first",
            )
        logger.info(
            "credit waits for its invoice's sync", extra={"invoice_id": record.id, "target": target.id}
        )
        return False
    credit_id = store.correction_credit_id(record.id)
    credited = credit_memos.record_and_queue(
        record.tenant_id,
        target.id,
        credit_id=credit_id,
        amount=-record.total,
        on=record.issue_date,
        reason=f"job {record.job_id} correction {record.number or record.id}",
        actor=actor,
    )
    if record.credit_target_id != target.id:
        store.set_credit_target(record, target.id, actor)
        record = store.get_invoice(record.tenant_id, record.id)
    memo = next(c for c in credited.credit_memos if c.id == credit_id)
    if memo.qbo_id and (memo.qbo_apply_id or not Decimal(memo.applied)):
        store.correction_synced(record.tenant_id, record.id, memo.qbo_id)
    elif credit_memos.goes_to_quickbooks(credited):
        store.correction_queued(record, actor)  # its badge follows the credit memo from now on
    return True


def settle_standalone(record: Invoice, actor: str) -> bool:
    """A negative correction for a customer with no invoice of the job to credit (split billing):
    a standalone credit memo for the customer, kept on the correction itself (all unapplied: the
    customer's credit, lowering the contact's account balance here in the same write), and a
    CreditMemo no Payment applies in QuickBooks, lowering the customer's balance there alike."""
    from fieldbill.store import credit_memos as credit_store
    from fieldbill.workflows.qbo_sync import credit_memos  # lazy: the sync flow only when crediting

    credit_id = store.correction_credit_id(record.id)
    saved = credit_store.record_standalone(
        record.tenant_id,
        record.id,
        credit_id=credit_id,
        amount=-record.total,
        on=record.issue_date,
        reason=f"job {record.job_id} correction {record.number or record.id}",
        actor=actor,
    )
    memo = next(c for c in saved.credit_memos if c.id == credit_id)
    if memo.qbo_id or saved.sync_status in (str(dm.SyncStatus.PENDING), str(dm.SyncStatus.SYNCED)):
        return True  # QuickBooks has it, or its message is on the way
    try:
        credit_memos.enqueue(record.tenant_id, record.id, credit_id)
    except Exception as exc:
        logger.exception("a standalone credit memo could not be queued for QuickBooks")
        raise Unavailable("recorded here; not queued for QuickBooks: post or export it again") from exc
    store.correction_queued(saved, actor)
    return True


def of_job(tenant_id: str, job_id: str) -> tuple[Job, list[Invoice]]:
    return store.get(tenant_id, job_id), store.job_invoices(tenant_id, job_id)
