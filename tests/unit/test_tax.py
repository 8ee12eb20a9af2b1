"""Sales tax (domain/tax.py): taxable lines, one rounding per invoice as QuickBooks (and the
emulator) round, and what is sent to QuickBooks with automated tax on and off."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain import model as dm
from fieldbill.domain import tax
from fieldbill.domain.errors import ValidationError
from fieldbill.quickbooks import mapping


def ln(amount: str, taxable: bool = True, kind: str = "task_entry") -> SimpleNamespace:
    return SimpleNamespace(line_kind=kind, amount=Decimal(amount), taxable=taxable)


@pytest.mark.parametrize(
    ("amounts", "rate", "expected"),
    [
        # the emulator's conformance cases (tests/emulator/test_sales_tax.py), same sources
        (["100", "33.33"], "9.125", "12.17"),  # 133.33 x 9.125 % = 12.1663625
        (["4495.16"], "9.975", "448.39"),  # ruckus/quickbooks-ruby#547
        (["0.10"] * 5, "5", "0.03"),  # once per invoice, half-up: not 5 x 0.01, not half-even 0.02
        (["200"], "7.25", "14.50"),
    ],
)
def test_tax_is_rounded_half_up_once_per_invoice(amounts: list[str], rate: str, expected: str) -> None:
    assert tax.tax_of([ln(a) for a in amounts], Decimal(rate)).tax_total == Decimal(expected)


def test_only_taxable_lines_are_taxed_and_no_rate_means_no_tax() -> None:
    lines = [ln("100"), ln("50", taxable=False)]
    got = tax.tax_of(lines, Decimal("10"))
    assert (got.taxable_amount, got.tax_total) == (Decimal("100.00"), Decimal("10.00"))
    assert tax.tax_of(lines, None).tax_total == Decimal("0.00")


@given(
    amounts=st.lists(st.decimals("0", "9999.99", places=2), min_size=1, max_size=10),
    rate=st.decimals("0", "100", places=3),
)
def test_tax_is_the_half_up_cents_of_the_taxable_sum(amounts: list[Decimal], rate: Decimal) -> None:
    expected = (sum(amounts, Decimal(0)) * rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert tax.tax_of([ln(str(a)) for a in amounts], rate).tax_total == expected


def test_a_line_is_taxable_when_marked_or_of_a_taxed_kind() -> None:
    assert tax.is_taxable(ln("1", taxable=False, kind="goods"))
    assert not tax.is_taxable(ln("1", taxable=False, kind="expense"))
    assert tax.is_taxable(ln("1", taxable=False, kind="expense"), ("expense",))
    assert tax.is_taxable(ln("1", taxable=True, kind="task_entry"))


@pytest.mark.parametrize("rate", ["-1", "100.01", "7.12345", "NaN"])
def test_a_bad_rate_is_refused_naming_rate(rate: str) -> None:
    with pytest.raises(ValidationError) as caught:
        tax.check_rate(Decimal(rate))
    assert caught.value.field == "rate"


def _invoice(*lines: dm.InvoiceLine) -> dm.Invoice:
    subtotal = sum((x.amount for x in lines), Decimal("0.00"))
    return dm.Invoice(
        id="i1",
        tenant_id="t",
        run_id="r",
        contact_id="c",
        grouping=dm.GroupingMode.PER_CONTACT,
        group_key="c",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 12, 1),
        lines=lines,
        subtotal=subtotal,
        total=subtotal,
    )


def _line(n: int, kind: str, amount: str) -> dm.InvoiceLine:
    return dm.InvoiceLine(
        line_no=n,
        item_id=f"it{n}",
        line_kind=dm.LineKind(kind),
        work_date=None,
        description="x",
        product_id="p",
        product_name="P",
        unit=None,
        quantity=Decimal("1"),
        unit_price=Decimal(amount),
        amount=Decimal(amount),
    )


def test_apply_marks_taxable_lines_and_adds_the_default_codes_tax_to_the_total() -> None:
    rules = tax.TaxRules({"ca": tax.TaxCode("ca", "California", Decimal("7.25"))}, default_code="ca")
    got = tax.apply(_invoice(_line(1, "goods", "200"), _line(2, "task_entry", "80")), rules)
    assert [x.taxable for x in got.lines] == [True, False]
    assert (got.tax_code_id, got.tax_rate, got.tax_total) == ("ca", Decimal("7.25"), Decimal("14.50"))
    assert got.total == Decimal("294.50") and got.subtotal == Decimal("280")


def test_apply_without_a_default_code_taxes_nothing_and_an_unknown_code_is_refused() -> None:
    got = tax.apply(_invoice(_line(1, "goods", "200")), tax.TaxRules({}))
    assert (got.tax_total, got.total, got.tax_code_id) == (Decimal("0.00"), Decimal("200.00"), None)
    with pytest.raises(ValidationError) as caught:
        tax.apply(_invoice(_line(1, "goods", "200")), tax.TaxRules({}), "nope")
    assert caught.value.field == "tax_code_id"


def test_without_automated_tax_our_tax_is_sent_and_with_it_only_the_codes() -> None:
    rules = tax.TaxRules({"tx": tax.TaxCode("tx", "Texas", Decimal("5"))}, default_code="tx")
    invoice = tax.apply(_invoice(_line(1, "goods", "0.10"), _line(2, "task_entry", "10")), rules)
    ours = mapping.invoice_to_qbo(invoice, "1", {}, mapping.QboSettings())
    assert ours["TxnTaxDetail"] == {"TotalTax": Decimal("0.01")}
    codes = [x["SalesItemLineDetail"]["TaxCodeRef"]["value"] for x in ours["Line"]]
    assert codes == ["TAX", "NON"]
    theirs = mapping.invoice_to_qbo(invoice, "1", {}, mapping.QboSettings(automated_tax=True))
    assert "TxnTaxDetail" not in theirs
    assert [x["SalesItemLineDetail"]["TaxCodeRef"]["value"] for x in theirs["Line"]] == codes


def test_differs_flags_any_amount_a_cent_included() -> None:
    assert tax.differs(Decimal("10.00"), Decimal("10.01"))
    assert not tax.differs(Decimal("10.00"), Decimal("10"))
    assert not tax.differs(Decimal("10.00"), None)
