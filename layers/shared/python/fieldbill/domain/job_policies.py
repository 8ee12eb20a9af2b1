"""The eight invoicing policies of a job (seed 004): eligibility and the invoice each one builds.

| policy                     | invoice type | job status allowed | content                                   |
|----------------------------|--------------|--------------------|-------------------------------------------|
| deposit                    | partial      | open, closed       | one deposit line (an advance, job-level)  |
| progress_summary           | partial      | open, closed       | one amount line, spread over invoiceables |
| progress_itemized          | partial      | open, closed       | a line per invoiceable (partial amounts)  |
| progress_itemized_grouped  | partial      | open, closed       | a line per charge category                |
| complete                   | complete     | closed             | every remainder per invoiceable, less the |
| complete_grouped           | complete     | closed             | open deposits (the job becomes billed)    |
| correction                 | correction   | billed             | signed changes per invoiceable            |
| correction_grouped         | correction   | billed             | signed changes per charge category        |

The arithmetic that holds after every invoice (tests/unit/test_job_policies_properties.py):
- no invoiceable is billed beyond its price (0 <= billed <= amount + adjusted);
- the job's remaining (unbilled remainders less open deposits) never goes below 0: a partial
  invoice's total never exceeds it, a deposit neither;
- so the sum of all invoices = deposits + billed - deposits applied = the job's final price
  (suggested price plus corrections) once Complete has billed every remainder and netted every
  open deposit. A correction changes price and billed by the same signed amount.
Deposits are netted on Complete (all that is open) and, when asked, on a progress invoice.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import InvalidTransition, ValidationError
from fieldbill.domain.jobs import ZERO, Invoiceable, Job, JobStatus, allocate, summarize


class Policy(enum.StrEnum):
    DEPOSIT = "deposit"
    PROGRESS_SUMMARY = "progress_summary"
    PROGRESS_ITEMIZED = "progress_itemized"
    PROGRESS_ITEMIZED_GROUPED = "progress_itemized_grouped"
    COMPLETE = "complete"
    COMPLETE_GROUPED = "complete_grouped"
    CORRECTION = "correction"
    CORRECTION_GROUPED = "correction_grouped"


class InvoiceType(enum.StrEnum):
    PARTIAL = "partial"
    COMPLETE = "complete"
    CORRECTION = "correction"


class JobLineKind(enum.StrEnum):
    """What a job invoice line bills (stored as the line's `line_kind`)."""

    ITEM = "job_item"  # one invoiceable
    CATEGORY = "job_category"  # the invoiceables of one charge category
    SUMMARY = "job_summary"  # one amount over the job
    DEPOSIT = "job_deposit"  # an advance received
    DEPOSIT_APPLIED = "job_deposit_applied"  # deposits netted (negative)


_PARTIAL_STATUSES = frozenset({JobStatus.OPEN, JobStatus.CLOSED})
ELIGIBLE: Mapping[Policy, frozenset[JobStatus]] = {
    Policy.DEPOSIT: _PARTIAL_STATUSES,
    Policy.PROGRESS_SUMMARY: _PARTIAL_STATUSES,
    Policy.PROGRESS_ITEMIZED: _PARTIAL_STATUSES,
    Policy.PROGRESS_ITEMIZED_GROUPED: _PARTIAL_STATUSES,
    Policy.COMPLETE: frozenset({JobStatus.CLOSED}),
    Policy.COMPLETE_GROUPED: frozenset({JobStatus.CLOSED}),
    Policy.CORRECTION: frozenset({JobStatus.BILLED}),
    Policy.CORRECTION_GROUPED: frozenset({JobStatus.BILLED}),
}
INVOICE_TYPE: Mapping[Policy, InvoiceType] = {
    Policy.DEPOSIT: InvoiceType.PARTIAL,
    Policy.PROGRESS_SUMMARY: InvoiceType.PARTIAL,
    Policy.PROGRESS_ITEMIZED: InvoiceType.PARTIAL,
    Policy.PROGRESS_ITEMIZED_GROUPED: InvoiceType.PARTIAL,
    Policy.COMPLETE: InvoiceType.COMPLETE,
    Policy.COMPLETE_GROUPED: InvoiceType.COMPLETE,
    Policy.CORRECTION: InvoiceType.CORRECTION,
    Policy.CORRECTION_GROUPED: InvoiceType.CORRECTION,
}
GROUPED = frozenset({Policy.PROGRESS_ITEMIZED_GROUPED, Policy.COMPLETE_GROUPED, Policy.CORRECTION_GROUPED})
POLICY_MACHINE = "job_invoice_policy"


class PolicyRefused(InvalidTransition):
    """The job's status does not allow this policy: 409 naming the job status and the policy."""

    def __init__(self, job: Job, policy: Policy) -> None:
        allowed = ", ".join(sorted(ELIGIBLE[policy]))
        super().__init__(
            POLICY_MACHINE,
            str(job.status),
            str(policy),
            f"job {job.id} is {job.status}; {policy} needs {allowed}",
        )


def check_eligible(job: Job, policy: Policy) -> None:
    if job.status not in ELIGIBLE[policy]:
        raise PolicyRefused(job, policy)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRequest:
    """What a person asks of a policy. Progress: `amount`, `percent` (of each invoiceable's price)
    or explicit `items` / `categories` amounts; `apply_deposits` nets open deposits on it.
    Deposit: `amount`. Correction: signed `items` / `categories`, or a signed `amount` spread
    over the job pro rata. Complete takes nothing: it bills what is left."""

    policy: Policy
    amount: Decimal | None = None
    percent: Decimal | None = None
    items: Mapping[str, Decimal] | None = None
    categories: Mapping[str, Decimal] | None = None
    apply_deposits: Decimal | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", Policy(self.policy))
        given = [n for n in ("amount", "percent", "items", "categories") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValidationError(given[1], f"give one of amount, percent, items, categories (got {given})")
        if self.percent is not None and not (ZERO < self.percent <= 100):
            raise ValidationError("percent", "must be more than 0 and at most 100")


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftLine:
    kind: JobLineKind
    description: str
    product_id: str
    amount: Decimal
    invoiceable_id: str | None = None
    category: str | None = None
    taxable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInvoiceDraft:
    """A policy's invoice content and what saving it does to the job."""

    policy: Policy
    invoice_type: InvoiceType
    lines: tuple[DraftLine, ...]
    billed: Mapping[str, Decimal] = field(default_factory=dict)  # added to each invoiceable's billed
    adjusted: Mapping[str, Decimal] = field(default_factory=dict)  # added to each one's price
    deposit: Decimal = ZERO  # a new deposit received
    deposits_applied: Decimal = ZERO  # open deposits netted on this invoice

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass(frozen=True, slots=True)
class Products:
    """Catalogue products of the lines that bill no single invoiceable."""

    summary: str
    deposit: str


# ---------------------------------------------------------------------------- building
def build(job: Job, request: PolicyRequest, products: Products) -> JobInvoiceDraft:
    """The invoice a policy makes of the job now; PolicyRefused in a status the seed forbids,
    ValidationError when the request breaks the policy's arithmetic."""
    policy = request.policy
    check_eligible(job, policy)
    if policy is Policy.DEPOSIT:
        draft = _deposit(job, request, products)
    elif policy in (Policy.COMPLETE, Policy.COMPLETE_GROUPED):
        draft = _complete(job, request, products)
    elif policy in (Policy.CORRECTION, Policy.CORRECTION_GROUPED):
        draft = _correction(job, request, products)
    else:
        draft = _progress(job, request, products)
    check(job, draft)
    return draft


def _deposit(job: Job, request: PolicyRequest, products: Products) -> JobInvoiceDraft:
    if request.amount is None:
        raise ValidationError("amount", "a deposit needs an amount")
    amount = money.cents(request.amount)
    if amount <= 0:
        raise ValidationError("amount", "a deposit is more than 0")
    line = DraftLine(
        kind=JobLineKind.DEPOSIT,
        description=request.description or f"Deposit on job {job.name or job.id}",
        product_id=products.deposit,
        amount=amount,
    )
    return JobInvoiceDraft(
        policy=Policy.DEPOSIT, invoice_type=InvoiceType.PARTIAL, lines=(line,), deposit=amount
    )


def _caps(job: Job) -> list[tuple[str, Decimal]]:
    return [(i.id, i.remaining(job.billing_type)) for i in job.counted()]


def _by_category(job: Job, wanted: Mapping[str, Decimal], caps_of: str) -> dict[str, Decimal]:
    """Category amounts spread over that category's invoiceables (by remainder or by price)."""
    out: dict[str, Decimal] = {}
    categories = {i.category for i in job.counted()}
    for category, amount in wanted.items():
        if category not in categories:
            raise ValidationError(f"categories.{category}", "no invoiceable of the job is in this category")
        members = [i for i in job.counted() if i.category == category]
        caps = [
            (i.id, i.remaining(job.billing_type) if caps_of == "remaining" else i.price(job.billing_type))
            for i in members
        ]
        try:
            out.update(allocate(amount, caps))
        except ValidationError as exc:
            raise ValidationError(f"categories.{category}", exc.message) from None
    return out


def _progress(job: Job, request: PolicyRequest, products: Products) -> JobInvoiceDraft:
    billed: dict[str, Decimal]
    if request.items is not None:
        if request.policy is not Policy.PROGRESS_ITEMIZED:
            raise ValidationError("items", f"{request.policy} takes an amount, percent or categories")
        billed = {}
        for item_id, amount in request.items.items():
            item = job.invoiceable(item_id)
            amount = money.cents(amount)
            if amount < 0 or amount > item.remaining(job.billing_type) or not item.counts(job.billing_type):
                raise ValidationError(
                    f"items.{item_id}", f"must be between 0 and {item.remaining(job.billing_type)}"
                )
            if amount:
                billed[item_id] = amount
    elif request.categories is not None:
        if request.policy is not Policy.PROGRESS_ITEMIZED_GROUPED:
            raise ValidationError("categories", f"{request.policy} takes an amount, percent or items")
        billed = _by_category(job, request.categories, "remaining")
    elif request.percent is not None:
        billed = {}
        for item in job.counted():
            share = min(
                money.cents(item.price(job.billing_type) * request.percent / 100),
                item.remaining(job.billing_type),
            )
            if share > 0:
                billed[item.id] = share
    elif request.amount is not None:
        if request.amount <= 0:
            raise ValidationError("amount", "a progress invoice bills more than 0")
        billed = allocate(request.amount, _caps(job))
    else:
        raise ValidationError("amount", "give an amount, percent, items or categories")
    if not billed:
        raise ValidationError("amount", "nothing left to bill")
    applied = money.cents(request.apply_deposits or ZERO)
    if applied < 0 or applied > job.open_deposits:
        raise ValidationError(
            "apply_deposits", f"must be between 0 and the open deposits {job.open_deposits}"
        )
    lines = _lines(job, request, billed, products)
    if applied:
        lines.append(_applied_line(applied, products))
    return JobInvoiceDraft(
        policy=request.policy,
        invoice_type=InvoiceType.PARTIAL,
        lines=tuple(lines),
        billed=billed,
        deposits_applied=applied,
    )


def _complete(job: Job, request: PolicyRequest, products: Products) -> JobInvoiceDraft:
    for name in ("amount", "percent", "items", "categories", "apply_deposits"):
        if getattr(request, name) is not None:
            raise ValidationError(
                name, "a complete invoice bills what is left; adjust with a correction later"
            )
    billed = {item_id: left for item_id, left in _caps(job) if left}
    lines = _lines(job, request, billed, products)
    applied = job.open_deposits
    if applied:
        lines.append(_applied_line(applied, products))
    if not lines:  # everything was billed already: the final invoice still closes the job, at 0
        lines.append(
            DraftLine(
                kind=JobLineKind.SUMMARY,
                description=request.description or f"Job {job.name or job.id}: final",
                product_id=products.summary,
                amount=ZERO,
            )
        )
    return JobInvoiceDraft(
        policy=request.policy,
        invoice_type=InvoiceType.COMPLETE,
        lines=tuple(lines),
        billed=billed,
        deposits_applied=applied,
    )


def _correction(job: Job, request: PolicyRequest, products: Products) -> JobInvoiceDraft:
    grouped = request.policy is Policy.CORRECTION_GROUPED
    if request.percent is not None or request.apply_deposits is not None:
        raise ValidationError(
            "percent" if request.percent is not None else "apply_deposits", "a correction is signed amounts"
        )
    if request.items is not None:
        if grouped:
            raise ValidationError("items", "a grouped correction takes categories")
        change = {}
        for item_id, amount in request.items.items():
            item = job.invoiceable(item_id)
            amount = money.cents(amount)
            if not item.counts(job.billing_type):
                raise ValidationError(
                    f"items.{item_id}", "this invoiceable is not invoiced under the billing type"
                )
            if item.price(job.billing_type) + amount < 0:
                raise ValidationError(f"items.{item_id}", f"credits at most {item.price(job.billing_type)}")
            if amount:
                change[item_id] = amount
    elif request.categories is not None:
        if not grouped:
            raise ValidationError("categories", "a correction takes items; use correction_grouped")
        change = {}
        for category, amount in request.categories.items():
            change.update(_signed_spread(job, amount, category, f"categories.{category}"))
    elif request.amount is not None:
        change = _signed_spread(job, request.amount, None, "amount")
    else:
        raise ValidationError("amount", "give a signed amount, items or categories")
    if not change:
        raise ValidationError("amount", "a correction changes something (not 0)")
    lines = _lines(job, request, change, products)
    return JobInvoiceDraft(
        policy=request.policy,
        invoice_type=InvoiceType.CORRECTION,
        lines=tuple(lines),
        billed=change,
        adjusted=change,
    )


def _signed_spread(job: Job, amount: Decimal, category: str | None, name: str) -> dict[str, Decimal]:
    """A credit is spread over prices (never below 0); an extra charge over prices too."""
    members = [i for i in job.counted() if category is None or i.category == category]
    if not members:
        raise ValidationError(name, "no invoiceable of the job is in this category")
    caps = [(i.id, i.price(job.billing_type)) for i in members]
    if amount > 0:  # an extra charge has no cap: weight it by price
        total = sum((c for _, c in caps), ZERO)
        # generous caps in the same proportions (all on the first when nothing has a price)
        caps = [(members[0].id, amount)] if total == 0 else [(k, c * amount / total * 2) for k, c in caps]
    try:
        return allocate(amount, caps)
    except ValidationError as exc:
        raise ValidationError(name, exc.message) from None


def _applied_line(applied: Decimal, products: Products) -> DraftLine:
    return DraftLine(
        kind=JobLineKind.DEPOSIT_APPLIED,
        description="Less deposits received",
        product_id=products.deposit,
        amount=-applied,
    )


def _lines(
    job: Job, request: PolicyRequest, amounts: Mapping[str, Decimal], products: Products
) -> list[DraftLine]:
    """Render per the policy: one summary line, a line per invoiceable, or a line per category."""
    if not amounts:
        return []
    items = [i for i in job.invoiceables if i.id in amounts]
    if request.policy is Policy.PROGRESS_SUMMARY:
        return [
            DraftLine(
                kind=JobLineKind.SUMMARY,
                description=request.description or f"Progress billing, job {job.name or job.id}",
                product_id=products.summary,
                amount=sum(amounts.values(), ZERO),
                taxable=all(i.taxable for i in items),
            )
        ]
    if request.policy in GROUPED:
        categories: dict[str, list[Invoiceable]] = {}
        for item in items:
            categories.setdefault(item.category, []).append(item)
        return [
            DraftLine(
                kind=JobLineKind.CATEGORY,
                description=category,
                product_id=products.summary,
                amount=sum((amounts[i.id] for i in members), ZERO),
                category=category,
                taxable=all(i.taxable for i in members),
            )
            for category, members in categories.items()
        ]
    return [
        DraftLine(
            kind=JobLineKind.ITEM,
            description=item.description,
            product_id=item.product_id,
            amount=amounts[item.id],
            invoiceable_id=item.id,
            category=item.category,
            taxable=item.taxable,
        )
        for item in items
    ]


# ---------------------------------------------------------------------------- the rules
def check(job: Job, draft: JobInvoiceDraft) -> None:
    """The invariants a saved invoice must keep (an adjusted draft is checked again)."""
    after = apply(job, draft)
    for item in after.invoiceables:
        price = item.price(after.billing_type)
        if price < 0:
            raise ValidationError(f"items.{item.id}", "a correction cannot take a price below 0")
        if item.billed < 0 or item.billed > price:
            raise ValidationError(f"items.{item.id}", f"would be billed {item.billed} of its {price}")
    if after.deposits_applied > after.deposits:
        raise ValidationError("apply_deposits", "more than the deposits received")
    summary = summarize(after)
    if summary.remaining < 0:
        raise ValidationError("amount", f"exceeds what is left of the job ({summarize(job).remaining})")
    if draft.invoice_type is InvoiceType.CORRECTION:
        if draft.total == 0:
            raise ValidationError("amount", "a correction changes the total (not 0)")
    elif draft.total < 0:
        raise ValidationError("amount", "a partial or complete invoice is not negative")
    if draft.invoice_type is InvoiceType.COMPLETE and (summary.remaining != 0 or summary.open_deposits != 0):
        raise ValidationError("amount", "a complete invoice leaves nothing unbilled or undeposited")


def apply(job: Job, draft: JobInvoiceDraft) -> Job:
    """The job once the draft is saved: billed, prices, deposits, count, version, status."""
    invoiceables = tuple(
        dataclasses.replace(
            i,
            billed=i.billed + draft.billed.get(i.id, ZERO),
            adjusted=i.adjusted + draft.adjusted.get(i.id, ZERO),
        )
        for i in job.invoiceables
    )
    status = JobStatus.BILLED if draft.invoice_type is InvoiceType.COMPLETE else job.status
    return dataclasses.replace(
        job,
        invoiceables=invoiceables,
        deposits=job.deposits + draft.deposit,
        deposits_applied=job.deposits_applied + draft.deposits_applied,
        invoice_count=job.invoice_count + 1,
        version=job.version + 1,
        status=status,
    )
