"""A job invoice carries sales tax by the invoice rules (issue 15, decision 0010 amendment): the job
price is before tax, so the job's accounting (its invoices' subtotals add up to the price) holds,
each invoice shows its tax, and its default GL distribution owes the tax (Sales Tax Payable)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Client


def test_a_job_billed_deposit_then_complete_is_taxed_on_its_taxable_items_only(client: Client):
    api = client
    api.ok("PUT", "/jobs/settings", json={"accounting_integration": True, "numbering": "automatic"})
    api.ok("POST", "/tax-codes", json={"id": "ca", "name": "California", "rate": "7.25", "is_default": True})
    api.ok("POST", "/contacts", json={"id": "c-tax", "name": "Taxed Printing"})
    api.ok("POST", "/products", json={"id": "p-print", "name": "Printing"})
    items = [
        {"id": "posters", "kind": "order_item", "product_id": "p-print", "quantity": "1",
         "unit_price": "200.00", "description": "Posters", "taxable": True},
        {"id": "design", "kind": "order_item", "product_id": "p-print", "quantity": "1",
         "unit_price": "100.00", "description": "Design"},
    ]  # fmt: skip
    job = api.ok(
        "POST",
        "/jobs",
        json={"id": "job-tax", "customer_id": "c-tax", "billing_type": "order_items", "invoiceables": items},
        expect=201,
    )
    assert job["suggested_price"] == "300.00"  # the price, before tax

    # A deposit is an advance on the price: no tax
    deposit = api.ok(
        "POST", "/jobs/job-tax/invoices", json={"policy": "deposit", "amount": "100.00"}, expect=201
    )
    assert (deposit["subtotal"], deposit["tax_total"], deposit["total"]) == ("100.00", "0.00", "100.00")
    api.ok("POST", "/jobs/job-tax/close", json={})
    # The complete invoice: the taxable posters taxed at the default code, the deposit netted untaxed
    complete = api.ok("POST", "/jobs/job-tax/invoices", json={"policy": "complete"}, expect=201)
    assert (complete["subtotal"], complete["tax_total"], complete["total"]) == ("200.00", "14.50", "214.50")
    taxed = {ln["description"]: (ln["taxable"], ln["tax_amount"]) for ln in complete["lines"]}
    assert taxed["Posters"] == (True, "14.50")
    assert taxed["Design"] == (False, "0.00")
    # The job's accounting holds before tax: its invoices' subtotals are its price, nothing remains
    job = api.ok("GET", "/jobs/job-tax")
    assert (job["status"], job["remaining"]) == ("billed", "0.00")
    assert sum(Decimal(i["subtotal"]) for i in (deposit, complete)) == Decimal(job["suggested_price"])
    # and the default distribution balances with the tax owed (receivables = the total with tax)
    ids = [deposit["id"], complete["id"]]
    for invoice_id in ids:
        assert api.ok("POST", f"/invoices/{invoice_id}/approve", json={})["workflow_status"] == "approved"
    api.ok("POST", "/invoices/export", json={"invoice_ids": ids, "target": "csv"})
    for invoice_id in ids:
        api.ok("POST", f"/invoices/{invoice_id}/post", json={})
    journal = api.ok("GET", "/invoices/journal?job_id=job-tax")
    accounts = {a["account"]: (Decimal(a["debit"]), Decimal(a["credit"])) for a in journal["by_account"]}
    assert accounts["Accounts Receivable"] == (Decimal("314.50"), 0)
    assert accounts["Sales Tax Payable"] == (0, Decimal("14.50"))
    assert (Decimal(journal["total"]), Decimal(journal["taxable"])) == (Decimal("314.50"), Decimal("200.00"))
