"""Tax codes over HTTP and the tax they put on invoices (issue 15 item 3)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Client
from tests.e2e.test_invoice_documents import local_invoices


def test_tax_codes_are_a_resource_with_one_default(client: Client):
    ca = client.ok(
        "POST", "/tax-codes", json={"id": "ca", "name": "California", "rate": "7.25", "is_default": True}
    )
    assert (ca["rate"], ca["is_default"], ca["active"]) == ("7.25", True, True)
    tx = client.ok("POST", "/tax-codes", json={"id": "tx", "name": "Texas", "rate": 5})
    assert client.ok("GET", "/tax-codes/tx", expect=200)["rate"] == "5"
    # Making Texas the default clears California's flag in the same write
    client.ok("PATCH", "/tax-codes/tx", json={"is_default": True}, expect=200)
    listed = {c["id"]: c["is_default"] for c in client.ok("GET", "/tax-codes", expect=200)["items"]}
    assert listed == {"ca": False, "tx": True}
    assert tx["id"] == "tx"
    client.ok("DELETE", "/tax-codes/ca", expect=200)
    assert client.get("/tax-codes/ca").status_code == 404


def test_a_bad_rate_is_a_422_naming_rate_and_writes_nothing(client: Client):
    for rate in ("-1", "101", "7.12345", "abc"):
        response = client.post("/tax-codes", json={"id": "bad", "name": "Bad", "rate": rate})
        assert response.status_code == 422, response.text
        assert "rate" in response.text
    assert client.get("/tax-codes/bad").status_code == 404


def test_new_invoices_carry_the_default_codes_tax_and_an_edit_recomputes_it(client: Client):
    client.ok("POST", "/tax-codes", json={"id": "qc", "name": "Quebec", "rate": "9.975", "is_default": True})
    (invoice,) = local_invoices(client, [("Tax Pools", [("1", "4495.16")])])
    # Then the goods line is taxable and the tax is rounded once per invoice (quickbooks-ruby#547)
    assert invoice["lines"][0]["taxable"] is True
    assert (invoice["tax_code_id"], invoice["tax_rate"], invoice["tax_total"]) == ("qc", "9.975", "448.39")
    assert Decimal(invoice["total"]) == Decimal("4495.16") + Decimal("448.39") == Decimal(invoice["balance"])
    # When a line is added by hand (taxable) the tax follows, at the rate the invoice copied
    client.ok("PATCH", "/tax-codes/qc", json={"rate": "1"}, expect=200)  # does not move this invoice
    edited = client.ok(
        "PATCH",
        f"/invoices/{invoice['id']}",
        json={
            "lines": [
                {"line_no": invoice["lines"][0]["line_no"]},
                {
                    "product_id": invoice["lines"][0]["product_id"],
                    "description": "Filter",
                    "quantity": "1",
                    "unit_price": "100",
                    "taxable": True,
                },
            ]
        },
        expect=200,
    )
    assert edited["tax_total"] == "458.37"  # 4595.16 x 9.975 % = 458.367...
    assert Decimal(edited["total"]) == Decimal("4595.16") + Decimal("458.37")
