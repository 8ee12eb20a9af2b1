"""Issue 14, what was left (items 1 and 2), over HTTP on the whole local stack: a negative
correction's sync status and badge follow the credit memo it becomes in QuickBooks (pending ->
synced, or error with QuickBooks' reason), on GET /invoices/{id} and in the list; a correction for
a customer with no invoice of the job to credit is a standalone credit memo (unapplied credit in
QuickBooks, no applying Payment) that lowers the customer's balance there and the contact's
account balance here by the same amount."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.conftest import Client, connect_quickbooks, refuse_next, wait_for
from tests.e2e.test_job_invoicing import _invoice, _job


def _billed(api: Client, job_id: str) -> dict[str, Any]:
    """Close and complete the job; its Complete invoice once QuickBooks holds it (open there)."""
    api.ok("POST", f"/jobs/{job_id}/close", json={})
    complete = _invoice(api, job_id, policy="complete")

    def synced() -> dict[str, Any] | None:
        found = api.ok("GET", f"/invoices/{complete['id']}")
        return found if found["sync_status"] == "synced" else None

    return wait_for(synced, timeout=90, what="complete invoice in QuickBooks")


def _badge(api: Client, invoice_id: str, job_id: str, badge: str) -> dict[str, Any] | None:
    """The correction when both GET /invoices/{id} and the list show `badge`."""
    one = api.ok("GET", f"/invoices/{invoice_id}")
    listed = api.ok("GET", f"/invoices?job_id={job_id}&invoice_type=correction")["items"]
    row = next(i for i in listed if i["id"] == invoice_id)
    return one if one["badge"] == badge and row["badge"] == badge else None


def test_a_negative_correction_is_synced_when_its_credit_memo_is(stack: Any, client: Client):
    api = client
    realm = connect_quickbooks(stack, api)
    _job(api, "job-c1")
    complete = _billed(api, "job-c1")
    # When a -50.00 correction is saved (its invoice is in QuickBooks: credited at once)
    correction = _invoice(api, "job-c1", policy="correction", items={"brochures": "-50.00"})
    assert correction["credit_target_id"] == complete["id"]
    # Then it is on its way to QuickBooks (not "not synced": a credit memo is queued for it)
    assert correction["sync_status"] in ("pending", "synced"), correction["sync_status"]

    # And once QuickBooks holds the credit memo, the correction reads QBO, here and in the list
    synced = wait_for(lambda: _badge(api, correction["id"], "job-c1", "QBO"), 90, what="correction QBO")
    assert synced["sync_status"] == "synced"
    memos = stack.emulator.entities(realm, "CreditMemo")
    assert [Decimal(str(m["TotalAmt"])) for m in memos] == [Decimal("50")]
    target = api.ok("GET", f"/invoices/{complete['id']}")
    (memo,) = target["credit_memos"]
    assert memo["id"] == f"job-correction-{correction['id']}" and memo["qbo_id"] == memos[0]["Id"]


def test_a_refused_credit_memo_shows_quickbooks_reason_on_the_correction(stack: Any, client: Client):
    api = client
    realm = connect_quickbooks(stack, api)
    _job(api, "job-c2")
    _billed(api, "job-c2")
    # Given QuickBooks refuses the next credit memo (a closed period)
    refuse_next(stack, realm, r"/creditmemo$")
    # When a -30.00 correction is saved
    correction = _invoice(api, "job-c2", policy="correction", items={"posters": "-30.00"})
    # Then its badge turns Error with QuickBooks' reason, on the invoice and in the list
    refused = wait_for(lambda: _badge(api, correction["id"], "job-c2", "Error"), 90, what="Error")
    assert refused["sync_status"] == "error"
    assert refused["badge_detail"]["code"] == "6000"
    assert "period is closed" in json.dumps(refused["badge_detail"])
    assert stack.emulator.entities(realm, "CreditMemo") == []

    # When a person asks to sync it again (the period is open now), its credit memo goes again:
    # a negative correction never goes to QuickBooks as an invoice
    api.ok("POST", f"/invoices/{correction['id']}/sync", json={})
    synced = wait_for(lambda: _badge(api, correction["id"], "job-c2", "QBO"), 90, what="QBO after retry")
    assert synced["badge_detail"] is None
    assert [Decimal(str(m["TotalAmt"])) for m in stack.emulator.entities(realm, "CreditMemo")] == [
        Decimal("30")
    ]
    assert sorted(Decimal(str(i["TotalAmt"])) for i in stack.emulator.entities(realm, "Invoice")) == [
        Decimal("1300")
    ]


def test_a_correction_for_a_customer_without_an_invoice_is_a_standalone_credit_memo(
    stack: Any, client: Client
):
    api = client
    realm = connect_quickbooks(stack, api)
    _job(api, "job-c3")
    _billed(api, "job-c3")
    # When a -50.00 correction goes to a customer with no invoice of the job (split billing)
    correction = _invoice(
        api, "job-c3", policy="correction", items={"posters": "-50.00"}, customer_id="c-other"
    )
    # Then it is saved, credits no invoice, and lowers the contact's account balance at once
    assert correction["credit_target_id"] is None
    (memo,) = correction["credit_memos"]
    assert (memo["id"], memo["amount"], memo["applied"], memo["unapplied"]) == (
        f"job-correction-{correction['id']}",
        "50.00",
        "0.00",
        "50.00",
    )
    assert api.ok("GET", f"/invoices/{correction['id']}")["account_balance"] == "-50.00"  # maintained
    assert api.ok("GET", "/contacts/c-other/balance")["account_balance"] == "-50.00"

    # And QuickBooks gets a CreditMemo for that customer that no Payment applies (its credit)
    synced = wait_for(lambda: _badge(api, correction["id"], "job-c3", "QBO"), 90, what="standalone QBO")
    (qbo_memo,) = stack.emulator.entities(realm, "CreditMemo")
    assert synced["credit_memos"][0]["qbo_id"] == qbo_memo["Id"]
    assert Decimal(str(qbo_memo["TotalAmt"])) == Decimal(str(qbo_memo["Balance"])) == Decimal("50")
    applying = [
        p
        for p in stack.emulator.entities(realm, "Payment")
        for line in p.get("Line", [])
        for link in line.get("LinkedTxn", [])
        if link.get("TxnType") == "CreditMemo"
    ]
    assert applying == []
    customer = next(
        c for c in stack.emulator.entities(realm, "Customer") if c["Id"] == qbo_memo["CustomerRef"]["value"]
    )
    assert customer["DisplayName"] == "Other customer"
    assert Decimal(str(customer["Balance"])) == Decimal("-50")  # lowered there by the same amount
    # Posting it credits nothing twice
    posted = api.ok("POST", f"/invoices/{correction['id']}/post", json={})
    assert posted["workflow_status"] == "posted" and len(posted["credit_memos"]) == 1
    assert len(stack.emulator.entities(realm, "CreditMemo")) == 1
    assert api.ok("GET", f"/invoices/{correction['id']}")["account_balance"] == "-50.00"
