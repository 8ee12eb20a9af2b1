"""Tax on a credit memo (pure; wt-life, decision 0011 amended).

A credit against an invoice with taxable lines credits tax too, by the invoice's own rate and
domain/tax.py's rule (once on the taxable sum, half-up to cents). Which part of a credit is taxable:
- a line marked `taxable` (true or false) is what it says;
- else a line naming a product is taxable when the invoice's line(s) of that product are;
- else (no product, or an amount alone) it is taxable when every line of the invoice is.
The credit's total (subtotal + tax) is what it credits: what lowers the balance, applied or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from fieldbill.domain import money, tax
from fieldbill.domain.payments import CreditLine, credit_amount

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class InvoiceLineTax:
    """An invoice line as a credit's tax reads it."""

    product_id: str | None
    taxable: bool
    amount: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditTotals:
    subtotal: Decimal
    taxable_amount: Decimal
    rate: Decimal | None
    tax_total: Decimal
    total: Decimal
    line_taxable: tuple[bool, ...] = ()  # per given line
    amount_taxable: bool | None = None  # a credit of an amount alone


@dataclass(frozen=True, slots=True)
class _Taxed:
    amount: Decimal
    taxable: bool
    line_kind: str = "credit"


def invoice_rate(
    rate: Decimal | None, tax_total: Decimal | None, invoice_lines: Sequence[InvoiceLineTax]
) -> Decimal | None:
    """The invoice's rate: its code's, else (QuickBooks computed its tax) its tax over its
    taxable lines, to tax.RATE_PLACES places; no tax, no rate."""
    if rate is not None:
        return Decimal(rate)
    taxable = sum((Decimal(ln.amount) for ln in invoice_lines if ln.taxable), ZERO)
    if not tax_total or taxable <= 0:
        return None
    return (Decimal(tax_total) * 100 / taxable).quantize(Decimal(1).scaleb(-tax.RATE_PLACES))


def _taxable(given: bool | None, product_id: str | None, invoice_lines: Sequence[InvoiceLineTax]) -> bool:
    if given is not None:
        return given
    if product_id is not None:
        return any(ln.taxable for ln in invoice_lines if ln.product_id == product_id)
    return bool(invoice_lines) and all(ln.taxable for ln in invoice_lines)


def credit_totals(
    *,
    amount: Decimal | None,
    lines: Sequence[CreditLine],
    invoice_lines: Sequence[InvoiceLineTax],
    rate: Decimal | None,
    amount_taxable: bool | None = None,
) -> CreditTotals:
    """Subtotal (the amount, or the lines' sum: payments.credit_amount's rules), tax and total."""
    subtotal = credit_amount(amount, lines)
    if lines:
        flags = tuple(_taxable(ln.taxable, ln.product_id, invoice_lines) for ln in lines)
        taxed = [_Taxed(ln.amount, flag) for ln, flag in zip(lines, flags, strict=True)]
        whole = None
    else:
        whole = _taxable(amount_taxable, None, invoice_lines)
        flags = ()
        taxed = [_Taxed(subtotal, whole)]
    computed = tax.tax_of(taxed, rate if any(t.taxable for t in taxed) else None)
    result = CreditTotals(
        subtotal=subtotal,
        taxable_amount=computed.taxable_amount,
        rate=computed.rate,
        tax_total=computed.tax_total,
        total=money.cents(subtotal + computed.tax_total),
        line_taxable=flags,
        amount_taxable=whole,
    )
    return result if result.rate is not None else replace(result, tax_total=ZERO, total=subtotal)
