"""Automated sales tax over HTTP (issue 15): QuickBooks computes the tax, the invoice shows its total."""

from __future__ import annotations

from decimal import Decimal

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for


def test_automated_tax_on_the_emulator_computes_it_and_the_invoice_shows_quickbooks_total(
    stack, connected_client: Client
):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a US company with automated sales tax (California 7.25 %), our setting on, labour taxed
    stack.emulator.set_preferences(realm, automated_sales_tax=True, tax_rates={"CA": "7.25"})
    tokens.save_settings(api.tenant_id, {"automated_tax": True, "taxable_line_kinds": ["task_entry"]}, "test")
    # and a customer who lives in California (QuickBooks rates by the customer's address): ours
    # links to it by name
    stack.emulator.user_create(
        realm, "Customer", {"DisplayName": "Tax Pools", "ShipAddr": {"CountrySubDivisionCode": "CA"}}
    )
    # When a 120.00 invoice (1.5 h at 80.00) is made by a billing run and synced
    api.ok("POST", "/contacts", json={"id": "c-ast", "name": "Tax Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": "t-ast",
            "title": "Pool service",
            "client_contact_id": "c-ast",
            "status": "done",
            "unit_price": "80.00",
        },
    )
    api.ok(
        "POST",
        "/tasks/t-ast/entries",
        json={"id": "e-1", "kind": "time", "started_at": "2026-10-05T09:00:00+00:00"},
    )
    api.ok("POST", "/tasks/t-ast/entries/e-1/stop", json={"stopped_at": "2026-10-05T10:30:00+00:00"})
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    assert api.wait_run(run["id"])["status"] == "succeeded"
    (invoice,) = api.ok("GET", "/invoices")["items"]
    shown = wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{invoice['id']}"))["sync_status"] == "synced" and i,
        timeout=30,
        what="synced",
    )
    # Then QuickBooks computed 8.70 (120.00 x 7.25 %) and the invoice shows QuickBooks' figures
    qbo = stack.emulator.entity(realm, "Invoice", shown["qbo_id"])
    assert Decimal(str(qbo["TxnTaxDetail"]["TotalTax"])) == Decimal("8.70")
    assert [
        ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in qbo["Line"] if "SalesItemLineDetail" in ln
    ] == ["TAX"]
    assert (shown["subtotal"], shown["tax_total"], shown["total"]) == ("120.00", "8.70", "128.70")
    assert shown["tax_source"] == "quickbooks" and shown["balance"] == "128.70"
    assert shown["qbo_total"] == "128.70" and shown["totals_differ"] is False
