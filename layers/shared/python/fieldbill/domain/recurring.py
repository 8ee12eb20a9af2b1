"""Recurring billing: bill profiles, billing periods, recurring services and the draft-invoice plan.

Pure: no I/O. The preview and the commit of "create draft invoices" call the SAME function,
`plan_run`, on the same kind of input; the commit writes exactly the invoices the plan names, so a
preview shows what a commit would do with the data as it is (and a fingerprint says when the data
changed in between).

Periods
-------
A profile has a cadence, a billing day (1-28) and a billing start date:

| cadence   | a period                                                   | key          |
|-----------|------------------------------------------------------------|--------------|
| monthly   | billing day of a month .. the day before it a month later  | ``YYYY-MM``  |
| quarterly | the same over three months, starting in the start date's month (mod 3) | ``YYYY-MM`` |
| yearly    | the same over twelve months, starting in the start date's month | ``YYYY-MM`` |
| weeks     | N weeks from the start date, then every N weeks            | ``YYYY-MM-DD`` (its first day) |

No period begins before the profile's billing start date's period.

Proration rule (written once, here)
-----------------------------------
A recurring service has a rate per billing period or per visit, a start date and an optional end
date (both inclusive). Its *covered days* in a period are the days of the period between its start
and end.

- Per period, covering the whole period: one line, quantity 1 x the rate.
- Per period, covering part of it (it starts or ends inside the period): one line, quantity 1 x
  (rate x covered days / days in the period), that unit price rounded half-up to cents, so
  QuickBooks' Qty x UnitPrice is the line amount exactly. The description says "prorated c/d days".
- Per visit: quantity = the scheduled visits (its weekday) on covered days, x the rate; visits
  outside the covered days are simply not counted, so nothing else is prorated.
- No covered day: no line. An account has "no active services" when no service covers a day of
  the period.

A recurring charge is a billable item with the deterministic id ``<service id>.<period key>``:
bill once holds for it exactly as for work (it exists once, and lands on at most one invoice).

The balance brought forward (the account's open balance) is shown on the invoice and NOT added to
its total: QuickBooks has no balance forward, so the synced invoice holds current charges only and
the customer's QuickBooks balance stays right. "$0" means the current charges total zero, even
when a balance is owed; with skip $0 such an account gets no invoice now and can be invoiced later.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from fieldbill.domain import money, tax
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.invoicing import invoice_line
from fieldbill.domain.model import (
    BillableItem,
    Destination,
    GroupingMode,
    Invoice,
    InvoiceLine,
    ItemStatus,
    LineKind,
    PriceSource,
    ProductScope,
)

# An invoice, its items and its number (counter and claim) are one transaction of at most 100 actions.
MAX_LINES = 97
DEFAULT_TERMS_DAYS = 30
# Fixed forever: the id of (tenant, profile, period, account)'s invoice must never change.
_PERIOD_INVOICE_NAMESPACE = uuid.UUID("0b9e8f1e-4a5c-5d3b-8c7e-2f6a1d9c4b30")


class Cadence(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    WEEKS = "weeks"  # every N weeks


class RateBasis(enum.StrEnum):
    PERIOD = "period"
    VISIT = "visit"


_MONTHS = {Cadence.MONTHLY: 1, Cadence.QUARTERLY: 3, Cadence.YEARLY: 12}


@dataclass(frozen=True, slots=True, kw_only=True)
class BillProfile:
    id: str
    name: str
    cadence: Cadence
    start_date: date
    billing_day: int = 1
    every_weeks: int = 1
    terms_days: int = DEFAULT_TERMS_DAYS
    skip_zero: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "cadence", Cadence(self.cadence))
        except ValueError:
            raise ValidationError("cadence", "use monthly, quarterly, yearly or weeks") from None
        if not 1 <= self.billing_day <= 28:
            raise ValidationError("billing_day", "must be 1 to 28 (every month has it)")
        if not 1 <= self.every_weeks <= 52:
            raise ValidationError("every_weeks", "must be 1 to 52")
        if not 0 <= self.terms_days <= 365:
            raise ValidationError("terms_days", "must be 0 to 365")


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def default_invoice_date(self) -> date:
        """The 1st of the period's month (the seed's default; a run may choose another)."""
        return self.start.replace(day=1)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _month_period(profile: BillProfile, year: int, month: int) -> Period:
    span = _MONTHS[profile.cadence]
    start = date(year, month, profile.billing_day)
    end_year, end_month = _add_months(year, month, span)
    end = date(end_year, end_month, profile.billing_day) - timedelta(days=1)
    return Period(f"{year:04d}-{month:02d}", start, end)


def _first_period(profile: BillProfile) -> Period:
    if profile.cadence is Cadence.WEEKS:
        start = profile.start_date
        end = start + timedelta(weeks=profile.every_weeks) - timedelta(days=1)
        return Period(start.isoformat(), start, end)
    return period_containing(profile, profile.start_date, check_start=False)


def period_containing(profile: BillProfile, day: date, *, check_start: bool = True) -> Period:
    """The profile's period that holds `day`."""
    if profile.cadence is Cadence.WEEKS:
        span = profile.every_weeks * 7
        offset = (day - profile.start_date).days // span
        start = profile.start_date + timedelta(days=offset * span)
        period = Period(start.isoformat(), start, start + timedelta(days=span - 1))
    else:
        span = _MONTHS[profile.cadence]
        year, month = day.year, day.month
        if day.day < profile.billing_day:
            year, month = _add_months(year, month, -1)
        # align to the start date's month modulo the span
        shift = (month - profile.start_date.month) % span
        year, month = _add_months(year, month, -shift)
        period = _month_period(profile, year, month)
    if check_start and period.end < _first_period(profile).start:
        raise ValidationError("period", f"before the profile's billing start date {profile.start_date}")
    return period


def period_for(profile: BillProfile, key: str) -> Period:
    """The period named `key`, or ValidationError("period") if the profile has no such period."""
    try:
        if profile.cadence is Cadence.WEEKS:
            day = date.fromisoformat(key)
        else:
            year_text, month_text = key.split("-")
            if len(year_text) != 4 or len(month_text) != 2:
                raise ValueError(key)
            day = date(int(year_text), int(month_text), profile.billing_day)
    except ValueError:
        shape = "YYYY-MM-DD" if profile.cadence is Cadence.WEEKS else "YYYY-MM"
        raise ValidationError("period", f"a period of this profile is named {shape}") from None
    period = period_containing(profile, day)
    if period.key != key:
        raise ValidationError("period", f"not a period of this profile; the one holding it is {period.key}")
    return period


def periods(profile: BillProfile, around: date, before: int = 2, after: int = 2) -> list[Period]:
    """Periods near a day (for a picker): `before` earlier ones, the current, `after` later."""
    current = period_containing(profile, around, check_start=False)
    found = [current]
    cursor = current
    for _ in range(before):
        cursor = period_containing(profile, cursor.start - timedelta(days=1), check_start=False)
        found.insert(0, cursor)
    cursor = current
    for _ in range(after):
        cursor = period_containing(profile, cursor.end + timedelta(days=1), check_start=False)
        found.append(cursor)
    first = _first_period(profile).start
    return [p for p in found if p.end >= first]


# ---------------------------------------------------------------------------- services and charges
@dataclass(frozen=True, slots=True, kw_only=True)
class RecurringService:
    id: str
    contact_id: str
    name: str
    product_id: str
    product_name: str
    rate: Decimal
    basis: RateBasis
    start_date: date
    end_date: date | None = None
    visit_weekday: int | None = None  # 0 = Monday; per-visit services only

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "basis", RateBasis(self.basis))
        except ValueError:
            raise ValidationError("basis", "use period or visit") from None
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or self.rate < 0:
            raise ValidationError("rate", "must be a non-negative amount")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValidationError("end_date", "must not be before start_date")
        if self.basis is RateBasis.VISIT and (self.visit_weekday is None or not 0 <= self.visit_weekday <= 6):
            raise ValidationError("visit_weekday", "a per-visit service needs its weekday (0 = Monday)")

    def covered(self, period: Period) -> tuple[date, date] | None:
        first = max(self.start_date, period.start)
        last = min(self.end_date or period.end, period.end)
        return (first, last) if first <= last else None


def _visits(weekday: int, first: date, last: date) -> int:
    ahead = (weekday - first.weekday()) % 7
    day = first + timedelta(days=ahead)
    return 0 if day > last else (last - day).days // 7 + 1


def charge_id(service_id: str, period_key: str) -> str:
    return f"{service_id}.{period_key}"


def service_charge(tenant_id: str, service: RecurringService, period: Period) -> BillableItem | None:
    """The service's charge for the period by the proration rule above, or None (no covered day)."""
    covered = service.covered(period)
    if covered is None:
        return None
    first, last = covered
    days = (last - first).days + 1
    if service.basis is RateBasis.VISIT:
        assert service.visit_weekday is not None
        quantity = Decimal(_visits(service.visit_weekday, first, last))
        if quantity == 0:
            return None
        unit_price, unit = service.rate, "visit"
        description = f"{service.name}: {quantity} visit(s) {first.isoformat()} to {last.isoformat()}"
    elif days == period.days:
        quantity, unit_price, unit = Decimal("1"), service.rate, None
        description = f"{service.name}: {period.start.isoformat()} to {period.end.isoformat()}"
    else:
        quantity, unit = Decimal("1"), None
        unit_price = money.cents(service.rate * Decimal(days) / Decimal(period.days))
        description = (
            f"{service.name}: {first.isoformat()} to {last.isoformat()} (prorated {days}/{period.days} days)"
        )
    return BillableItem(
        id=charge_id(service.id, period.key),
        tenant_id=tenant_id,
        entry_id="",
        task_id="",
        contact_id=service.contact_id,
        line_kind=LineKind.RECURRING,
        work_date=first,
        description=description,
        product_id=service.product_id,
        product_name=service.product_name,
        product_scope=ProductScope.CONTACT,
        unit=unit,
        quantity=quantity,
        unit_price=unit_price,
        price_source=PriceSource.PRODUCT,
        amount=money.line_amount(quantity, unit_price),
    )


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInput:
    contact_id: str
    name: str
    services: tuple[RecurringService, ...] = ()
    # Its billable items not yet invoiced (task work, completed visits ...), any line kind.
    pending: tuple[BillableItem, ...] = ()
    balance: Decimal = Decimal("0.00")  # its account balance: brought forward, never added
    terms_days: int | None = None  # the account's own Net-N, over the profile's
    linked_to_quickbooks: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInput:
    tenant_id: str
    profile: BillProfile
    period: Period
    invoice_date: date
    skip_zero: bool
    destination: Destination
    accounts: tuple[AccountInput, ...]
    unmapped_products: frozenset[str] = frozenset()  # products QuickBooks does not know yet
    tax_rules: tax.TaxRules | None = None  # the tenant's tax codes: a draft is taxed as any invoice


@dataclass(frozen=True, slots=True)
class AccountPlan:
    contact_id: str
    name: str
    invoice_id: str
    action: str  # create | skip_zero | too_many_lines
    charges: tuple[BillableItem, ...]  # recurring charges (new billable items)
    items: tuple[BillableItem, ...]  # pending billable items it takes
    invoice: Invoice | None
    balance_forward: Decimal
    total: Decimal
    active_services: int
    exceptions: tuple[str, ...]
    fingerprint: str
    # What the plan of this account was made of, one short part per input (see `account_inputs`):
    # a preview keeps it, so a stale commit says which input of which account changed.
    inputs: str = ""


@dataclass(frozen=True, slots=True)
class RunPlan:
    profile_id: str
    period: Period
    invoice_date: date
    skip_zero: bool
    accounts: tuple[AccountPlan, ...]
    fingerprint: str
    totals: dict[str, object] = field(default_factory=dict)
    # The run's own choices (invoice date, skip $0, destination): a change of one is named once.
    parameters: dict[str, str] = field(default_factory=dict)


def period_run_id(profile_id: str, period_key: str) -> str:
    """The invoices of one profile and period share a run id (their progress counts read it)."""
    return f"bp-{profile_id}-{period_key}"


def period_invoice_id(tenant_id: str, profile_id: str, period_key: str, contact_id: str) -> str:
    """THE key of bill once for periods: one invoice per (tenant, profile, period, account)."""
    name = "\n".join([tenant_id, profile_id, period_key, contact_id])
    return str(uuid.uuid5(_PERIOD_INVOICE_NAMESPACE, name))


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_account(run: RunInput, account: AccountInput) -> AccountPlan:
    period = run.period
    charges = []
    active = 0
    for service in sorted(account.services, key=lambda s: s.id):
        if service.contact_id != account.contact_id:
            raise ValidationError("services", f"service {service.id!r} is of another account")
        if service.covered(period) is not None:
            active += 1
        charge = service_charge(run.tenant_id, service, period)
        if charge is not None:
            charges.append(charge)
    charge_ids = {c.id for c in charges}
    # A charge already a billable item (its invoice was deleted) is billed as the new charge.
    items = sorted(
        (
            i
            for i in account.pending
            if i.status is ItemStatus.PENDING and i.work_date <= period.end and i.id not in charge_ids
        ),
        key=lambda i: (i.work_date, i.id),
    )
    lines = tuple(invoice_line(n, item) for n, item in enumerate([*charges, *items], start=1))
    total = sum((line.amount for line in lines), Decimal("0.00"))
    balance = money.cents(account.balance)
    invoice_id = period_invoice_id(run.tenant_id, run.profile.id, period.key, account.contact_id)
    exceptions = []
    if any(line.unit_price == 0 for line in lines):
        exceptions.append("zero_priced_line")
    if total == 0:
        exceptions.append("zero_invoice")
    if active == 0:
        exceptions.append("no_active_services")
    if run.destination is Destination.QUICKBOOKS:
        if not account.linked_to_quickbooks:
            exceptions.append("customer_not_in_quickbooks")
        if any(line.product_id in run.unmapped_products for line in lines):
            exceptions.append("product_not_in_quickbooks")
    if len(lines) > MAX_LINES:
        action = "too_many_lines"
    elif total == 0 and run.skip_zero:
        action = "skip_zero"
    else:
        action = "create"
    invoice = None
    if action == "create":
        terms = account.terms_days if account.terms_days is not None else run.profile.terms_days
        invoice = Invoice(
            id=invoice_id,
            tenant_id=run.tenant_id,
            run_id=period_run_id(run.profile.id, period.key),
            contact_id=account.contact_id,
            grouping=GroupingMode.PER_CONTACT,
            group_key=f"{run.profile.id}|{period.key}",
            issue_date=run.invoice_date,
            due_date=run.invoice_date + timedelta(days=terms),
            lines=lines,
            subtotal=total,
            total=total,
            period=period.key,
            destination=run.destination,
        )
        if run.tax_rules is not None:
            invoice = tax.apply(invoice, run.tax_rules)
    fingerprint = _digest(
        {
            "contact": account.contact_id,
            "action": action,
            "lines": [
                [ln.item_id, ln.description, str(ln.quantity), str(ln.unit_price), str(ln.amount)]
                for ln in lines
            ],
            "balance": str(balance),
            "due": invoice.due_date.isoformat() if invoice else None,
            "tax": str(invoice.tax_total) if invoice else None,
        }
    )
    return AccountPlan(
        contact_id=account.contact_id,
        name=account.name,
        invoice_id=invoice_id,
        action=action,
        charges=tuple(charges),
        items=tuple(items),
        invoice=invoice,
        balance_forward=balance,
        total=invoice.total if invoice is not None else total,
        active_services=active,
        exceptions=tuple(exceptions),
        fingerprint=fingerprint,
        inputs=account_inputs(
            lines[: len(charges)],
            lines[len(charges) :],
            balance,
            account.terms_days if account.terms_days is not None else run.profile.terms_days,
            invoice.tax_total if invoice is not None else None,
            action,
        ),
    )


# ---------------------------------------------------------------------------- What changed
# An account's inputs, each a short part, in this order: the service charges, the billable items,
# the balance (kept as the amount, so a stale answer says from what to what), the Net-N, the tax,
# the outcome. Short (about 50 characters): a preview of thousands of accounts stays one item.
INPUT_NAMES = {
    "s": "services",
    "i": "billable_items",
    "b": "balance",
    "d": "terms",
    "t": "tax",
    "a": "outcome",
}


def account_inputs(
    charge_lines: Sequence[InvoiceLine],
    item_lines: Sequence[InvoiceLine],
    balance: Decimal,
    terms_days: int,
    tax_total: Decimal | None,
    action: str,
) -> str:
    def lines(found: Sequence[InvoiceLine]) -> str:
        rows = [
            [ln.item_id, ln.description, str(ln.quantity), str(ln.unit_price), str(ln.amount)] for ln in found
        ]
        return _digest(rows)[:8]

    parts = {
        "s": lines(charge_lines),
        "i": lines(item_lines),
        "b": format(balance, "f"),
        "d": str(terms_days),
        "t": "" if tax_total is None else format(tax_total, "f"),
        "a": action,
    }
    return ";".join(f"{k}={v}" for k, v in parts.items())


def _differs(key: str, old: dict[str, str], new: dict[str, str]) -> bool:
    if key == "t" and "" in (old.get(key), new.get(key)):
        return False  # no invoice on one side (skipped): no tax to compare, the outcome says it
    return old.get(key) != new.get(key)


def _parts(inputs: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in inputs.split(";") if "=" in part)


def plan_run(run: RunInput) -> RunPlan:
    """The draft invoices of a profile and period for these accounts: preview and commit alike.

    Accounts in contact-id order, so the plan never depends on the order the data was read in."""
    seen: set[str] = set()
    for account in run.accounts:
        if account.contact_id in seen:
            raise ValidationError("contact_ids", f"account {account.contact_id!r} given twice")
        seen.add(account.contact_id)
    plans = tuple(plan_account(run, a) for a in sorted(run.accounts, key=lambda a: a.contact_id))
    created = [p for p in plans if p.action == "create"]
    totals: dict[str, object] = {
        "accounts": len(plans),
        "invoices": len(created),
        "skipped_zero": sum(1 for p in plans if p.action == "skip_zero"),
        "refused": sum(1 for p in plans if p.action == "too_many_lines"),
        "zero_invoices": sum(1 for p in created if p.total == 0),
        "charges_total": sum((p.total for p in created), Decimal("0.00")),
        "balance_forward_total": sum((p.balance_forward for p in plans), Decimal("0.00")),
        "with_exceptions": sum(1 for p in plans if p.exceptions),
    }
    fingerprint = _digest(
        {
            "profile": run.profile.id,
            "period": run.period.key,
            "invoice_date": run.invoice_date.isoformat(),
            "skip_zero": run.skip_zero,
            "destination": str(run.destination),
            "accounts": [p.fingerprint for p in plans],
        }
    )
    parameters = {
        "invoice_date": run.invoice_date.isoformat(),
        "skip_zero": str(run.skip_zero).lower(),
        "destination": str(run.destination),
    }
    return RunPlan(
        run.profile.id, run.period, run.invoice_date, run.skip_zero, plans, fingerprint, totals, parameters
    )


def changed_accounts(
    before: dict[str, str], plan: RunPlan, parameters: dict[str, str] | None = None
) -> dict[str, object]:
    """What changed since a preview (each account's `inputs`, the run's `parameters`): accounts
    added, removed, changed; for each changed account WHICH inputs (`why`: services,
    billable_items, balance, terms, tax, outcome) and its balance then and now; the run's own
    choices that changed (`run`: invoice_date, skip_zero, destination)."""
    now = {p.contact_id: p.inputs for p in plan.accounts}
    changed = sorted(c for c in set(now) & set(before) if now[c] != before[c])
    why: dict[str, list[str]] = {}
    balances: dict[str, dict[str, str]] = {}
    for contact in changed:
        old, new = _parts(before[contact]), _parts(now[contact])
        names = [name for key, name in INPUT_NAMES.items() if _differs(key, old, new)]
        why[contact] = names or ["unknown"]  # a preview kept by an older version names no input
        if "balance" in names and "b" in old:
            balances[contact] = {"before": old["b"], "now": new["b"]}
    run = sorted(k for k, v in plan.parameters.items() if parameters is not None and parameters.get(k) != v)
    return {
        "added": sorted(set(now) - set(before)),
        "removed": sorted(set(before) - set(now)),
        "changed": changed,
        "why": why,
        "balances": balances,
        "run": run,
    }


def select_accounts(
    accounts: Iterable[AccountInput], chosen: Sequence[str] | None
) -> tuple[AccountInput, ...]:
    """All accounts, or the chosen ones (an unknown choice is refused, not ignored)."""
    found = {a.contact_id: a for a in accounts}
    if chosen is None:
        return tuple(found.values())
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        raise ValidationError("contact_ids", f"not accounts of this bill profile: {', '.join(unknown[:10])}")
    return tuple(found[c] for c in dict.fromkeys(chosen))
