"""wt-life, decision 0011 (amended): a credit against an invoice with taxable lines credits tax too,
by the invoice's rate and domain/tax.py's rounding (once on the taxable sum, half-up to cents)."""

from __future__ import annotations

from decimal import Decimal

from fieldbill.domain import credit_tax
from fieldbill.domain.payments import CreditLine

D = Decimal
# (product id, taxable, amount) of the invoice's lines
ALL_TAXED = [credit_tax.InvoiceLineTax("p-svc", True, D("120.00"))]
MIXED = [
    credit_tax.InvoiceLineTax("p-svc", False, D("100.00")),
    credit_tax.InvoiceLineTax("p-filter", True, D("25.00")),
]


def test_an_amount_on_a_wholly_taxable_invoice_credits_its_tax_on_top():
    got = credit_tax.credit_totals(amount=D("40.00"), lines=(), invoice_lines=ALL_TAXED, rate=D("7.25"))
    assert (got.subtotal, got.taxable_amount, got.tax_total, got.total) == (
        D("40.00"),
        D("40.00"),
        D("2.90"),
        D("42.90"),
    )
    assert got.amount_taxable is True and got.rate == D("7.25")


def test_lines_are_taxable_as_the_invoice_lines_of_their_product_and_tax_is_rounded_once():
    lines = [
        CreditLine(description="filter", quantity=D("1"), unit_price=D("0.10"), product_id="p-filter"),
        CreditLine(description="filter", quantity=D("4"), unit_price=D("0.10"), product_id="p-filter"),
        CreditLine(description="labour", quantity=D("1"), unit_price=D("10.00"), product_id="p-svc"),
        # without a product on a mixed invoice: not taxable unless said so
        CreditLine(description="other", quantity=D("1"), unit_price=D("5.00")),
        CreditLine(description="said so", quantity=D("1"), unit_price=D("1.00"), taxable=True),
    ]
    got = credit_tax.credit_totals(amount=None, lines=lines, invoice_lines=MIXED, rate=D("5"))
    assert got.line_taxable == (True, True, False, False, True)
    # 0.10 + 0.40 + 1.00 taxable = 1.50 x 5 % = 0.075 -> 0.08 once (not 0.01 + 0.02 + 0.05)
    assert (got.subtotal, got.taxable_amount, got.tax_total, got.total) == (
        D("16.50"),
        D("1.50"),
        D("0.08"),
        D("16.58"),
    )


def test_no_rate_or_no_taxable_part_credits_no_tax():
    none = credit_tax.credit_totals(amount=D("40.00"), lines=(), invoice_lines=ALL_TAXED, rate=None)
    assert (none.tax_total, none.total, none.rate) == (D("0.00"), D("40.00"), None)
    mixed = credit_tax.credit_totals(amount=D("40.00"), lines=(), invoice_lines=MIXED, rate=D("5"))
    assert (mixed.amount_taxable, mixed.tax_total, mixed.total) == (False, D("0.00"), D("40.00"))
    said = credit_tax.credit_totals(
        amount=D("40.00"), lines=(), invoice_lines=MIXED, rate=D("5"), amount_taxable=True
    )
    assert (said.tax_total, said.total) == (D("2.00"), D("42.00"))


def test_the_rate_of_an_invoice_quickbooks_taxed_is_its_tax_over_its_taxable_lines():
    assert credit_tax.invoice_rate(D("7.25"), D("8.70"), ALL_TAXED) == D("7.25")
    assert credit_tax.invoice_rate(None, D("8.70"), ALL_TAXED) == D("7.2500")
    assert credit_tax.invoice_rate(None, D("0"), ALL_TAXED) is None
    assert credit_tax.invoice_rate(None, None, ALL_TAXED) is None
    assert credit_tax.invoice_rate(None, D("1.00"), [credit_tax.InvoiceLineTax(None, False, D("9"))]) is None
