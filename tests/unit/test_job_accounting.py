"""Issue 14: job invoices in accounting — backdating, numbering modes, GL distribution, export
files and the journal (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from fieldbill.domain import job_accounting as acc
from fieldbill.domain.errors import ValidationError

SETTINGS = acc.JobBillingSettings(backdating_days=3, category_accounts={"Alterations": "Alteration income"})
TODAY = date(2026, 12, 3)


def test_backdating_is_limited_and_future_dates_refused():
    acc.check_issue_date(date(2026, 11, 30), TODAY, SETTINGS)
    for bad in (date(2026, 11, 29), date(2026, 12, 4)):
        with pytest.raises(ValidationError) as refused:
            acc.check_issue_date(bad, TODAY, SETTINGS)
        assert refused.value.field == "issue_date"


def test_numbering_modes_map_onto_the_tenant_sequence():
    assert {str(k): v for k, v in acc.NUMBERING_MODES.items()} == {
        "none": "none",
        "automatic": "automatic_overridable",
        "automatic_fixed": "automatic_fixed",
    }


def _complete_lines() -> list[acc.LineView]:
    return [
        acc.LineView("job_item", D("750.00")),
        acc.LineView("job_item", D("50.00"), category="Alterations", taxable=True),
        acc.LineView("job_deposit_applied", D("-400.00")),
    ]


def test_the_default_distribution_balances_and_carries_the_total_on_receivables():
    entries = acc.default_distribution(_complete_lines(), SETTINGS)
    acc.check_distribution(entries, D("400.00"), SETTINGS)
    assert {e.account: (e.debit, e.credit) for e in entries} == {
        "Accounts Receivable": (D("400.00"), D("0")),
        "Sales": (D("0"), D("750.00")),
        "Alteration income": (D("0"), D("50.00")),
        "Customer Deposits": (D("400.00"), D("0")),
    }
    credit = acc.default_distribution([acc.LineView("job_item", D("-50.00"))], SETTINGS)
    acc.check_distribution(credit, D("-50.00"), SETTINGS)  # a credit: receivables credited


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [acc.Entry("Accounts Receivable", debit=D("400")), acc.Entry("Sales", credit=D("399"))],
        [acc.Entry("Accounts Receivable", debit=D("300")), acc.Entry("Sales", credit=D("300"))],
        [
            acc.Entry("Accounts Receivable", debit=D("400"), credit=D("1")),
            acc.Entry("Sales", credit=D("399")),
        ],
    ],
)
def test_an_incomplete_distribution_is_refused(entries: list[acc.Entry]):
    with pytest.raises(ValidationError):
        acc.check_distribution(entries, D("400.00"), SETTINGS)


def test_export_files():
    entries = acc.default_distribution(_complete_lines(), SETTINGS)
    invoice = acc.ExportInvoice(
        id="i1", number="J-7", issue_date=TODAY, customer="Acme\tPrint", job_id="job-1",
        invoice_type="complete", total=D("400.00"), entries=entries,
    )  # fmt: skip
    iif = acc.to_iif([invoice]).split("\r\n")
    assert iif[3].split("\t")[:6] == [
        "TRNS",
        "INVOICE",
        "12/03/2026",
        "Accounts Receivable",
        "Acme Print",
        "400.00",
    ]
    assert sum(D(row.split("\t")[5]) for row in iif if row.startswith(("TRNS", "SPL"))) == 0
    assert iif[-2] == "ENDTRNS"
    rows = acc.to_csv([invoice]).splitlines()
    assert rows[0].startswith("invoice_id,number,date") and len(rows) == 1 + len(entries)


def test_journal_totals_tax_distribution_and_accounts():
    lines = _complete_lines()
    entries = acc.default_distribution(lines, SETTINGS)
    credit_lines = [acc.LineView("job_item", D("-50.00"))]
    found = acc.journal(
        [
            acc.JournalInvoice("i1", "complete", D("400.00"), lines, entries),
            acc.JournalInvoice("i2", "correction", D("-50.00"), credit_lines,
                               acc.default_distribution(credit_lines, SETTINGS)),
        ]
    )  # fmt: skip
    assert (found.count, found.total) == (2, D("350.00"))
    assert found.by_type == {"complete": D("400.00"), "correction": D("-50.00")}
    assert (found.taxable, found.non_taxable) == (D("50.00"), D("300.00"))
    assert found.by_account["Accounts Receivable"] == (D("400.00"), D("50.00"))


# ---- issue 15: a job invoice's sales tax (decision 0010 amendment) --------------------------------
def test_a_taxed_job_invoice_credits_its_tax_to_sales_tax_payable_and_still_balances():
    lines = [acc.LineView("job_item", D("200.00"), taxable=True), acc.LineView("job_item", D("100.00"))]
    entries = acc.default_distribution(lines, SETTINGS, D("14.50"))
    # receivables carry the total with tax; income only the price (before tax); the tax is owed
    acc.check_distribution(entries, D("314.50"), SETTINGS)
    assert {e.account: (e.debit, e.credit) for e in entries} == {
        "Accounts Receivable": (D("314.50"), D("0")),
        "Sales": (D("0"), D("300.00")),
        "Sales Tax Payable": (D("0"), D("14.50")),
    }
    # a correction's negative tax is debited back
    credit = acc.default_distribution(
        [acc.LineView("job_item", D("-100.00"), taxable=True)], SETTINGS, D("-7.25")
    )
    acc.check_distribution(credit, D("-107.25"), SETTINGS)
    assert {e.account: (e.debit, e.credit) for e in credit}["Sales Tax Payable"] == (D("7.25"), D("0"))
