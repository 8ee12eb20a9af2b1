"""wt-life, decision 0011 amended: a credit against an invoice with taxable lines credits tax too,
by the same rules as the invoice's tax, shown on the credit memo (subtotal, tax, total) and applied
to the balance as its total; in QuickBooks its lines are TAX and, with automated sales tax,
QuickBooks computes the same tax."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for
from tests.e2e.test_invoice_documents import local_invoices


def test_a_credit_on_a_taxed_local_invoice_credits_its_tax_rounded_once(client: Client):
    client.ok("POST", "/tax-codes", json={"id": "qc", "name": "Quebec", "rate": "9.975", "is_default": True})
    (invoice,) = local_invoices(client, [("Tax Pools", [("1", "4495.16")])])
    assert (invoice["tax_total"], invoice["total"]) == ("448.39", "4943.55")
    path = f"/invoices/{invoice['id']}"
    client.ok("POST", f"{path}/mark-sent")
    product = invoice["lines"][0]["product_id"]
    # When one unit's worth of 100.00 of the taxed product is credited (by lines), and 10.00 of an
    # untaxed courtesy (said so)
    credited = client.ok(
        "POST",
        f"{path}/credit-memos",
        json={
            "id": "cm-t",
            "reason": "damaged filter",
            "lines": [
                {"description": "filter", "quantity": "1", "unit_price": "100.00", "product_id": product},
                {"description": "courtesy", "quantity": "1", "unit_price": "10.00", "taxable": False},
            ],
        },
        expect=201,
    )
    memo = credited["credit_memos"][0]
    # Then it credits 9.98 of tax (100.00 x 9.975 %, half-up), its total lowers the balance
    assert (memo["subtotal"], memo["tax_total"], memo["amount"], memo["tax_rate"]) == (
        "110.00",
        "9.98",
        "119.98",
        "9.975",
    )
    assert [ln["taxable"] for ln in memo["lines"]] == [True, False]
    assert (credited["balance"], credited["amount_credited"]) == ("4823.57", "119.98")
    # And an amount alone on a wholly taxable invoice is taxed the same way
    more = client.ok(
        "POST", f"{path}/credit-memos", json={"id": "cm-a", "amount": "10.00", "reason": "late"}, expect=201
    )
    second = more["credit_memos"][1]
    assert (second["subtotal"], second["tax_total"], second["amount"], second["taxable"]) == (
        "10.00",
        "1.00",
        "11.00",
        True,
    )
    assert more["balance"] == "4812.57"


def test_with_automated_tax_quickbooks_computes_the_same_tax_on_the_credit(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a California company with automated sales tax (7.25 %) taxing labour, and a synced
    # invoice of 120.00 + 8.70 tax that QuickBooks computed
    stack.emulator.set_preferences(realm, automated_sales_tax=True, tax_rates={"CA": "7.25"})
    tokens.save_settings(api.tenant_id, {"automated_tax": True, "taxable_line_kinds": ["task_entry"]}, "test")
    stack.emulator.user_create(
        realm, "Customer", {"DisplayName": "Tax Pools", "ShipAddr": {"CountrySubDivisionCode": "CA"}}
    )
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
    path = f"/invoices/{invoice['id']}"
    invoice = wait_for(
        lambda: (i := api.ok("GET", path))["sync_status"] == "synced" and i["status"] == "open" and i,
        timeout=30,
        what="synced",
    )
    assert (invoice["tax_total"], invoice["total"], invoice["tax_source"]) == ("8.70", "128.70", "quickbooks")
    # When half an hour (40.00) is credited
    credited = api.ok(
        "POST",
        f"{path}/credit-memos",
        json={"id": "cm-q", "reason": "short visit", "lines": [{"quantity": "0.5", "unit_price": "80.00"}]},
        expect=201,
    )
    memo = credited["credit_memos"][0]
    # Then ours credits 2.90 of tax (40.00 x 7.25 %), and the balance drops by 42.90
    assert (memo["subtotal"], memo["tax_total"], memo["amount"]) == ("40.00", "2.90", "42.90")
    assert credited["balance"] == "85.80"

    def linked() -> dict[str, Any] | None:
        ours = api.ok("GET", path)["credit_memos"][0]
        assert ours.get("qbo_error") is None, ours
        return ours if ours.get("qbo_id") and ours.get("qbo_apply_id") else None

    ours = wait_for(linked, timeout=30, what="credit memo in QuickBooks")
    # And QuickBooks' CreditMemo has a TAX line, computed the same 2.90, wholly applied
    theirs = stack.emulator.entity(realm, "CreditMemo", ours["qbo_id"])
    sales = [ln for ln in theirs["Line"] if ln.get("DetailType") == "SalesItemLineDetail"]
    assert [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in sales] == ["TAX"]
    assert Decimal(str(theirs["TxnTaxDetail"]["TotalTax"])) == Decimal("2.90")
    assert (
        Decimal(str(theirs["TotalAmt"])) == Decimal("42.90") and Decimal(str(theirs["RemainingCredit"])) == 0
    )
    assert ours["qbo_total"] == "42.90"
    qbo_invoice = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert Decimal(str(qbo_invoice["Balance"])) == Decimal("85.80")

    def agreed() -> dict[str, Any] | None:
        balance = api.ok("GET", "/contacts/c-ast/balance")
        return balance if (balance["account_balance"], balance["differs_by"]) == ("85.80", "0.00") else None

    wait_for(agreed, timeout=90, what="balances agree")
