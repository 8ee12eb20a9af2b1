"""Our invoices, contacts and products as QuickBooks JSON: the amount rule, DocNumber, the marker."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain.money import line_amount
from fieldbill.quickbooks import mapping
from fieldbill.quickbooks.client import (
    BATCH_ID_MAX,
    BATCH_REQUEST_ID_MAX,
    REQUEST_ID_MAX,
    batch_item_id,
    batch_request_id,
    dumps,
    loads,
    quote,
    request_id,
)

SETTINGS = mapping.QboSettings()


def line(
    qty: str, price: str, amount: str | None = None, kind: str = "task_entry", product: str | None = "p1"
):
    q, p = Decimal(qty), Decimal(price)
    return SimpleNamespace(
        line_kind=kind,
        description="Pool service",
        product_id=product,
        product_name="Service",
        quantity=q,
        unit_price=p,
        amount=Decimal(amount) if amount else line_amount(q, p),
        work_date="2024-05-06",
    )


def invoice(*lines):
    return SimpleNamespace(
        tenant_id="t1",
        id="inv-1",
        issue_date=date(2024, 5, 31),
        due_date=date(2024, 6, 30),
        lines=list(lines) or [line("1.5", "80")],
    )


def test_invoice_body_carries_customer_items_dates_and_private_note_marker() -> None:
    body = mapping.invoice_to_qbo(invoice(line("1.5", "80")), "42", {"p1": "7"}, SETTINGS)
    assert body["CustomerRef"] == {"value": "42"}
    assert body["TxnDate"] == "2024-05-31" and body["DueDate"] == "2024-06-30"
    assert body["PrivateNote"] == "fieldbill:invoice:t1:inv-1"
    (sales,) = body["Line"]
    assert sales["DetailType"] == "SalesItemLineDetail"
    assert sales["Amount"] == Decimal("120.00")
    assert sales["SalesItemLineDetail"]["ItemRef"] == {"value": "7"}
    assert sales["SalesItemLineDetail"]["Qty"] == Decimal("1.5")
    assert mapping.has_marker(body, "t1", "inv-1") and not mapping.has_marker(body, "t1", "inv-2")


def test_amount_is_qty_times_price_rounded_half_up_to_cents() -> None:
    # 0.333333 h x 75 = 24.999975 -> 25.00 ; 3 x 0.125 = 0.375 -> 0.38 (half-up, not banker's)
    body = mapping.invoice_to_qbo(
        invoice(line("0.333333", "75"), line("3", "0.125")), "1", {"p1": "7"}, SETTINGS
    )
    assert [ln["Amount"] for ln in body["Line"]] == [Decimal("25.00"), Decimal("0.38")]


def test_a_line_whose_stored_amount_breaks_the_rule_is_refused_before_quickbooks_sees_it() -> None:
    with pytest.raises(mapping.MappingError) as caught:
        mapping.invoice_to_qbo(invoice(line("3", "0.125", amount="0.37")), "1", {}, SETTINGS)
    assert caught.value.element == "Line.Amount"


@given(
    qty=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("10000"), places=6),
    price=st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=6),
)
def test_every_line_we_compute_passes_quickbooks_amount_check(qty: Decimal, price: Decimal) -> None:
    sales = mapping.sales_line(line(str(qty), str(price)), "7", SETTINGS)
    detail = sales["SalesItemLineDetail"]
    expected = (detail["Qty"] * detail["UnitPrice"]).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert sales["Amount"] == expected


def test_doc_number_blank_unless_custom_numbers_are_on_and_we_have_a_number() -> None:
    custom = mapping.QboSettings(custom_txn_numbers=True)
    assert "DocNumber" not in mapping.invoice_to_qbo(invoice(), "1", {}, SETTINGS, invoice_number="1001")
    assert "DocNumber" not in mapping.invoice_to_qbo(invoice(), "1", {}, custom)
    assert mapping.invoice_to_qbo(invoice(), "1", {}, custom, invoice_number="1001")["DocNumber"] == "1001"
    with pytest.raises(mapping.MappingError):
        mapping.invoice_to_qbo(invoice(), "1", {}, custom, invoice_number="X" * 22)


def test_tax_codes_follow_the_taxable_line_kinds_and_tax_is_zero_without_automated_tax() -> None:
    body = mapping.invoice_to_qbo(invoice(line("1", "10", kind="goods"), line("1", "10")), "1", {}, SETTINGS)
    assert [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in body["Line"]] == ["TAX", "NON"]
    assert body["TxnTaxDetail"] == {"TotalTax": Decimal("0")}
    ast = mapping.QboSettings(automated_tax=True)
    assert "TxnTaxDetail" not in mapping.invoice_to_qbo(invoice(), "1", {}, ast)


def test_settings_from_connection_map() -> None:
    got = mapping.QboSettings.from_map(
        {
            "custom_txn_numbers": True,
            "default_income_account": "79",
            "taxable_line_kinds": ["goods", "expense"],
        }
    )
    assert got.custom_txn_numbers and got.default_income_account == "79"
    assert got.taxable_line_kinds == ("goods", "expense")


def test_names_lose_colons_and_are_bounded() -> None:
    assert mapping.contact_to_qbo("Smith: Pool  ", "a@b.c") == {
        "DisplayName": "Smith- Pool",
        "PrimaryEmailAddr": {"Address": "a@b.c"},
    }
    item = mapping.product_to_qbo("N" * 150, "service", Decimal("80"), "79")
    assert (
        len(item["Name"]) == 100 and item["Type"] == "Service" and item["IncomeAccountRef"] == {"value": "79"}
    )
    goods = mapping.product_to_qbo("Chlorine", "goods", None, "79", "80")
    assert goods["Type"] == "NonInventory" and goods["ExpenseAccountRef"] == {"value": "80"}
    with pytest.raises(mapping.MappingError):
        mapping.product_to_qbo("X", "service", None, None)


def test_json_keeps_decimals_exact_both_ways() -> None:
    text = dumps({"Amount": Decimal("0.10"), "Qty": Decimal("0.333333"), "n": [Decimal("-1.5")]})
    assert text == '{"Amount":0.10,"Qty":0.333333,"n":[-1.5]}'
    assert loads(text)["Amount"] == Decimal("0.10")
    assert json.loads(dumps({"Note": "contains \u0000dec: but is text"}))["Note"].startswith("contains")
    with pytest.raises(TypeError):
        dumps({"Amount": 0.1})


def test_request_ids_are_deterministic_and_within_quickbooks_limits() -> None:
    a = request_id("invoice", "t1", "inv-1", 1)
    assert a == request_id("invoice", "t1", "inv-1", 1) != request_id("invoice", "t1", "inv-1", 2)
    assert len(a) <= REQUEST_ID_MAX
    assert len(batch_request_id([a, "x"])) <= BATCH_REQUEST_ID_MAX
    assert batch_request_id([a, "x"]) == batch_request_id(["x", a])
    assert len(batch_item_id(a)) <= BATCH_ID_MAX


def test_query_values_are_quoted_and_escaped() -> None:
    assert quote("O'Brien") == "'O\\'Brien'"


def test_send_via_is_our_email_unless_quickbooks_is_chosen() -> None:
    # wt-credit: QuickBooks' own send only when the tenant chose it by name
    assert mapping.QboSettings.from_map({}).send_via == "email"
    assert mapping.QboSettings.from_map({"send_via": "quickbooks"}).send_via == "quickbooks"
    assert mapping.QboSettings.from_map({"send_via": "QuickBooks"}).send_via == "email"


# ---- issue 17: a QuickBooks customer's phone and BillAddr coming in (the outbound's inverse)
def test_a_structured_bill_addr_keeps_city_state_and_postal_code_on_one_line():
    addr = {
        "Id": "7",
        "Line1": " 12 Palm Road ",
        "Line2": "Suite 4",
        "City": "Tampa",
        "CountrySubDivisionCode": "FL",
        "PostalCode": "33602",
        "Country": "USA",
        "Lat": "27.9",
        "Long": "-82.4",
    }
    assert mapping.address_from_qbo(addr) == "12 Palm Road\nSuite 4\nTampa, FL 33602\nUSA"
    assert mapping.address_from_qbo({"City": "Tampa"}) == "Tampa"
    assert mapping.address_from_qbo({"Line1": "1 A St", "PostalCode": "33602"}) == "1 A St\n33602"
    assert mapping.address_from_qbo({"Id": "3"}) is None
    assert mapping.address_from_qbo(None) is None


def test_more_than_five_address_lines_fold_into_the_fifth_so_nothing_is_lost():
    addr = {f"Line{n}": f"L{n}" for n in range(1, 6)} | {"City": "Tampa", "CountrySubDivisionCode": "FL"}
    text = mapping.address_from_qbo(addr)
    assert text is not None and text.splitlines() == ["L1", "L2", "L3", "L4", "L5, Tampa, FL"]


def test_our_address_and_phone_survive_a_round_trip_through_quickbooks_unchanged():
    ours = "12 Palm Road\nTampa, FL 33602"
    body = mapping.contact_to_qbo("Palm Pools", phone="(813) 555-0100", address=ours)
    # QuickBooks gives the address an id of its own when it keeps it
    back = {**body, "BillAddr": {**body["BillAddr"], "Id": "42"}}
    assert mapping.address_from_qbo(back["BillAddr"]) == ours
    assert mapping.phone_from_qbo(back.get("PrimaryPhone")) == "(813) 555-0100"
    assert mapping.phone_from_qbo({"FreeFormNumber": "  "}) is None
    assert mapping.phone_from_qbo(None) is None
