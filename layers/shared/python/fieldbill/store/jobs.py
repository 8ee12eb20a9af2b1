"""Job-shop jobs and their invoices (issue 14): the job item, job invoices, numbering, settings,
the accounting workflow. Not the asynchronous "jobs" (operations) of store/runs.py.

A job and its invoiceables are ONE item (`T#t#JOB#id`), so its suggested price and what is left
cost one read, and the tenant's job list (gsi1 `T#t#JOBS`) returns whole jobs. A job invoice is
an Invoice (store/billing.invoice_record) written in ONE transaction with the job it changes
(conditional on the job's version) and the number it takes from the tenant's invoice sequence
(store/numbering.py): a failed write leaves nothing behind and takes no number; job invoices are
never deleted or voided (a correction changes them), so every number taken is posted in the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now, now_iso
from fieldbill.domain import job_accounting as acc
from fieldbill.domain import jobs as dj
from fieldbill.domain import model as dm
from fieldbill.domain import states
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound
from fieldbill.domain.states import (
    INVOICE_MACHINE,
    JOB_MACHINE,
    SYNC_MACHINE,
    WORKFLOW_MACHINE,
    WorkflowStatus,
)
from fieldbill.store import backfills, billing, catalog, common, numbering, transitions
from fieldbill.store.models import (
    META,
    Contact,
    Entity,
    Invoice,
    Job,
    JobBillingSettings,
    JobInvoiceable,
    PriceList,
    Product,
)


# ---------------------------------------------------------------------------- mapping
def invoiceable_record(item: dj.Invoiceable) -> JobInvoiceable:
    return JobInvoiceable(
        id=item.id,
        kind=str(item.kind),
        description=item.description,
        product_id=item.product_id,
        quantity=item.quantity,
        unit_price=item.unit_price,
        category=item.category,
        charge_kind=str(item.charge_kind) if item.charge_kind else None,
        taxable=item.taxable,
        billed=item.billed,
        adjusted=item.adjusted,
    )


def to_domain(record: Job) -> dj.Job:
    return dj.Job(
        id=record.id,
        tenant_id=record.tenant_id,
        customer_id=record.customer_id,
        billing_type=dj.BillingType(record.billing_type),
        name=record.name or "",
        status=dj.JobStatus(record.status),
        price_list_id=record.price_list_id,
        invoiceables=tuple(
            dj.Invoiceable(
                id=i.id,
                kind=dj.InvoiceableKind(i.kind),
                description=i.description or "",
                product_id=i.product_id,
                quantity=Decimal(i.quantity),
                unit_price=Decimal(i.unit_price),
                category=i.category,
                charge_kind=dj.ChargeKind(i.charge_kind) if i.charge_kind else None,
                taxable=bool(i.taxable),
                billed=Decimal(i.billed or 0),
                adjusted=Decimal(i.adjusted or 0),
            )
            for i in record.invoiceables or []
        ),
        deposits=Decimal(record.deposits or 0),
        deposits_applied=Decimal(record.deposits_applied or 0),
        invoice_count=int(record.invoice_count or 0),
        version=int(record.version or 1),
    )


# ---------------------------------------------------------------------------- jobs
def get(tenant_id: str, job_id: str) -> Job:
    """The job as stored now (consistent: an invoice is decided from its latest version)."""
    try:
        record = Entity.get(Job.key(tenant_id, job_id), META, consistent_read=True)
    except Entity.DoesNotExist:
        raise NotFound("job", job_id) from None
    if not isinstance(record, Job):
        raise NotFound("job", job_id)
    return record


def list_jobs(
    tenant_id: str, limit: int, cursor: str | None, status: str | None = None
) -> tuple[list[Job], str | None]:
    """A page of the tenant's jobs, whole (invoiceables included): one request reads ~200 jobs."""
    checked = common.checked_cursor(cursor, gsi1pk=Job.list_key(tenant_id))
    condition = (Job.status == status) if status else None
    return common.list_by_gsi1(Job, Job.list_key(tenant_id), limit, checked, filter_condition=condition)


def customer_exists(tenant_id: str, contact_id: str) -> None:
    if common.find(Contact, Contact.key(tenant_id, contact_id)) is None:
        raise NotFound("contact", contact_id)


def job_record(job: dj.Job) -> Job:
    """A new job as stored (version 1, nothing invoiced)."""
    return Job(
        Job.key(job.tenant_id, job.id),
        META,
        tenant_id=job.tenant_id,
        id=job.id,
        gsi1pk=Job.list_key(job.tenant_id),
        gsi1sk=job.id,
        name=job.name or None,
        customer_id=job.customer_id,
        billing_type=str(job.billing_type),
        status=str(job.status),
        price_list_id=job.price_list_id,
        invoiceables=[invoiceable_record(i) for i in job.invoiceables],
        deposits=Decimal("0"),
        deposits_applied=Decimal("0"),
        invoice_count=0,
        version=1,
    )


def create(job: dj.Job, actor: str) -> Job:
    customer_exists(job.tenant_id, job.customer_id)
    JOB_MACHINE.begin(job.id, job.status, at=now(), actor=actor)
    record = job_record(job)
    common.create(record, actor, "job created")
    return record


def put_many(jobs: Sequence[dj.Job]) -> None:
    """Seed many new jobs at once (the bench; an import): batch writes, 25 a request."""
    with Job.batch_write() as batch:
        for job in jobs:
            record = job_record(job)
            record.created_at = record.updated_at = now_iso()
            batch.save(record)


def save_invoiceables(record: Job, job: dj.Job, actor: str, reason: str) -> Job:
    """Write the job's new invoiceables, conditional on the version they were decided from and on
    the status (a job closed or billed meanwhile refuses the change)."""
    note = common.history_entry(actor, record.status, record.status, reason)
    try:
        record.update(
            actions=[
                Job.invoiceables.set([invoiceable_record(i) for i in job.invoiceables]),
                Job.version.set(int(record.version) + 1),
                Job.updated_at.set(now_iso()),
                Job.history.set(Job.history.append([note])),
            ],
            condition=(Job.version == int(record.version)) & (Job.status == str(record.status)),
        )
    except UpdateError as exc:
        if common.conditional_failed(exc):
            raise Conflict(f"job {record.id!r} changed meanwhile; read it again") from None
        raise
    return record


def set_status(record: Job, target: dj.JobStatus, actor: str, reason: str | None = None) -> Job:
    """Close or reopen (billed only comes with the Complete invoice), through JOB_MACHINE."""
    if target is dj.JobStatus.BILLED:
        raise InvalidTransition(
            JOB_MACHINE.name, record.status, target, "a job is billed by its complete invoice"
        )
    transitions.apply(
        record,
        "status",
        JOB_MACHINE,
        str(target),
        actor=actor,
        reason=reason,
        extra=[Job.version.set(int(record.version) + 1)],
        condition=Job.version == int(record.version),
    )
    return get(record.tenant_id, record.id)


def delete(record: Job, actor: str) -> None:
    """Delete a job with no invoice (kept as a tombstone); an invoice written meanwhile refuses it."""
    dj.check_deletable(to_domain(record))
    catalog.delete(
        record,
        actor,
        condition=(Job.invoice_count == 0) & (Job.version == int(record.version)),
        refused=f"job {record.id!r} has invoices or changed meanwhile",
        reason="job deleted",
    )


def price_structure(
    tenant_id: str, product_id: str, price_list_id: str | None
) -> tuple[dict[str, Decimal], Decimal | None, str]:
    """The active price structure for a product: the price list's prices, the product's default
    price and its name (NotFound for an unknown product or price list)."""
    product = common.find(Product, Product.key(tenant_id, product_id))
    if product is None:
        raise NotFound("product", product_id)
    prices: dict[str, Decimal] = {}
    if price_list_id:
        price_list = common.find(PriceList, PriceList.key(tenant_id, price_list_id))
        if price_list is None:
            raise NotFound("price list", price_list_id)
        prices = {
            k: Decimal(str(v)) for k, v in (price_list.prices.as_dict() if price_list.prices else {}).items()
        }
    return prices, product.default_unit_price, product.name


def contact_price_list(tenant_id: str, contact_id: str) -> str | None:
    contact = common.find(Contact, Contact.key(tenant_id, contact_id))
    return contact.price_list_id if contact else None


def product_names(tenant_id: str, product_ids: Sequence[str]) -> dict[str, str]:
    found = common.batch_get(Product, ((Product.key(tenant_id, p), META) for p in set(product_ids)))
    return {r.id: r.name for r in found.values()}


def ensure_products(specs: Sequence[dm.Product], actor: str) -> None:
    billing.ensure_products(specs, actor)


# ---------------------------------------------------------------------------- settings
def settings(tenant_id: str) -> acc.JobBillingSettings:
    record = common.find(JobBillingSettings, JobBillingSettings.key(tenant_id))
    if record is None:
        return acc.JobBillingSettings()
    defaults = acc.JobBillingSettings()
    return acc.JobBillingSettings(
        numbering=acc.NumberingMode(record.numbering),
        backdating_days=int(record.backdating_days),
        accounting_integration=bool(record.accounting_integration),
        receivable_account=record.receivable_account or defaults.receivable_account,
        income_account=record.income_account or defaults.income_account,
        deposit_account=record.deposit_account or defaults.deposit_account,
        category_accounts=dict(record.category_accounts.as_dict() if record.category_accounts else {}),
    )


def save_settings(tenant_id: str, value: acc.JobBillingSettings, actor: str) -> acc.JobBillingSettings:
    record = JobBillingSettings(
        JobBillingSettings.key(tenant_id),
        META,
        tenant_id=tenant_id,
        id=tenant_id,
        numbering=str(value.numbering),
        backdating_days=value.backdating_days,
        accounting_integration=value.accounting_integration,
        receivable_account=value.receivable_account,
        income_account=value.income_account,
        deposit_account=value.deposit_account,
        category_accounts=dict(value.category_accounts),
        updated_at=now_iso(),
        history=[common.history_entry(actor, None, "saved", "job billing settings")],
    )
    record.save()  # the whole settings document, last writer wins (a person's form)
    return settings(tenant_id)


# ---------------------------------------------------------------------------- job invoices
@dataclass(frozen=True, slots=True)
class JobInvoiceWrite:
    invoice: dm.Invoice
    lines_meta: Sequence[tuple[str | None, str | None]]  # (invoiceable_id, category) per line
    policy: str
    invoice_type: str
    numbering: acc.NumberingMode
    requested_number: str | None
    job_before: Job
    job_after: dj.Job


def write_invoice(write: JobInvoiceWrite, actor: str) -> bool:
    """Put the invoice, update its job and take its number in ONE transaction. True when written;
    False when a retry finds this very invoice already written; Conflict when the job changed
    meanwhile or a typed number is taken (ValidationError for a number the mode refuses)."""
    inv = write.invoice
    tenant = inv.tenant_id
    record = billing.invoice_record(inv)
    for line, (invoiceable_id, category) in zip(record.lines, write.lines_meta, strict=True):
        line.invoiceable_id = invoiceable_id
        line.category = category
    record.job_id = write.job_before.id
    record.policy = write.policy
    record.invoice_type = write.invoice_type
    record.workflow_status = str(WorkflowStatus.INVOICED)
    reason = f"job {write.job_before.id}: {write.policy}"
    at = now()
    INVOICE_MACHINE.begin(inv.id, dm.InvoiceStatus(record.status), at=at, actor=actor, reason=reason)
    SYNC_MACHINE.begin(inv.id, dm.SyncStatus(record.sync_status), at=at, actor=actor)
    WORKFLOW_MACHINE.begin(inv.id, WorkflowStatus.INVOICED, at=at, actor=actor)
    stamp = now_iso()
    record.created_at = record.updated_at = stamp
    record.history = [common.history_entry(actor, None, record.status, reason)]

    before, after = write.job_before, write.job_after
    job_actions: list[Action] = [
        Job.invoiceables.set([invoiceable_record(i) for i in after.invoiceables]),
        Job.deposits.set(after.deposits),
        Job.deposits_applied.set(after.deposits_applied),
        Job.invoice_count.set(after.invoice_count),
        Job.version.set(after.version),
    ]
    job_condition = Job.version == int(before.version)
    if str(after.status) != before.status:
        decided = transitions.change(
            Job, "status", JOB_MACHINE, before.id, before.status, str(after.status),
            actor=actor, reason=f"complete invoice {inv.id}", extra=job_actions,
        )  # fmt: skip
        job_actions, job_condition = decided.actions, job_condition & decided.condition
    else:
        note = common.history_entry(actor, before.status, before.status, f"invoice {inv.id} ({write.policy})")
        job_actions += [Job.updated_at.set(stamp), Job.history.set(Job.history.append([note]))]

    def parts(tx: TransactWrite, number: str | None) -> None:
        record.number = number
        tx.save(record, condition=Entity.pk.does_not_exist())
        tx.update(before, actions=job_actions, condition=job_condition)

    try:
        # The tenant's one invoice sequence (issue 15): the number is taken in this transaction.
        numbering.write_numbered(
            tenant,
            INVOICE_SEQUENCE,
            inv.id,
            parts,
            mode=numbering.Mode(acc.NUMBERING_MODES[write.numbering]),
            requested=write.requested_number,
        )
    except (TransactWriteError, PutError) as exc:
        if common.find(Invoice, record.pk) is not None:
            return False  # a retry of the same request: already done
        raise Conflict(f"job {before.id!r} changed meanwhile; read it again") from exc
    return True


def job_invoices(tenant_id: str, job_id: str) -> list[Invoice]:
    """A job's invoices, oldest first (the run index: a job's invoices carry run id job-<id>)."""
    query = Entity.gsi2.query(Invoice.run_key(tenant_id, f"job-{job_id}"))
    found = [r.id for r in query if isinstance(r, Invoice)]
    records = billing.invoices_by_id(tenant_id, found)
    return sorted(records.values(), key=lambda r: (r.created_at or "", r.id))


CREDITABLE = ("open", "partially_paid", "paid")
INVOICE_SEQUENCE = "invoice"  # the tenant's invoice numbers (store/numbering.py), shared with every invoice


def credit_target(tenant_id: str, correction: Invoice) -> Invoice | None:
    """The job invoice a negative correction credits: the newest positive one of the same customer
    (a Complete one first), None when the customer has none."""
    candidates = [
        r
        for r in job_invoices(tenant_id, correction.job_id or "")
        if r.id != correction.id and r.contact_id == correction.contact_id and r.total > 0
    ]
    candidates.sort(key=lambda r: (r.invoice_type == "complete", r.created_at or ""), reverse=True)
    return candidates[0] if candidates else None


def set_credit_target(record: Invoice, target_id: str, actor: str) -> None:
    note = common.history_entry(actor, record.status, record.status, f"credit memo on invoice {target_id}")
    record.update(
        actions=[
            Invoice.credit_target_id.set(target_id),
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(Invoice.history.append([note])),
        ]
    )


# ---------------------------------------------------------------------------- a correction's credit memo
# A job's negative correction becomes a credit memo in QuickBooks (on the job invoice it corrects,
# or standalone for the customer): its own sync status follows that credit memo's (wt-jobs2).
CORRECTION_CREDIT = "job-correction-"


def correction_credit_id(correction_id: str) -> str:
    return f"{CORRECTION_CREDIT}{correction_id}"


def correction_of(credit_id: str) -> str | None:
    """The correction invoice a credit memo comes from (None: not a job correction's)."""
    return credit_id[len(CORRECTION_CREDIT) :] if credit_id.startswith(CORRECTION_CREDIT) else None


def correction_queued(record: Invoice, actor: str) -> bool:
    """Its credit memo is queued for QuickBooks: not_synced (or error) -> pending."""
    from fieldbill.store import invoice_sync  # the sync's status writes

    return invoice_sync.mark_pending(record, actor)


def correction_synced(tenant_id: str, correction_id: str, qbo_credit_id: str) -> bool:
    """QuickBooks holds its credit memo (applied, when any of it is): the correction is synced.
    No qbo_id: QuickBooks holds no invoice of it, and nothing may treat the CreditMemo as one."""
    from fieldbill.store import invoice_sync

    record = invoice_sync.load(tenant_id, correction_id)
    if record is None or record.sync_status == str(dm.SyncStatus.SYNCED):
        return False
    return invoice_sync._write_status(
        record,
        dm.SyncStatus.SYNCED,
        f"its credit memo is QuickBooks CreditMemo {qbo_credit_id}",
        [
            Invoice.sync_error.remove(),
            Invoice.synced_at.set(now_iso()),
            *invoice_sync._run_index(record, dm.SyncStatus.SYNCED),
        ],
        Invoice.version == record.version,
        invoice_sync._same_version(record),
    )


def correction_refused(tenant_id: str, correction_id: str, error: dict[str, Any]) -> bool:
    """QuickBooks refused its credit memo: the correction is in error, with QuickBooks' reason."""
    from fieldbill.store import invoice_sync

    record = invoice_sync.load(tenant_id, correction_id)
    if record is None:
        return False
    return invoice_sync.mark_error(record, error, "QuickBooks refused its credit memo")


# ---------------------------------------------------------------------------- accounting workflow
def entries_of(record: Invoice) -> list[acc.Entry]:
    return [
        acc.Entry(str(e["account"]), Decimal(str(e.get("debit") or 0)), Decimal(str(e.get("credit") or 0)))
        for e in (m.as_dict() if hasattr(m, "as_dict") else m for m in record.distribution or [])
    ]


def tax_of(record: Invoice) -> Decimal:
    """A job invoice's sales tax (issue 15; none on invoices made before job invoices were taxed)."""
    return Decimal(record.tax_total or 0)


def line_views(record: Invoice) -> list[acc.LineView]:
    return [
        acc.LineView(
            kind=ln.line_kind, amount=Decimal(ln.amount), category=ln.category, taxable=bool(ln.taxable)
        )
        for ln in record.lines or []
    ]


def advance(
    record: Invoice,
    target: WorkflowStatus,
    actor: str,
    *,
    integration: bool,
    reason: str | None = None,
    distribution: Sequence[acc.Entry] | None = None,
    export_ref: str | None = None,
) -> Invoice:
    """One step of the accounting workflow, decided by WORKFLOW_MACHINE (and the tenant's
    integration), written conditionally on the old workflow status with its history."""
    if not record.job_id or record.workflow_status is None:
        raise InvalidTransition(WORKFLOW_MACHINE.name, "none", target, "not a job invoice")
    current = WorkflowStatus(record.workflow_status)
    states.accounting_step(current, target, integration=integration)
    stamp = now_iso()
    extra: list[Action] = []
    if distribution is not None:
        extra.append(
            Invoice.distribution.set(
                # Strings: a raw map reads numbers back as floats; money stays exact as text.
                [{"account": e.account, "debit": str(e.debit), "credit": str(e.credit)} for e in distribution]  # type: ignore[misc]
            )
        )
    stamp_attr = {
        WorkflowStatus.APPROVED: Invoice.approved_at,
        WorkflowStatus.EXPORTED: Invoice.exported_at,
        WorkflowStatus.POSTED: Invoice.posted_at,
    }[target]
    extra.append(stamp_attr.set(stamp))
    if target is WorkflowStatus.POSTED:
        # The journal's sparse index (gsi3), in the same write that posts: never posted unlisted.
        extra += [
            Invoice.gsi3pk.set(Invoice.posted_key(record.tenant_id)),
            Invoice.gsi3sk.set(Invoice.posted_sort_key(stamp, record.id)),
        ]
    if export_ref is not None:
        extra.append(Invoice.export_ref.set(export_ref))
    transitions.apply(
        record, "workflow_status", WORKFLOW_MACHINE, str(target), actor=actor, reason=reason, extra=extra
    )
    return get_invoice(record.tenant_id, record.id)


def find_invoice(tenant_id: str, invoice_id: str) -> Invoice | None:
    """The invoice if it exists (consistent: a repeat right after the first write finds it)."""
    try:
        record = Entity.get(Invoice.key(tenant_id, invoice_id), META, consistent_read=True)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, Invoice) else None


def get_invoice(tenant_id: str, invoice_id: str) -> Invoice:
    from fieldbill.store import invoices  # the one reader of an invoice

    return invoices.get(tenant_id, invoice_id)


def posted_in(
    tenant_id: str, posted_from: date | None, posted_to: date | None, filters: Mapping[str, str | None]
) -> list[Invoice]:
    """Posted job invoices whose posting time is in the period: a key range of the sparse posted
    index (gsi3), which holds nothing else, so a period costs its own 1 MB query pages only; the
    job, customer and type filters apply to those."""
    backfills.once(tenant_id, backfills.POSTED_INDEX, index_posted)  # posted before the index
    # posted_at is an instant ("2026-12-31T10:00:00.000Z"): "~" sorts after every character in it.
    low, high = posted_from.isoformat() if posted_from else None, f"{posted_to}~" if posted_to else None
    key_range = (
        Invoice.gsi3sk.between(low, high)
        if low and high
        else Invoice.gsi3sk >= low
        if low
        else Invoice.gsi3sk <= high
        if high
        else None
    )
    condition = None
    for name, attribute in (
        ("job_id", Invoice.job_id),
        ("contact_id", Invoice.contact_id),
        ("invoice_type", Invoice.invoice_type),
    ):
        if filters.get(name):
            term = attribute == filters[name]
            condition = term if condition is None else condition & term
    query = Invoice.gsi3.query(Invoice.posted_key(tenant_id), key_range, filter_condition=condition)
    return [r for r in query if isinstance(r, Invoice)]


def index_posted(tenant_id: str) -> int:
    """Give the posted job invoices written before the posted index existed their index keys
    (one pass over the tenant's list; safe to repeat). How many were indexed."""
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id),
        filter_condition=(Invoice.workflow_status == str(WorkflowStatus.POSTED))
        & Invoice.gsi3pk.does_not_exist(),
    )
    done = 0
    for record in query:
        if isinstance(record, Invoice) and record.posted_at:
            record.update(
                actions=[
                    Invoice.gsi3pk.set(Invoice.posted_key(tenant_id)),
                    Invoice.gsi3sk.set(Invoice.posted_sort_key(record.posted_at, record.id)),
                ],
                condition=Invoice.posted_at == record.posted_at,
            )
            done += 1
    return done
