"""Job-shop jobs (seed 004): a job, its invoiceables, the suggested price and what is left.

Not the asynchronous "jobs" of workflows/billing/jobs.py (operations): these are a job shop's
jobs, billed over their life by job invoices (domain/job_policies.py).

An invoiceable is an order item (quantity x its own unit price) or a job charge (category, kind
billable / customer alteration / non-billable, priced from the active price structure). The
job's billing type decides which invoiceables count towards the suggested job price:

| billing type        | counts                                        |
|---------------------|-----------------------------------------------|
| order_items         | order items + customer-alteration charges     |
| production_charges  | billable charges + customer-alteration charges|

Non-billable charges never count and are never invoiced. Each invoiceable keeps what has been
invoiced against it (`billed`) and the signed corrections made to its price (`adjusted`), so its
price on the job is amount + adjusted and its remainder is that price - billed. Deposits are
job-level: `deposits` received, `deposits_applied` netted on later invoices so far.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import Conflict, ValidationError

ZERO = Decimal("0")
# A job and its invoiceables are one DynamoDB item (one read per job): 400 KB holds far more.
MAX_INVOICEABLES = 500


class JobStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    BILLED = "billed"


class BillingType(enum.StrEnum):
    ORDER_ITEMS = "order_items"
    PRODUCTION_CHARGES = "production_charges"


class InvoiceableKind(enum.StrEnum):
    ORDER_ITEM = "order_item"
    CHARGE = "charge"


class ChargeKind(enum.StrEnum):
    BILLABLE = "billable"
    CUSTOMER_ALTERATION = "customer_alteration"
    NON_BILLABLE = "non_billable"


ORDER_ITEMS_CATEGORY = "Order items"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoiceable:
    id: str
    kind: InvoiceableKind
    description: str
    product_id: str
    quantity: Decimal
    unit_price: Decimal
    category: str = ORDER_ITEMS_CATEGORY  # a charge's category; order items share one
    charge_kind: ChargeKind | None = None  # charges only
    taxable: bool = False
    billed: Decimal = ZERO  # invoiced against it so far (partial, complete and corrections)
    adjusted: Decimal = ZERO  # signed corrections of its price

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", InvoiceableKind(self.kind))
        if self.kind is InvoiceableKind.CHARGE:
            if self.charge_kind is None:
                raise ValidationError(
                    "charge_kind", "a charge is billable, customer_alteration or non_billable"
                )
            object.__setattr__(self, "charge_kind", ChargeKind(self.charge_kind))
        elif self.charge_kind is not None:
            raise ValidationError("charge_kind", "only charges have a kind")
        for name in ("quantity", "unit_price"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValidationError(name, "must be a non-negative decimal")

    @property
    def amount(self) -> Decimal:
        """Quantity x unit price, rounded as every invoice line is (domain/money.py)."""
        return money.line_amount(self.quantity, self.unit_price)

    def counts(self, billing_type: BillingType) -> bool:
        """Does it count towards the suggested price (and may it be invoiced) under this type?"""
        if self.kind is InvoiceableKind.ORDER_ITEM:
            return billing_type is BillingType.ORDER_ITEMS
        if self.charge_kind is ChargeKind.CUSTOMER_ALTERATION:
            return True
        return self.charge_kind is ChargeKind.BILLABLE and billing_type is BillingType.PRODUCTION_CHARGES

    def price(self, billing_type: BillingType) -> Decimal:
        """Its share of the job price: amount plus corrections, 0 when it does not count."""
        return self.amount + self.adjusted if self.counts(billing_type) else ZERO

    def remaining(self, billing_type: BillingType) -> Decimal:
        return self.price(billing_type) - self.billed


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    tenant_id: str
    customer_id: str
    billing_type: BillingType
    name: str = ""
    status: JobStatus = JobStatus.OPEN
    invoiceables: tuple[Invoiceable, ...] = ()
    deposits: Decimal = ZERO  # received on deposit invoices
    deposits_applied: Decimal = ZERO  # netted on later invoices
    invoice_count: int = 0
    version: int = 1
    price_list_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "billing_type", BillingType(self.billing_type))
        object.__setattr__(self, "status", JobStatus(self.status))
        if len(self.invoiceables) > MAX_INVOICEABLES:
            raise ValidationError("invoiceables", f"a job holds at most {MAX_INVOICEABLES} invoiceables")
        ids = [i.id for i in self.invoiceables]
        if len(set(ids)) != len(ids):
            raise ValidationError("invoiceables", "ids must be unique within the job")

    @property
    def open_deposits(self) -> Decimal:
        return self.deposits - self.deposits_applied

    def counted(self) -> tuple[Invoiceable, ...]:
        return tuple(i for i in self.invoiceables if i.counts(self.billing_type))

    def invoiceable(self, invoiceable_id: str) -> Invoiceable:
        for item in self.invoiceables:
            if item.id == invoiceable_id:
                return item
        raise ValidationError("invoiceable_id", f"no invoiceable {invoiceable_id!r} on job {self.id}")


@dataclass(frozen=True, slots=True)
class InvoiceableSummary:
    id: str
    category: str
    counts: bool
    amount: Decimal
    price: Decimal
    billed: Decimal
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class JobSummary:
    """The suggested price and what is left, recomputed from the invoiceables each time."""

    suggested_price: Decimal
    invoiced: Decimal  # billed against invoiceables (deposits not included)
    deposits: Decimal
    open_deposits: Decimal
    remaining: Decimal  # still to invoice: unbilled remainders less the open deposits
    items: tuple[InvoiceableSummary, ...] = field(default=())


def summarize(job: Job) -> JobSummary:
    items = tuple(
        InvoiceableSummary(
            id=i.id,
            category=i.category,
            counts=i.counts(job.billing_type),
            amount=i.amount,
            price=i.price(job.billing_type),
            billed=i.billed,
            remaining=i.remaining(job.billing_type),
        )
        for i in job.invoiceables
    )
    price = sum((i.price for i in items), ZERO)
    billed = sum((i.billed for i in items), ZERO)
    return JobSummary(
        suggested_price=price,
        invoiced=billed,
        deposits=job.deposits,
        open_deposits=job.open_deposits,
        remaining=price - billed - job.open_deposits,
        items=items,
    )


# ---------------------------------------------------------------------------- pricing
def charge_unit_price(
    product_id: str,
    given: Decimal | None,
    price_list_prices: Mapping[str, Decimal] | None,
    default_unit_price: Decimal | None,
) -> Decimal:
    """A charge's unit price from the active price structure: the price list's price for its
    product, else the product's default price; a price given by a person only when neither has one."""
    if price_list_prices and product_id in price_list_prices:
        return money.unit_price(price_list_prices[product_id])
    if default_unit_price is not None:
        return money.unit_price(default_unit_price)
    if given is not None:
        return money.unit_price(given)
    raise ValidationError(
        "unit_price", f"product {product_id!r} has no price in the price structure: give one"
    )


# ---------------------------------------------------------------------------- changes of invoiceables
def _mutable(job: Job) -> None:
    if job.status is JobStatus.BILLED:
        raise Conflict(f"job {job.id!r} is billed: it cannot be changed (issue a correction)")


def add_invoiceable(job: Job, item: Invoiceable) -> Job:
    """A Closed job accepts no new charges; a Billed job nothing at all."""
    _mutable(job)
    if job.status is JobStatus.CLOSED:
        raise Conflict(f"job {job.id!r} is closed: reopen it to add invoiceables")
    if any(i.id == item.id for i in job.invoiceables):
        raise Conflict(f"invoiceable {item.id!r} already exists on job {job.id!r}")
    fresh = dataclasses.replace(item, billed=ZERO, adjusted=ZERO)
    return dataclasses.replace(job, invoiceables=(*job.invoiceables, fresh))


def replace_invoiceable(job: Job, item: Invoiceable) -> Job:
    """An invoiced invoiceable cannot be edited (its invoices would no longer add up)."""
    _mutable(job)
    current = job.invoiceable(item.id)
    if current.billed != 0 or current.adjusted != 0:
        raise Conflict(f"invoiceable {item.id!r} is invoiced: it cannot be edited")
    fresh = dataclasses.replace(item, billed=ZERO, adjusted=ZERO)
    return _covered(
        dataclasses.replace(
            job, invoiceables=tuple(fresh if i.id == item.id else i for i in job.invoiceables)
        )
    )


def remove_invoiceable(job: Job, invoiceable_id: str) -> Job:
    _mutable(job)
    current = job.invoiceable(invoiceable_id)
    if current.billed != 0 or current.adjusted != 0:
        raise Conflict(f"invoiceable {invoiceable_id!r} is invoiced: it cannot be removed")
    return _covered(
        dataclasses.replace(job, invoiceables=tuple(i for i in job.invoiceables if i.id != invoiceable_id))
    )


def _covered(job: Job) -> Job:
    """Open deposits must stay covered by what is left to bill, or Complete could not net them."""
    left = summarize(job).remaining
    if left < 0:
        raise Conflict(
            f"job {job.id!r}: the open deposits ({job.open_deposits}) would exceed what is left to bill"
        )
    return job


def check_deletable(job: Job) -> None:
    if job.invoice_count:
        raise Conflict(f"job {job.id!r} has {job.invoice_count} invoice(s): it cannot be deleted")


# ---------------------------------------------------------------------------- allocation
def allocate(amount: Decimal, caps: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Spread a signed `amount` over non-negative caps pro rata, in cents, each share at most its
    cap in absolute value: floor shares, then the left-over cents to the largest fractions (ties
    by order). ValidationError when the amount is more than the caps hold."""
    caps = [(key, cap) for key, cap in caps if cap != 0]
    amount = money.cents(amount)
    if amount == 0:
        return {}
    sign = Decimal(1) if amount > 0 else Decimal(-1)
    total = sum((abs(c) for _, c in caps), ZERO)
    if any(c < 0 for _, c in caps) or abs(amount) > total:
        raise ValidationError("amount", f"{amount} is more than the {total} left to allocate")
    want = abs(amount) * 100
    raw = [(key, abs(cap) * 100, want * abs(cap) * 100 / (total * 100)) for key, cap in caps]
    shares = {key: int(share) for key, _, share in raw}
    left = int(want - sum(shares.values()))
    by_fraction = sorted(range(len(raw)), key=lambda n: -(raw[n][2] - int(raw[n][2])))
    for n in by_fraction[:left]:
        shares[raw[n][0]] += 1
    return {key: sign * Decimal(cents) / 100 for key, cents in shares.items() if cents}
