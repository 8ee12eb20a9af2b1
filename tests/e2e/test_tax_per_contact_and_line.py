"""Tax per contact and per line over HTTP (issue 15): a tax-exempt contact's invoice carries no tax
here nor in QuickBooks; a non-taxable product's line among taxable ones is left out of the tax,
here and in what QuickBooks is sent; a line edit names its own code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for

T0 = "2026-10-05T09:00:00+00:00"


def _synced(api: Client, invoice_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{invoice_id}"))["sync_status"] == "synced" and i,
        timeout=30,
        what="synced",
    )


def _tax_codes(qbo: dict[str, Any]) -> list[str]:
    return [
        ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in qbo["Line"] if "SalesItemLineDetail" in ln
    ]


def _one_invoice(api: Client, contact_id: str) -> dict[str, Any]:
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    assert api.wait_run(run["id"])["status"] == "succeeded"
    (invoice,) = [i for i in api.ok("GET", "/invoices")["items"] if i["contact_id"] == contact_id]
    return dict(invoice)


def test_a_tax_exempt_contacts_invoice_has_no_tax_here_nor_in_quickbooks(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a company with automated sales tax (California 7.25 %) that taxes labour, a default
    # code here, and a customer in California whom we mark tax-exempt
    stack.emulator.set_preferences(realm, automated_sales_tax=True, tax_rates={"CA": "7.25"})
    tokens.save_settings(api.tenant_id, {"automated_tax": True, "taxable_line_kinds": ["task_entry"]}, "test")
    api.ok("POST", "/tax-codes", json={"id": "ca", "name": "California", "rate": "7.25", "is_default": True})
    stack.emulator.user_create(
        realm, "Customer", {"DisplayName": "Church Pools", "ShipAddr": {"CountrySubDivisionCode": "CA"}}
    )
    contact = api.ok("POST", "/contacts", json={"id": "c-ex", "name": "Church Pools", "tax_exempt": True})
    assert contact["tax_exempt"] is True
    # When 1.5 h at 80.00 is billed and synced
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": "t-ex",
            "title": "Pool",
            "client_contact_id": "c-ex",
            "status": "done",
            "unit_price": "80.00",
        },
    )
    api.ok("POST", "/tasks/t-ex/entries", json={"id": "e-1", "kind": "time", "started_at": T0})
    api.ok("POST", "/tasks/t-ex/entries/e-1/stop", json={"stopped_at": "2026-10-05T10:30:00+00:00"})
    shown = _synced(api, _one_invoice(api, "c-ex")["id"])
    # Then no tax here: the contact decided (its line says so) ...
    assert (shown["subtotal"], shown["tax_total"], shown["total"]) == ("120.00", "0.00", "120.00")
    (line,) = shown["lines"]
    assert (line["taxable"], line["tax_source"], line["tax_amount"]) == (False, "contact", "0.00")
    # ... nor in QuickBooks: the line went as NON, the customer is not taxable, no tax computed
    qbo = stack.emulator.entity(realm, "Invoice", shown["qbo_id"])
    assert _tax_codes(qbo) == ["NON"]
    assert Decimal(str(qbo["TxnTaxDetail"]["TotalTax"])) == 0 and Decimal(str(qbo["TotalAmt"])) == Decimal(
        "120"
    )
    customer = wait_for(
        lambda: (
            (c := stack.emulator.entity(realm, "Customer", qbo["CustomerRef"]["value"]))["Taxable"] is False
            and c
        ),
        timeout=30,
        what="customer not taxable",
    )
    assert customer["DisplayName"] == "Church Pools"


def test_a_non_taxable_line_among_taxable_ones_and_a_line_with_its_own_code(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given our own tax (automated tax off: ours is sent), 10 % by default, goods taxed, and a
    # permit that is never taxed
    tokens.save_settings(api.tenant_id, {"automated_tax": False, "taxable_line_kinds": ["goods"]}, "test")
    api.ok("POST", "/tax-codes", json={"id": "ten", "name": "Ten", "rate": "10", "is_default": True})
    api.ok("POST", "/tax-codes", json={"id": "five", "name": "Five", "rate": "5"})
    api.ok("POST", "/products", json={"id": "chlorine", "name": "Chlorine", "kind": "goods"})
    permit = api.ok(
        "POST", "/products", json={"id": "permit", "name": "Permit", "kind": "goods", "non_taxable": True}
    )
    assert permit["non_taxable"] is True
    api.ok("POST", "/contacts", json={"id": "c-mix", "name": "Mixed Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={"id": "t-mix", "title": "Pool", "client_contact_id": "c-mix", "status": "done"},
    )
    for entry_id, product, qty, price in (("g-1", "chlorine", "2", "50.00"), ("g-2", "permit", "1", "40.00")):
        api.ok(
            "POST",
            "/tasks/t-mix/entries",
            json={
                "id": entry_id,
                "kind": "goods",
                "started_at": T0,
                "quantity": qty,
                "unit_price": price,
                "product_id": product,
            },
        )
    # When they are billed and synced
    shown = _synced(api, _one_invoice(api, "c-mix")["id"])
    # Then only the chlorine is taxed, each line shows its part
    lines = {ln["product_id"]: ln for ln in shown["lines"]}
    assert (
        lines["chlorine"]["taxable"],
        lines["chlorine"]["tax_code_id"],
        lines["chlorine"]["tax_amount"],
    ) == (
        True,
        "ten",
        "10.00",
    )
    assert (lines["permit"]["taxable"], lines["permit"]["tax_source"], lines["permit"]["tax_amount"]) == (
        False,
        "product",
        "0.00",
    )
    assert (shown["tax_total"], shown["total"]) == ("10.00", "150.00")
    # and QuickBooks got TAX / NON and our tax, and agrees with our total
    qbo = stack.emulator.entity(realm, "Invoice", shown["qbo_id"])
    by_name = {
        ln["SalesItemLineDetail"]["ItemRef"]["name"]: ln for ln in qbo["Line"] if "SalesItemLineDetail" in ln
    }
    assert by_name["Chlorine"]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"
    assert by_name["Permit"]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "NON"
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("150.00") and shown["totals_differ"] is False

    # When a person gives the chlorine line its own 5 % code (PATCH /invoices/{id})
    line_no = {ln["product_id"]: ln["line_no"] for ln in shown["lines"]}
    edited = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [{"line_no": line_no["chlorine"], "tax_code_id": "five"}, {"line_no": line_no["permit"]}]
        },
    )
    # Then that line is taxed at 5 %, named as the line's own choice, and QuickBooks follows
    lines = {ln["product_id"]: ln for ln in edited["lines"]}
    assert (lines["chlorine"]["tax_source"], lines["chlorine"]["tax_amount"]) == ("line", "5.00")
    assert (edited["tax_total"], edited["total"]) == ("5.00", "145.00")
    wait_for(
        lambda: (
            Decimal(str(stack.emulator.entity(realm, "Invoice", shown["qbo_id"])["TotalAmt"]))
            == Decimal("145")
        ),
        timeout=30,
        what="QuickBooks took the edit",
    )
    # An unknown code on a line is refused naming it, and changes nothing
    refused = api.patch(
        f"/invoices/{shown['id']}", json={"lines": [{"line_no": line_no["chlorine"], "tax_code_id": "nope"}]}
    )
    assert refused.status_code == 422, refused.text
    assert "lines[0].tax_code_id" in refused.text
    assert api.ok("GET", f"/invoices/{shown['id']}")["total"] == "145.00"
    # A line given another product: its own code still decides for it (line > product) ...
    again = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [
                {"line_no": line_no["chlorine"], "product_id": "permit"},
                {"line_no": line_no["permit"]},
            ]
        },
    )
    by_no = {ln["line_no"]: ln for ln in again["lines"]}
    assert (by_no[line_no["chlorine"]]["tax_source"], by_no[line_no["chlorine"]]["tax_amount"]) == (
        "line",
        "5.00",
    )
    # ... and once the line's code is taken off (taxable true: the invoice's rule), the
    # non-taxable product it now bills decides
    cleared = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [
                {"line_no": line_no["chlorine"], "taxable": True},
                {"line_no": line_no["permit"]},
            ]
        },
    )
    marked = next(ln for ln in cleared["lines"] if ln["line_no"] == line_no["chlorine"])
    assert (marked["taxable"], marked["tax_amount"], cleared["tax_total"]) == (True, "10.00", "10.00")
    untaxed = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [
                {"line_no": line_no["chlorine"], "product_id": "permit"},
                {"line_no": line_no["permit"]},
            ]
        },
    )
    gone = next(ln for ln in untaxed["lines"] if ln["line_no"] == line_no["chlorine"])
    assert (gone["taxable"], gone["tax_source"], untaxed["tax_total"]) == (False, "product", "0.00")


def test_a_contact_naming_an_unknown_code_or_both_a_code_and_exempt_is_refused(client: Client):
    client.ok("POST", "/tax-codes", json={"id": "ca", "name": "California", "rate": "7.25"})
    unknown = client.post("/contacts", json={"name": "A", "tax_code_id": "nope"})
    assert unknown.status_code == 422 and "tax_code_id" in unknown.text
    both = client.post("/contacts", json={"name": "B", "tax_code_id": "ca", "tax_exempt": True})
    assert both.status_code == 422 and "tax_exempt" in both.text
    made = client.ok("POST", "/contacts", json={"id": "c-ca", "name": "C", "tax_code_id": "ca"})
    assert made["tax_code_id"] == "ca"
    assert (
        client.ok("PATCH", "/contacts/c-ca", json={"tax_code_id": None, "tax_exempt": True})["tax_exempt"]
        is True
    )


def test_invoices_from_the_billing_page_follow_the_contacts_tax(client: Client):
    api = client
    # Given 10 % by default, 5 % for one customer, another tax-exempt, and taxable work and goods
    api.ok("POST", "/tax-codes", json={"id": "ten", "name": "Ten", "rate": "10", "is_default": True})
    api.ok("POST", "/tax-codes", json={"id": "low", "name": "Low", "rate": "5"})
    api.ok("POST", "/workers", json={"id": "ana", "name": "Ana"}, expect=201)
    api.ok("POST", "/inventory-items", json={"id": "chem", "name": "Chem", "price": "20.00", "taxable": True})
    api.ok(
        "POST",
        "/inventory-items",
        json={"id": "fee", "name": "Permit fee", "price": "30.00", "taxable": False},
    )
    api.ok(
        "POST",
        "/service-types",
        json={
            "id": "weekly",
            "name": "Weekly",
            "billing_method": "fixed",
            "price": "100.00",
            "taxable": True,
        },
    )
    api.ok("POST", "/contacts", json={"id": "low-c", "name": "Low Pools", "tax_code_id": "low"})
    api.ok("POST", "/contacts", json={"id": "free-c", "name": "Free Pools", "tax_exempt": True})
    totals = {}
    for contact in ("low-c", "free-c"):
        api.ok(
            "POST",
            "/services",
            json={
                "id": f"s-{contact}",
                "contact_id": contact,
                "service_date": "2026-11-03",
                "started_at": "2026-11-03T09:00:00+00:00",
                "ended_at": "2026-11-03T10:00:00+00:00",
                "service_type_id": "weekly",
                "worker_ids": ["ana"],
                "inventory": [{"item_id": "chem", "quantity": "1"}, {"item_id": "fee", "quantity": "1"}],
                "completed": True,
            },
            expect=201,
        )
        # When each customer's services are invoiced from the billing page
        (invoice,) = api.ok(
            "POST", f"/billing/customers/{contact}/invoices", json={"issue_date": "2026-11-30"}, expect=201
        )["invoices"]
        totals[contact] = api.ok("GET", f"/invoices/{invoice['id']}")
    # Then the 5 % customer's taxable 120.00 is taxed 6.00 (the fee, non-taxable, is not) ...
    low = totals["low-c"]
    assert (low["subtotal"], low["tax_total"], low["total"], low["tax_code_id"]) == (
        "150.00",
        "6.00",
        "156.00",
        "low",
    )
    sources = sorted((ln["taxable"], ln["tax_source"]) for ln in low["lines"])
    assert sources == [(False, "product"), (True, "contact"), (True, "contact")]
    # ... and the exempt customer's invoice carries no tax at all
    free = totals["free-c"]
    assert (free["tax_total"], free["total"]) == ("0.00", "150.00")
    assert {ln["tax_source"] for ln in free["lines"]} <= {"contact", "product"}


def test_recurring_drafts_follow_the_contacts_tax(stack, connected_client: Client):
    api = connected_client
    # Given a company that taxes recurring charges, 10 % by default, 5 % for one account, and
    # another account tax-exempt
    tokens.save_settings(api.tenant_id, {"automated_tax": False, "taxable_line_kinds": ["recurring"]}, "test")
    api.ok("POST", "/tax-codes", json={"id": "ten", "name": "Ten", "rate": "10", "is_default": True})
    api.ok("POST", "/tax-codes", json={"id": "low", "name": "Low", "rate": "5"})
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-tax", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    accounts = {"r-low": {"tax_code_id": "low"}, "r-free": {"tax_exempt": True}, "r-std": {}}
    for contact_id, tax_setting in accounts.items():
        api.ok("POST", "/contacts", json={"id": contact_id, "name": contact_id.title(), **tax_setting})
        api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-tax"})
        api.ok(
            "POST",
            "/recurring-services",
            json={
                "id": f"s-{contact_id}",
                "contact_id": contact_id,
                "name": "Weekly cart pickup",
                "product_id": "p-cart",
                "rate": "100.00",
                "basis": "period",
                "start_date": "2026-10-01",
            },
            expect=201,
        )
    # When November's drafts are made
    accepted = api.ok("POST", "/bill-profiles/bp-tax/periods/2026-11/drafts", json={}, expect=202)
    assert api.wait_operation(accepted["operation_id"])["status"] == "succeeded"
    made = {i["contact_id"]: i for i in api.ok("GET", "/invoices?period=2026-11&limit=50")["items"]}
    # Then each account's draft is taxed by its own rule
    assert {c: (made[c]["tax_total"], made[c]["total"]) for c in accounts} == {
        "r-low": ("5.00", "105.00"),
        "r-free": ("0.00", "100.00"),
        "r-std": ("10.00", "110.00"),
    }
