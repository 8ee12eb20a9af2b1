"""Issue 14 over HTTP on the whole local stack: a 1,300.00 job billed deposit -> progress ->
complete (nets the deposit) -> correction; each policy refused (409) where the job's status
forbids it; approve, export, post; a posted invoice refuses edits; the journal shows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.conftest import Client, connect_quickbooks, wait_for


def _job(api: Client, job_id: str = "job-1", customer: str = "c-press") -> dict[str, Any]:
    api.ok("POST", "/contacts", json={"id": customer, "name": f"Printing {customer}"})
    api.ok("POST", "/contacts", json={"id": "c-other", "name": "Other customer"})
    api.ok("POST", "/products", json={"id": "p-brochure", "name": "Brochure"})
    api.ok(
        "POST",
        "/products",
        json={"id": "p-alter", "name": "Author alteration", "default_unit_price": "50.00"},
    )
    api.ok("POST", "/products", json={"id": "p-plates", "name": "Plates", "default_unit_price": "99.00"})
    return api.ok(
        "POST",
        "/jobs",
        json={
            "id": job_id,
            "name": "Spring brochure",
            "customer_id": customer,
            "billing_type": "order_items",
            "invoiceables": [
                {"id": "brochures", "kind": "order_item", "product_id": "p-brochure", "quantity": "1000",
                 "unit_price": "1.00", "description": "Brochures"},
                {"id": "posters", "kind": "order_item", "product_id": "p-brochure", "quantity": "10",
                 "unit_price": "25.00", "description": "Posters"},
                {"id": "alteration", "kind": "charge", "product_id": "p-alter", "quantity": "1",
                 "charge_kind": "customer_alteration", "category": "Alterations"},
                {"id": "plates", "kind": "charge", "product_id": "p-plates", "quantity": "1",
                 "charge_kind": "non_billable", "category": "Prepress"},
            ],
        },
        expect=201,
    )  # fmt: skip


def _invoice(api: Client, job_id: str, **body: Any) -> dict[str, Any]:
    return api.ok("POST", f"/jobs/{job_id}/invoices", json=body, expect=201)


def test_a_job_billed_over_its_life_adds_up_and_reaches_quickbooks(stack: Any, client: Client):
    api = client
    realm = connect_quickbooks(stack, api)
    job = _job(api)
    # Given a 1,300.00 job (order items 1,250.00 + a customer alteration 50.00; plates non-billable)
    assert (job["status"], job["suggested_price"], job["remaining"]) == ("open", "1300.00", "1300.00")

    # Complete and corrections are refused while the job is open: 409 naming status and policy
    for policy in ("complete", "complete_grouped", "correction", "correction_grouped"):
        refused = api.post("/jobs/job-1/invoices", json={"policy": policy})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert (error["machine"], error["current"], error["requested"]) == (
            "job_invoice_policy",
            "open",
            policy,
        )

    deposit = _invoice(api, "job-1", policy="deposit", amount="400.00")
    assert (deposit["total"], deposit["invoice_type"], deposit["policy"]) == ("400.00", "partial", "deposit")
    progress = _invoice(api, "job-1", policy="progress_itemized", items={"brochures": "500.00"})
    assert progress["total"] == "500.00"
    job = api.ok("GET", "/jobs/job-1")
    assert (job["invoiced"], job["open_deposits"], job["remaining"]) == ("500.00", "400.00", "400.00")
    # a charge may not be added to a closed job; an invoiced invoiceable is not editable
    api.ok("POST", "/jobs/job-1/close", json={})
    charge = {
        "id": "x",
        "kind": "charge",
        "product_id": "p-alter",
        "quantity": "1",
        "charge_kind": "billable",
    }
    late = api.post("/jobs/job-1/invoiceables", json=charge)
    assert late.status_code == 409
    assert api.delete("/jobs/job-1").status_code == 409  # it has invoices

    complete = _invoice(api, "job-1", policy="complete")
    assert complete["total"] == "400.00"  # 1,300 - 500 - 400 deposit netted
    assert complete["lines"][-1]["amount"] == "-400.00"
    job = api.ok("GET", "/jobs/job-1")
    assert (job["status"], job["remaining"], job["open_deposits"]) == ("billed", "0.00", "0.00")
    for policy in ("deposit", "progress_summary", "complete"):
        refused = api.post("/jobs/job-1/invoices", json={"policy": policy, "amount": "1.00"})
        assert refused.status_code == 409 and refused.json()["error"]["current"] == "billed", refused.text

    # split billing: the correction goes to another customer
    correction = _invoice(
        api, "job-1", policy="correction", items={"posters": "-50.00"}, customer_id="c-other"
    )
    assert (correction["total"], correction["contact_id"]) == ("-50.00", "c-other")
    totals = sum(Decimal(i["total"]) for i in (deposit, progress, complete, correction))
    assert totals == Decimal(api.ok("GET", "/jobs/job-1")["suggested_price"]) == Decimal("1250.00")

    # The positive invoices reach QuickBooks once each (the usual sync).
    def synced() -> list[dict[str, Any]] | None:
        found = api.ok("GET", "/invoices?job_id=job-1&limit=50")["items"]
        positive = [i for i in found if Decimal(i["total"]) >= 0]
        return found if all(i["sync_status"] == "synced" for i in positive) else None

    found = wait_for(synced, timeout=90, what="job invoices synced")
    assert len(found) == 4
    # c-other has no invoice of the job: its correction is a standalone credit memo (its credit)
    standalone = wait_for(
        lambda: stack.emulator.entities(realm, "CreditMemo") or None, timeout=90, what="standalone credit"
    )
    assert [Decimal(str(m["Balance"])) for m in standalone] == [Decimal("50")]  # nothing applies it
    in_qbo = [e for e in stack.emulator.entities(realm, "Invoice")]
    assert sorted(Decimal(str(e["TotalAmt"])) for e in in_qbo) == [
        Decimal("400"),
        Decimal("400"),
        Decimal("500"),
    ]
    numbers = sorted(int(i["number"]) for i in found)
    assert numbers == [1001, 1002, 1003, 1004]  # gapless per tenant (its invoice sequence)

    # Invoice find: by job and type
    partial = api.ok("GET", "/invoices?job_id=job-1&invoice_type=partial")["items"]
    assert sorted(i["id"] for i in partial) == sorted([deposit["id"], progress["id"]])

    # Without accounting integration: invoiced -> posted; approve is refused (409)
    assert api.post(f"/invoices/{complete['id']}/approve", json={}).status_code == 409
    posted = api.ok("POST", f"/invoices/{complete['id']}/post", json={})
    assert posted["workflow_status"] == "posted"
    edit = api.patch(f"/invoices/{complete['id']}", json={"memo": "changed"})
    assert edit.status_code == 409 and edit.json()["error"]["current"] == "posted", edit.text
    assert api.post(f"/invoices/{complete['id']}/void", json={}).status_code == 409
    assert api.delete(f"/invoices/{complete['id']}").status_code == 409

    journal = api.ok("GET", "/invoices/journal?job_id=job-1")
    assert (journal["count"], journal["total"]) == (1, "400.00")
    accounts = {a["account"]: (a["debit"], a["credit"]) for a in journal["by_account"]}
    assert accounts["Accounts Receivable"] == ("400.00", "0")
    assert accounts["Customer Deposits"] == ("400.00", "0")  # the deposit netted
    assert accounts["Sales"] == ("0", "800.00")

    # The -50.00 correction is a credit memo in QuickBooks: its invoice (the Complete one, of the
    # same customer) is in QuickBooks now, so posting the correction credits it there, once.
    assert correction["credit_target_id"] is None  # standalone: it credits no invoice
    refund = _invoice(api, "job-1", policy="correction", items={"brochures": "-50.00"})
    posted_credit = api.ok("POST", f"/invoices/{refund['id']}/post", json={})
    assert posted_credit["credit_target_id"] == complete["id"]

    def credited() -> list[dict[str, Any]] | None:
        memos = stack.emulator.entities(realm, "CreditMemo")
        return memos if len(memos) == 2 else None

    memos = wait_for(credited, timeout=90, what="credit memo in QuickBooks")
    assert [Decimal(str(m["TotalAmt"])) for m in memos] == [Decimal("50"), Decimal("50")]
    again = api.post(f"/invoices/{refund['id']}/post", json={})
    assert again.status_code == 409  # already posted; nothing credited twice
    target = api.ok("GET", f"/invoices/{complete['id']}")
    assert (target["amount_credited"], target["balance"]) == ("50.00", "350.00")
    # (wt-life) a job correction's credit memo is not removed by hand: 409 naming the machine
    removal = api.delete(f"/invoices/{complete['id']}/credit-memos/{target['credit_memos'][0]['id']}")
    assert removal.status_code == 409 and removal.json()["error"]["machine"] == "credit_memo", removal.text
    # split billing: the standalone credit memo of c-other's correction is posted, credited once
    assert api.ok("POST", f"/invoices/{correction['id']}/post", json={})["workflow_status"] == "posted"
    journal = api.ok("GET", "/invoices/journal?job_id=job-1&invoice_type=correction")
    assert (journal["count"], journal["total"]) == (2, "-100.00")
    assert len(stack.emulator.entities(realm, "CreditMemo")) == 2

    # Print the job's invoices as one PDF (the print-many operation)
    printed = api.ok("POST", "/invoices/print", json={"invoice_ids": [i["id"] for i in found]})
    assert printed["invoice_count"] == 4
    job = api.ok("GET", "/jobs/job-1")
    assert (job["suggested_price"], job["remaining"]) == ("1200.00", "0.00")


def test_accounting_integration_approve_export_post(client: Client):
    api = client
    api.ok("PUT", "/jobs/settings", json={"accounting_integration": True, "numbering": "automatic_fixed",
                                          "backdating_days": 5})  # fmt: skip
    _job(api, "job-2")
    backdated = api.post(
        "/jobs/job-2/invoices", json={"policy": "deposit", "amount": "10", "issue_date": "2020-01-01"}
    )
    assert backdated.status_code == 422 and backdated.json()["error"]["fields"][0]["field"] == "issue_date"
    numbered = api.post("/jobs/job-2/invoices", json={"policy": "deposit", "amount": "10", "number": "X1"})
    assert numbered.status_code == 422  # automatic and fixed: no number may be given
    deposit = _invoice(api, "job-2", policy="deposit", amount="100.00")
    assert (deposit["number"], deposit["workflow_status"]) == ("1001", "invoiced")
    # with integration, posting needs approval and export first
    refused = api.post(f"/invoices/{deposit['id']}/post", json={})
    assert refused.status_code == 409 and refused.json()["error"]["machine"] == "job_invoice_workflow"
    unbalanced = api.post(
        f"/invoices/{deposit['id']}/approve",
        json={"distribution": [{"account": "Accounts Receivable", "debit": "100.00"},
                               {"account": "Customer Deposits", "credit": "90.00"}]},
    )  # fmt: skip
    assert (
        unbalanced.status_code == 422 and unbalanced.json()["error"]["fields"][0]["field"] == "distribution"
    )
    assert api.ok("GET", f"/invoices/{deposit['id']}")["workflow_status"] == "invoiced"  # nothing written
    approved = api.ok("POST", f"/invoices/{deposit['id']}/approve", json={})
    assert approved["workflow_status"] == "approved"
    exported = api.ok("POST", "/invoices/export", json={"invoice_ids": [deposit["id"]], "target": "iif"})
    assert exported["invoices"][0]["workflow_status"] == "exported"
    iif = requests.get(exported["url"], timeout=30)
    assert iif.status_code == 200 and "INVOICE" in iif.text and "Customer Deposits" in iif.text
    posted = api.ok("POST", f"/invoices/{deposit['id']}/post", json={})
    assert posted["workflow_status"] == "posted"
    csv = api.ok(
        "POST", "/invoices/export", json={"invoice_ids": [deposit["id"]], "target": "csv"}, expect=409
    )
    assert csv["error"]["current"] == "posted"


@pytest.mark.parametrize("numbering", ["none", "automatic"])
def test_numbering_modes(client: Client, numbering: str):
    api = client
    api.ok("PUT", "/jobs/settings", json={"numbering": numbering})
    _job(api, "job-3")
    first = _invoice(api, "job-3", policy="deposit", amount="10.00")
    if numbering == "none":
        assert first.get("number") is None
        return
    assert first["number"] == "1001"
    own = _invoice(api, "job-3", policy="deposit", amount="10.00", number="PO-77")
    assert own["number"] == "PO-77"
    taken = api.post("/jobs/job-3/invoices", json={"policy": "deposit", "amount": "1.00", "number": "PO-77"})
    assert taken.status_code == 409
    # (another amount: the same request again would be answered with the first invoice)
    assert _invoice(api, "job-3", policy="deposit", amount="12.00")["number"] == "1002"  # no gap


FORBIDDEN = {
    "open": ["complete", "complete_grouped", "correction", "correction_grouped"],
    "closed": ["correction", "correction_grouped"],
    "billed": [
        "deposit",
        "progress_summary",
        "progress_itemized",
        "progress_itemized_grouped",
        "complete",
        "complete_grouped",
    ],
}


def _small_job(job_id: str) -> dict[str, Any]:
    item = {
        "id": "a",
        "kind": "order_item",
        "product_id": "p-brochure",
        "quantity": "1",
        "unit_price": "10.00",
    }
    return {"id": job_id, "customer_id": "c-press", "billing_type": "order_items", "invoiceables": [item]}


def test_every_policy_is_refused_over_the_api_where_the_seed_forbids_it(client: Client):
    api = client
    _job(api, "job-open")
    api.ok("POST", "/jobs", json=_small_job("job-closed"))
    api.ok("POST", "/jobs/job-closed/close", json={})
    api.ok("POST", "/jobs", json=_small_job("job-billed"))
    api.ok("POST", "/jobs/job-billed/close", json={})
    _invoice(api, "job-billed", policy="complete")
    for status, policies in FORBIDDEN.items():
        for policy in policies:
            refused = api.post(f"/jobs/job-{status}/invoices", json={"policy": policy, "amount": "1.00"})
            assert refused.status_code == 409, (status, policy, refused.text)
            error = refused.json()["error"]
            assert (error["machine"], error["current"], error["requested"]) == (
                "job_invoice_policy",
                status,
                policy,
            )
    # and nothing was written
    assert [j["invoice_count"] for j in (api.ok("GET", f"/jobs/job-{s}") for s in FORBIDDEN)] == [0, 0, 1]
    billed = api.post("/jobs/job-billed/reopen", json={})
    assert billed.status_code == 409 and billed.json()["error"]["machine"] == "job"


def test_a_job_without_invoices_is_deleted_and_keeps_its_history(client: Client):
    api = client
    _job(api, "job-gone")
    api.ok("POST", "/jobs/job-gone/close", json={"reason": "printed"})
    assert api.ok("DELETE", "/jobs/job-gone") == {"deleted": True, "id": "job-gone"}
    assert api.get("/jobs/job-gone").status_code == 404
    trail = api.ok("GET", "/history/job/job-gone")
    assert trail["deleted"] is True
    assert [(h["from"], h["to"]) for h in trail["history"]][-2:] == [
        ("open", "closed"),
        ("closed", "deleted"),
    ]


def test_with_accounting_integration_quickbooks_gets_the_invoice_at_export(stack: Any, client: Client):
    api = client
    realm = connect_quickbooks(stack, api)
    api.ok("PUT", "/jobs/settings", json={"accounting_integration": True})
    _job(api, "job-4")
    deposit = _invoice(api, "job-4", policy="deposit", amount="250.00")
    # Given an invoice that is only invoiced: QuickBooks does not have it yet
    assert deposit["sync_status"] == "not_synced"
    refused = api.post("/invoices/export", json={"invoice_ids": [deposit["id"]], "target": "quickbooks"})
    assert refused.status_code == 409  # not approved
    api.ok("POST", f"/invoices/{deposit['id']}/approve", json={})
    exported = api.ok(
        "POST", "/invoices/export", json={"invoice_ids": [deposit["id"]], "target": "quickbooks"}
    )
    assert exported["invoices"][0]["export_ref"] == "quickbooks"

    def synced() -> dict[str, Any] | None:
        found = api.ok("GET", f"/invoices/{deposit['id']}")
        return found if found["sync_status"] == "synced" else None

    wait_for(synced, timeout=90, what="exported invoice in QuickBooks")
    assert [Decimal(str(e["TotalAmt"])) for e in stack.emulator.entities(realm, "Invoice")] == [
        Decimal("250")
    ]
    assert api.ok("POST", f"/invoices/{deposit['id']}/post", json={})["workflow_status"] == "posted"


# ---- a double-click (issue 14, what was left: item 4)
def test_an_identical_repeat_is_answered_with_the_first_invoice_and_a_different_one_is_new(client: Client):
    api = client
    _job(api, "job-5")
    # Given a deposit saved once (no Idempotency-Key: a double-click sends none)
    first = _invoice(api, "job-5", policy="deposit", amount="100.00")
    # When the very same request comes again
    again = _invoice(api, "job-5", policy="deposit", amount="100.00")
    # Then it is answered with the first invoice, and nothing more is billed
    assert again["id"] == first["id"] and again["number"] == first["number"]
    job = api.ok("GET", "/jobs/job-5")
    assert (job["invoice_count"], job["deposits"]) == (1, "100.00")
    # A different request is a second invoice
    other = _invoice(api, "job-5", policy="deposit", amount="150.00")
    assert other["id"] != first["id"] and other["number"] == "1002"
    # and the same content again on purpose is told apart by the client's own id
    mine = _invoice(api, "job-5", policy="deposit", amount="100.00", id="second-100")
    assert mine["id"] not in (first["id"], other["id"])
    assert _invoice(api, "job-5", policy="deposit", amount="100.00", id="second-100")["id"] == mine["id"]
    job = api.ok("GET", "/jobs/job-5")
    assert (job["invoice_count"], job["deposits"]) == (3, "350.00")
    assert len(api.ok("GET", "/jobs/job-5/invoices")["invoices"]) == 3
