"""An invoice edit taxes its lines as a new invoice would (issue 15): the edit is given the same
tax rules every invoice creation uses (line > product > contact > the tenant's default on the
line kinds the company taxes), so a line given back a taxable product is taxed again, and a line
added by hand is taxed when the company taxes that kind; QuickBooks is sent the same."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for

T0 = "2026-10-05T09:00:00+00:00"


def _synced(api: Client, invoice_id: str, version: int | None = None) -> dict[str, Any]:
    def done() -> dict[str, Any] | bool:
        shown = api.ok("GET", f"/invoices/{invoice_id}")
        fresh = version is None or int(shown["version"]) >= version
        return shown["sync_status"] == "synced" and fresh and shown

    return wait_for(done, timeout=30, what="synced")


def test_an_edit_re_taxes_a_line_given_a_taxable_product_and_a_manual_line_of_a_taxed_kind(
    stack, connected_client: Client
):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given our own tax (automated tax off), 10 % by default, a company that taxes goods AND lines
    # added by hand, and a permit that is never taxed
    tokens.save_settings(
        api.tenant_id, {"automated_tax": False, "taxable_line_kinds": ["goods", "manual"]}, "test"
    )
    api.ok("POST", "/tax-codes", json={"id": "ten", "name": "Ten", "rate": "10", "is_default": True})
    api.ok("POST", "/products", json={"id": "chlorine", "name": "Chlorine", "kind": "goods"})
    api.ok("POST", "/products", json={"id": "permit", "name": "Permit", "kind": "goods", "non_taxable": True})
    api.ok("POST", "/contacts", json={"id": "c-edit", "name": "Edited Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={"id": "t-edit", "title": "Pool", "client_contact_id": "c-edit", "status": "done"},
    )
    api.ok(
        "POST",
        "/tasks/t-edit/entries",
        json={
            "id": "g-p",
            "kind": "goods",
            "started_at": T0,
            "quantity": "1",
            "unit_price": "40.00",
            "product_id": "permit",
        },
    )
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    assert api.wait_run(run["id"])["status"] == "succeeded"
    (listed,) = [i for i in api.ok("GET", "/invoices")["items"] if i["contact_id"] == "c-edit"]
    shown = _synced(api, listed["id"])
    (permit,) = shown["lines"]
    assert (permit["taxable"], permit["tax_source"], shown["tax_total"]) == (False, "product", "0.00")

    # When the line is given the (taxable) chlorine instead, and a line is added by hand
    edited = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [
                {"line_no": permit["line_no"], "product_id": "chlorine"},
                {
                    "description": "Extra chlorine",
                    "quantity": "1",
                    "unit_price": "20.00",
                    "product_id": "chlorine",
                },
            ]
        },
    )
    # Then both are taxed at the default, as on a new invoice (goods, and a kind the company taxes)
    by_no = {ln["line_no"]: ln for ln in edited["lines"]}
    again = by_no[permit["line_no"]]
    (added,) = [ln for no, ln in by_no.items() if no != permit["line_no"]]
    assert (again["taxable"], again["tax_code_id"], again["tax_source"], again["tax_amount"]) == (
        True,
        "ten",
        "tenant",
        "4.00",
    )
    assert (added["taxable"], added["tax_source"], added["tax_amount"]) == (True, "tenant", "2.00")
    assert (edited["subtotal"], edited["tax_total"], edited["total"]) == ("60.00", "6.00", "66.00")
    # and QuickBooks is sent both lines as TAX with our tax, and agrees with our total
    synced = _synced(api, shown["id"], int(edited["version"]))
    qbo = stack.emulator.entity(realm, "Invoice", synced["qbo_id"])
    codes = [
        ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in qbo["Line"] if "SalesItemLineDetail" in ln
    ]
    assert codes == ["TAX", "TAX"]
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("66.00") and synced["totals_differ"] is False

    # And given the permit back, the line is untaxed again (the product decides)
    back = api.ok(
        "PATCH",
        f"/invoices/{shown['id']}",
        json={
            "lines": [{"line_no": permit["line_no"], "product_id": "permit"}, {"line_no": added["line_no"]}]
        },
    )
    line = next(ln for ln in back["lines"] if ln["line_no"] == permit["line_no"])
    assert (line["taxable"], line["tax_source"], back["tax_total"]) == (False, "product", "2.00")
