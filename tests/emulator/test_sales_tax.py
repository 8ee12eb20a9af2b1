"""Automated sales tax (US) and the custom-transaction-numbers preference, as QuickBooks applies them.

Reference §4: US companies run automated sales tax (AST): QuickBooks computes the tax of the lines
coded TAX from the customer's location and TotalAmt includes it; an explicit
TxnTaxDetail.TotalTax overrides; tax is rounded to cents per invoice (ruckus/quickbooks-ruby#547).
DocNumber is numbered by QuickBooks unless the company has custom transaction numbers on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.emulator.conftest import CLIENT_ID, Qbo, sales_line

RATES = {"94043": "9.125", "CA": "7.25", "QC": "9.975", "TX": "5"}


@pytest.fixture
def ast(emu) -> Qbo:
    """A US company with automated sales tax and a rate table by postal code and state."""
    realm = emu.create_company(automated_sales_tax=True, tax_rates=RATES)
    return Qbo(emu, realm, emu.connect(CLIENT_ID, realm)["access_token"])


def line(item_id: str, qty: Any, price: Any, code: str) -> dict[str, Any]:
    made = sales_line(item_id, qty, price)
    made["SalesItemLineDetail"]["TaxCodeRef"] = {"value": code}
    return made


def invoice(qbo: Qbo, customer: dict, lines: list[dict], **extra: Any) -> dict[str, Any]:
    return qbo.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": lines, **extra})


def money(value: Any) -> Decimal:
    return Decimal(str(value))


def test_quickbooks_computes_the_tax_of_taxable_lines_from_the_ship_to_location(ast: Qbo):
    # Given a customer shipped to in Mountain View (94043: 9.125 %)
    cust = ast.customer("Ship Co", ShipAddr={"PostalCode": "94043", "CountrySubDivisionCode": "CA"})
    item = ast.item()
    # When an invoice of two taxable lines and one non-taxable line is created without any tax
    inv = invoice(
        ast,
        cust,
        [
            line(item["Id"], 1, 100, "TAX"),
            line(item["Id"], 1, "33.33", "TAX"),
            line(item["Id"], 1, 50, "NON"),
        ],
    )
    # Then QuickBooks taxed the 133.33 of TAX lines: 12.1663625 -> 12.17, and the total includes it
    detail = inv["TxnTaxDetail"]
    assert money(detail["TotalTax"]) == Decimal("12.17")
    (tax_line,) = detail["TaxLine"]
    assert money(tax_line["TaxLineDetail"]["NetAmountTaxable"]) == Decimal("133.33")
    assert money(tax_line["TaxLineDetail"]["TaxPercent"]) == Decimal("9.125")
    assert money(inv["TotalAmt"]) == Decimal("183.33") + Decimal("12.17")
    assert money(inv["Balance"]) == money(inv["TotalAmt"])


def test_the_location_falls_back_from_postal_code_to_state_and_from_ship_to_to_bill_to(ast: Qbo):
    # Given customers billed in Los Angeles (a postal code without its own rate: California's 7.25 %)
    # and with no address at all
    billed = ast.customer("Bill Co", BillAddr={"PostalCode": "90001", "CountrySubDivisionCode": "CA"})
    nowhere = ast.customer("Nowhere Co")
    item = ast.item()
    # When each is invoiced 200.00 of taxable work
    la = invoice(ast, billed, [line(item["Id"], 2, 100, "TAX")])
    none = invoice(ast, nowhere, [line(item["Id"], 2, 100, "TAX")])
    # Then the state's rate applies to the first (14.50), no tax to the second
    assert money(la["TxnTaxDetail"]["TotalTax"]) == Decimal("14.50")
    assert money(la["TotalAmt"]) == Decimal("214.50")
    assert money(none["TxnTaxDetail"]["TotalTax"]) == 0 and money(none["TotalAmt"]) == Decimal("200.00")


@pytest.mark.parametrize(
    ("state", "lines", "tax"),
    [
        # ruckus/quickbooks-ruby#547: 4495.16 x 9.975 % = 448.392... -> 448.39 (a client got 448.40)
        ("QC", [("4495.16", "TAX")], "448.39"),
        # five lines of 0.10 at 5 %: per line 0.005 -> 0.01 each (0.05); per invoice 0.025 -> 0.03
        # half-up (half-even would give 0.02)
        ("TX", [("0.10", "TAX")] * 5, "0.03"),
    ],
)
def test_tax_is_rounded_half_up_once_per_invoice(ast: Qbo, state: str, lines: list, tax: str):
    cust = ast.customer(f"Round {state} {len(lines)}", ShipAddr={"CountrySubDivisionCode": state})
    item = ast.item()
    inv = invoice(ast, cust, [line(item["Id"], 1, price, code) for price, code in lines])
    assert money(inv["TxnTaxDetail"]["TotalTax"]) == Decimal(tax)
    subtotal = sum((Decimal(p) for p, _ in lines), Decimal(0))
    assert money(inv["TotalAmt"]) == subtotal + Decimal(tax)


def test_an_explicit_total_tax_overrides_the_computed_one(ast: Qbo):
    cust = ast.customer("Override Co", ShipAddr={"PostalCode": "94043"})
    item = ast.item()
    # When the client sends its own TotalTax (or zero)
    own = invoice(ast, cust, [line(item["Id"], 1, 100, "TAX")], TxnTaxDetail={"TotalTax": "5.00"})
    zero = invoice(ast, cust, [line(item["Id"], 1, 100, "TAX")], TxnTaxDetail={"TotalTax": 0})
    # Then QuickBooks keeps it and the total is built on it
    assert money(own["TxnTaxDetail"]["TotalTax"]) == Decimal("5.00") and money(own["TotalAmt"]) == Decimal(
        "105.00"
    )
    assert money(zero["TxnTaxDetail"]["TotalTax"]) == 0 and money(zero["TotalAmt"]) == Decimal("100.00")


def test_a_sparse_update_of_the_lines_recomputes_the_tax(ast: Qbo):
    cust = ast.customer("Update Co", ShipAddr={"PostalCode": "94043"})
    item = ast.item()
    inv = invoice(ast, cust, [line(item["Id"], 1, 100, "TAX")])
    # When the lines change and no tax is sent
    body = {
        "Id": inv["Id"],
        "SyncToken": inv["SyncToken"],
        "sparse": True,
        "Line": [line(item["Id"], 2, 100, "TAX")],
    }
    resp = ast.post("invoice", body)
    assert resp.status_code == 200, resp.text
    updated = resp.json()["Invoice"]
    # Then the tax follows the new lines: 200.00 x 9.125 % = 18.25
    assert money(updated["TxnTaxDetail"]["TotalTax"]) == Decimal("18.25")
    assert money(updated["TotalAmt"]) == Decimal("218.25")


def test_a_company_without_automated_tax_computes_nothing(emu, qbo: Qbo):
    # Given the default company (no automated sales tax) and a customer in a taxed place
    assert qbo.get("preferences").json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is False
    cust = qbo.customer("Manual Co", ShipAddr={"PostalCode": "94043"})
    item = qbo.item()
    # When an invoice with a TAX line is created without tax, then one with the client's tax
    plain = invoice(qbo, cust, [line(item["Id"], 1, 100, "TAX")])
    sent = invoice(qbo, cust, [line(item["Id"], 1, 100, "TAX")], TxnTaxDetail={"TotalTax": "8.00"})
    # Then only what the client sent is added
    assert money(plain["TotalAmt"]) == Decimal("100.00")
    assert money(sent["TotalAmt"]) == Decimal("108.00")


def test_the_preferences_show_automated_tax_and_can_be_changed(emu, ast: Qbo):
    assert ast.get("preferences").json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is True
    emu.set_preferences(ast.realm, automated_sales_tax=False)
    assert ast.get("preferences").json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is False
    cust = ast.customer("After Off Co", ShipAddr={"PostalCode": "94043"})
    item = ast.item()
    assert money(invoice(ast, cust, [line(item["Id"], 1, 100, "TAX")])["TotalAmt"]) == Decimal("100.00")


# ------------------------------------------------------------------ custom transaction numbers
def test_without_custom_numbers_quickbooks_numbers_invoices_from_1001_skipping_taken_numbers(qbo: Qbo):
    cust, item = qbo.customer("Numbered Co"), qbo.item()
    first = qbo.invoice(cust["Id"], item["Id"], [(1, 5)])
    second = qbo.invoice(cust["Id"], item["Id"], [(1, 5)])
    assert (first["DocNumber"], second["DocNumber"]) == ("1001", "1002")
    # a number sent by the client is kept, and the sequence steps over it
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)], DocNumber="1003")["DocNumber"] == "1003"
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)])["DocNumber"] == "1004"


def test_custom_numbers_switched_on_leave_doc_number_empty_unless_sent(emu, qbo: Qbo):
    cust, item = qbo.customer("Switch Co"), qbo.item()
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)])["DocNumber"] == "1001"
    # When the company turns custom transaction numbers on (over the admin API, as a user would)
    resp = requests.post(
        f"{emu.url}/__admin/companies/{qbo.realm}/preferences", json={"custom_txn_numbers": True}, timeout=5
    )
    assert resp.status_code == 200, resp.text
    # Then the preference shows it, an invoice without DocNumber has none, one with it keeps it
    prefs = qbo.get("preferences").json()["Preferences"]
    assert prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)]).get("DocNumber") is None
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)], DocNumber="FB-2")["DocNumber"] == "FB-2"


def test_the_tax_settings_and_the_numbering_preference_survive_a_restart(tmp_path):
    from local.qbo_emulator import QboEmulator

    path = tmp_path / "qbo.sqlite"
    first = QboEmulator(state_path=path).start()
    try:
        realm = first.create_company(automated_sales_tax=True, tax_rates={"CA": "7.25"})
        first.set_preferences(realm, custom_txn_numbers=True, tax_rates={"CA": "8"})
    finally:
        first.stop()
    second = QboEmulator(state_path=path).start()
    try:
        company = second.store.company(realm)
        assert company is not None
        assert company.automated_sales_tax and company.custom_txn_numbers
        assert company.tax_rates == {"CA": Decimal("8")}
        prefs = second.state(realm)["Preferences"]
        assert (
            prefs["TaxPrefs"]["PartnerTaxEnabled"] is True
            and prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is True
        )
    finally:
        second.stop()


def test_a_non_taxable_customer_is_not_taxed_even_on_lines_coded_tax(ast: Qbo):
    # Intuit, Customer entity: "Taxable: If true, transactions for this customer are taxable"
    # (issue 15: a tax-exempt contact is pushed with Taxable false).
    # Given two customers in California, one of them not taxable
    exempt = ast.customer("Exempt Co", Taxable=False, ShipAddr={"CountrySubDivisionCode": "CA"})
    taxed = ast.customer("Taxed Co", ShipAddr={"CountrySubDivisionCode": "CA"})
    item = ast.item()
    # When each is invoiced 200.00 on a line coded TAX
    free = invoice(ast, exempt, [line(item["Id"], 2, 100, "TAX")])
    paid = invoice(ast, taxed, [line(item["Id"], 2, 100, "TAX")])
    # Then only the taxable customer is taxed (7.25 %)
    assert money(free["TxnTaxDetail"]["TotalTax"]) == 0 and money(free["TotalAmt"]) == Decimal("200.00")
    assert money(paid["TxnTaxDetail"]["TotalTax"]) == Decimal("14.50")


# ---- issue 15: a tax-exempt customer's exemption reason ------------------------------------------
# Intuit, Customer entity (accounting API reference, minor version 10): TaxExemptionReasonId is
# "the tax exemption reason associated with this customer object. Applicable if automated sales tax
# is enabled", ids 1-15; and Taxable's "default behavior with minor version 10 and above: true, if
# DefaultTaxCodeRef is defined or false if TaxExemptionReasonId is set".
def test_a_customer_given_an_exemption_reason_is_not_taxable_unless_it_says_so(ast: Qbo):
    reasoned = ast.customer("Reason Co", TaxExemptionReasonId=9, ShipAddr={"CountrySubDivisionCode": "CA"})
    assert (reasoned["Taxable"], reasoned["TaxExemptionReasonId"]) == (False, 9)
    assert ast.customer("Plain Co")["Taxable"] is True
    both = ast.customer("Both Co", Taxable=False, TaxExemptionReasonId=5)
    assert (both["Taxable"], both["TaxExemptionReasonId"]) == (False, 5)
    # and automated sales tax taxes none of its lines
    inv = invoice(ast, reasoned, [line(ast.item()["Id"], 1, 100, "TAX")])
    assert money(inv["TxnTaxDetail"]["TotalTax"]) == 0 and money(inv["TotalAmt"]) == Decimal("100")
