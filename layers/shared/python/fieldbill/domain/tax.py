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
same lines.
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
    """A built invoice (domain.model.Invoice) with its taxable lines marked and its tax and total."""
    lines = tuple(
        line
        if line.taxable or not is_taxable(line, rules.taxable_kinds)
        else dataclasses.replace(line, taxable=True)
        for line in invoice.lines
    )
    code = rules.code(code_id)
    tax = tax_of(lines, code.rate if code is not None else None)
    return dataclasses.replace(
        invoice,
        lines=lines,
        tax_total=tax.tax_total,
        tax_code_id=code.id if code is not None else None,
        tax_rate=tax.rate,
        total=money.cents(Decimal(invoice.subtotal) + tax.tax_total),
    )
