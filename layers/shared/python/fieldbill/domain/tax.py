"""Sales tax on an invoice (pure): which lines are taxable, and the tax of a code's rate on them.

The model is QuickBooks Online's US one: each sales line is taxable or not (TaxCodeRef TAX / NON),
and ONE rate applies to the invoice's taxable lines (QuickBooks: the rate of the customer's
location, or the invoice's TxnTaxCodeRef). Here the rate is the invoice's tax code (the tenant's
default code when the invoice is made); its rate is copied onto the invoice so a later change of
the code does not move the tax of invoices already made.

Rounding (written down once, as QuickBooks does it and as local/qbo_emulator does it): the tax is
computed ONCE per invoice on the sum of the taxable line amounts, taxable x rate / 100, rounded
half-up to cents; never per line (ruckus/quickbooks-ruby#547: 4495.16 x 9.975 % = 448.39, and
five lines of 0.10 at 5 % = 0.03, not 5 x 0.01). The total is subtotal + tax.

Which lines are taxable: a line marked taxable (a person, or the catalogue, issue 17), or a line of
a kind the company taxes (QuickBooks settings `taxable_line_kinds`, default goods): the same rule
decides TAX / NON in what is sent to QuickBooks (quickbooks/mapping.py), so both sides tax the
same lines. Since issue 15 a line's own code, its product, and its contact come first: resolve()
below holds the order (line > product > contact > tenant default), and a line keeps what decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError

ZERO = Decimal("0.00")
DEFAULT_TAXABLE_KINDS: tuple[str, ...] = ("goods",)
MAX_RATE = Decimal("100")
RATE_PLACES = 4  # QuickBooks shows rates like 9.125 or 9.975 %; 4 places is room for all of them


class TaxLine(Protocol):
    """A line as tax reads it (`taxable`, when the line has it, marks it taxable)."""

    @property
    def line_kind(self) -> Any: ...

    @property
    def amount(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class TaxCode:
    id: str
    name: str
    rate: Decimal  # percent: 7.25 means 7.25 %
    active: bool = True


@dataclass(frozen=True, slots=True)
class TaxRules:
    """What a tenant's new invoices are taxed by: its codes, the default code, taxable kinds."""

    codes: Mapping[str, TaxCode]
    default_code: str | None = None
    taxable_kinds: tuple[str, ...] = DEFAULT_TAXABLE_KINDS
    # Per contact / per product choices (issue 15: resolve() below); only those that have one.
    contacts: Mapping[str, TaxChoice] = dataclasses.field(default_factory=dict)
    products: Mapping[str, TaxChoice] = dataclasses.field(default_factory=dict)

    def code(self, code_id: str | None) -> TaxCode | None:
        """The code an invoice uses: the one named, else the default; None: no tax."""
        chosen = code_id or self.default_code
        if chosen is None:
            return None
        found = self.codes.get(chosen)
        if found is None or not found.active:
            raise ValidationError("tax_code_id", f"no active tax code {chosen!r} in this tenant")
        return found


@dataclass(frozen=True, slots=True)
class Tax:
    taxable_amount: Decimal
    rate: Decimal | None
    tax_total: Decimal


def check_rate(rate: Decimal) -> Decimal:
    """A rate as stored: 0 to 100 %, at most 4 decimal places (422 naming `rate` otherwise)."""
    if not rate.is_finite() or rate < 0 or rate > MAX_RATE:
        raise ValidationError("rate", "a percentage from 0 to 100")
    if rate.as_tuple().exponent < -RATE_PLACES:  # type: ignore[operator]
        raise ValidationError("rate", f"at most {RATE_PLACES} decimal places")
    return rate


def kind_of(line: TaxLine) -> str:
    return str(getattr(line.line_kind, "value", line.line_kind))


def is_taxable(line: TaxLine, taxable_kinds: Iterable[str] = DEFAULT_TAXABLE_KINDS) -> bool:
    return bool(getattr(line, "taxable", False)) or kind_of(line) in tuple(taxable_kinds)


def tax_of(lines: Sequence[TaxLine], rate: Decimal | None) -> Tax:
    """The tax of lines already marked taxable (line.taxable) at `rate` percent: once per invoice,
    half-up to cents. No rate: no tax."""
    taxable = sum((Decimal(line.amount) for line in lines if getattr(line, "taxable", False)), ZERO)
    if rate is None:
        return Tax(money.cents(taxable), None, ZERO)
    return Tax(money.cents(taxable), rate, money.cents(taxable * rate / Decimal(100)))


def differs(local_total: Decimal, quickbooks_total: Decimal | None) -> bool:
    """Our total and QuickBooks' disagree (by any amount, a cent included)."""
    return quickbooks_total is not None and Decimal(quickbooks_total) != Decimal(local_total)


def apply(invoice: Any, rules: TaxRules, code_id: str | None = None) -> Any:
    """A built invoice (domain.model.Invoice) with each line's tax resolved (resolve(): line >
    product > contact > tenant default) and the invoice's tax and total. `code_id` names the
    invoice's code instead of the contact's or the default."""
    contact = rules.contacts.get(invoice.contact_id) or NO_CHOICE
    code = invoice_code(rules, contact, code_id)
    lines = tuple(resolve_line(line, rules, contact, code_id) for line in invoice.lines)
    lines, tax_total = with_line_taxes(lines, code.rate if code is not None else None)
    return dataclasses.replace(
        invoice,
        lines=lines,
        tax_total=tax_total,
        tax_code_id=code.id if code is not None else None,
        tax_rate=code.rate if code is not None else None,
        total=money.cents(Decimal(invoice.subtotal) + tax_total),
    )


# -------------------------------------------------------------------- per contact and per line (issue 15)
# Which code taxes a line, written once (every path that makes invoices calls apply()):
#
#   1. the line:    a code named on it (taxed at that code) or taxable=false (not taxed);
#   2. the product: non-taxable (a product, service type or inventory item marked so): not taxed;
#   3. the contact: tax-exempt: not taxed;
#   4. the tenant:  the line is taxable when something marked it so (the line, its product or
#                   service type) or its kind is one the company taxes; then at the contact's own
#                   code, else the tenant's default code.
#
# The first level that decides wins. A product or line merely marked "taxable" decides nothing
# against a tax-exempt customer (QuickBooks taxes a line only when item and customer both are):
# to tax a line of an exempt customer, name a code on the line.
LINE, PRODUCT, CONTACT, TENANT = "line", "product", "contact", "tenant"
SOURCES = (LINE, PRODUCT, CONTACT, TENANT)


@dataclass(frozen=True, slots=True)
class TaxChoice:
    """What one level says: a code (taxed at it), taxable False (not taxed), taxable True (marked
    taxable: the code comes from a lower level), or nothing."""

    code_id: str | None = None
    taxable: bool | None = None


NO_CHOICE = TaxChoice()


@dataclass(frozen=True, slots=True)
class LineTax:
    taxable: bool
    code_id: str | None
    rate: Decimal | None  # None: not taxed (no code applies)
    source: str  # the level that decided: line | product | contact | tenant


def resolve(
    kind: str,
    line: TaxChoice,
    product: TaxChoice,
    contact: TaxChoice,
    rules: TaxRules,
    invoice_code_id: str | None = None,
) -> LineTax:
    """The tax of one line (the order above). An unknown or inactive code named at any level is a
    ValidationError naming `tax_code_id`."""
    if line.code_id is not None:
        code = rules.code(line.code_id)
        assert code is not None  # a named code is never None (rules.code raises instead)
        return LineTax(True, code.id, code.rate, LINE)
    if line.taxable is False:
        return LineTax(False, None, None, LINE)
    if product.code_id is not None:
        code = rules.code(product.code_id)
        assert code is not None
        return LineTax(True, code.id, code.rate, PRODUCT)
    if product.taxable is False:
        return LineTax(False, None, None, PRODUCT)
    if contact.taxable is False:
        return LineTax(False, None, None, CONTACT)
    marked = line.taxable is True or product.taxable is True
    if not (marked or kind in rules.taxable_kinds):
        return LineTax(False, None, None, TENANT)
    code = invoice_code(rules, contact, invoice_code_id)
    own = code is not None and invoice_code_id is None and code.id == contact.code_id
    source = CONTACT if own else TENANT
    if code is None:
        return LineTax(True, None, None, source)
    return LineTax(True, code.id, code.rate, source)


def invoice_code(rules: TaxRules, contact: TaxChoice, code_id: str | None = None) -> TaxCode | None:
    """The code of an invoice's taxable lines that name none: the one given, else the contact's,
    else the tenant's default; none for a tax-exempt contact."""
    if code_id is not None:
        return rules.code(code_id)
    if contact.taxable is False:
        return None
    own = rules.codes.get(contact.code_id) if contact.code_id is not None else None
    # A contact's code deleted or made inactive since: the default applies (a billing run must not
    # fail on it; the contact still shows the code it names).
    return own if own is not None and own.active else rules.code(None)


def resolve_line(line: Any, rules: TaxRules, contact: TaxChoice, invoice_code_id: str | None = None) -> Any:
    """A built line (domain.model.InvoiceLine) with its tax resolved. A new line arrives marked
    `taxable` (by a visit's catalogue item, or a person) or not; a line a person already decided
    (`tax_source` line) keeps its own code or its "not taxable"."""
    if getattr(line, "tax_source", None) == LINE:
        own = TaxChoice(code_id=getattr(line, "tax_code_id", None), taxable=bool(line.taxable))
    else:
        own = TaxChoice(taxable=True if line.taxable else None)
    product = rules.products.get(getattr(line, "product_id", None) or "") or NO_CHOICE
    found = resolve(kind_of(line), own, product, contact, rules, invoice_code_id)
    return dataclasses.replace(
        line, taxable=found.taxable, tax_code_id=found.code_id, tax_rate=found.rate, tax_source=found.source
    )


def line_rate(line: Any, invoice_rate: Decimal | None) -> Decimal | None:
    """The rate a line is taxed at: its own (resolved lines carry it), else the invoice's rate for
    a line marked taxable (lines made before per-line codes); None: untaxed."""
    if not getattr(line, "taxable", False):
        return None
    if getattr(line, "tax_source", None) is not None:
        return getattr(line, "tax_rate", None)
    return invoice_rate


def with_line_taxes(lines: Sequence[Any], invoice_rate: Decimal | None) -> tuple[tuple[Any, ...], Decimal]:
    """The lines with their `tax_amount`, and the invoice's tax. Rounded ONCE per rate (the lines
    taxed at one rate are summed, then rounded half-up to cents, as QuickBooks rounds a rate's
    TaxLine); with one rate that is once per invoice. Each line shows its share of its rate's tax:
    amount x rate rounded, the cent left over by rounding given to the largest lines first, so
    the lines' taxes add up to the invoice's exactly."""
    groups: dict[Decimal, list[int]] = {}
    for index, line in enumerate(lines):
        rate = line_rate(line, invoice_rate)
        if rate is not None:
            groups.setdefault(rate, []).append(index)
    shares: dict[int, Decimal] = {}
    total = ZERO
    for rate, members in groups.items():
        base = sum((Decimal(lines[i].amount) for i in members), ZERO)
        group_tax = money.cents(base * rate / Decimal(100))
        total += group_tax
        shares.update(_allocate(group_tax, [(i, Decimal(lines[i].amount)) for i in members], rate))
    out = tuple(
        dataclasses.replace(line, tax_amount=shares.get(index, ZERO)) if hasattr(line, "tax_amount") else line
        for index, line in enumerate(lines)
    )
    return out, money.cents(total)


def _allocate(group_tax: Decimal, members: list[tuple[int, Decimal]], rate: Decimal) -> dict[int, Decimal]:
    """Each line's share of a rate's tax: its own rounded tax, corrected a cent at a time (largest
    lines first) until the shares add up to the rate's tax."""
    shares = {i: money.cents(amount * rate / Decimal(100)) for i, amount in members}
    left = group_tax - sum(shares.values(), ZERO)
    step = Decimal("0.01") if left > 0 else Decimal("-0.01")
    order = sorted(members, key=lambda m: (-abs(m[1]), m[0]))
    while left != 0 and order:
        for index, _ in order:
            if left == 0:
                break
            shares[index] += step
            left -= step
    return shares


# -------------------------------------------------------------------- tax-exempt reasons (issue 15)
# Intuit, Customer entity (accounting API reference, minor version 10): TaxExemptionReasonId,
# "applicable if automated sales tax is enabled", one of these ids; sent with Taxable false.
EXEMPTION_REASONS: Mapping[int, str] = {
    1: "Federal government",
    2: "State government",
    3: "Local government",
    4: "Tribal government",
    5: "Charitable organization",
    6: "Religious organization",
    7: "Educational organization",
    8: "Hospital",
    9: "Resale",
    10: "Direct pay permit",
    11: "Multiple points of use",
    12: "Direct mail",
    13: "Agricultural production",
    14: "Industrial production / manufacturing",
    15: "Foreign diplomat",
}


def check_exemption_reason(reason: int | None, exempt: bool | None) -> None:
    """A reason is one of Intuit's ids, and only a tax-exempt contact has one (422 naming
    `tax_exemption_reason` otherwise). None is always fine: Intuit does not say it is required."""
    if reason is None:
        return
    if reason not in EXEMPTION_REASONS:
        raise ValidationError("tax_exemption_reason", "one of QuickBooks' exemption reasons, 1 to 15")
    if not exempt:
        raise ValidationError("tax_exemption_reason", "only a tax-exempt contact has an exemption reason")
