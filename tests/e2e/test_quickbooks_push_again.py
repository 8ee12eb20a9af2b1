"""Reconciliation repair "push again" (issue 15): an invoice of ours deleted in QuickBooks is made
there again as a new invoice, linked, with its number, only when a person asks, and only once."""

from __future__ import annotations

from decimal import Decimal

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for
from tests.e2e.test_quickbooks_inbound import synced_invoice
from tests.e2e.test_quickbooks_reconcile import kinds, reconcile


def test_an_invoice_deleted_in_quickbooks_is_pushed_again_on_request_with_its_number(
    stack, connected_client: Client
):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a company that numbers its own invoices, and one of ours synced with our number
    emu.set_preferences(realm, custom_txn_numbers=True)
    tokens.save_settings(api.tenant_id, {"custom_txn_numbers": True, "automated_tax": False}, "test")
    invoice = synced_invoice(api, "c-gone", "Gone Pools")
    old_qbo_id = invoice["qbo_id"]
    assert invoice["number"] and emu.entity(realm, "Invoice", old_qbo_id)["DocNumber"] == invoice["number"]
    stack.aws.drain()
    # When someone deletes it in QuickBooks
    emu.user_delete(realm, "Invoice", old_qbo_id)
    stack.aws.drain()
    # Then nothing is pushed by itself: the report lists it missing, with the push_again repair
    assert api.ok("GET", f"/invoices/{invoice['id']}")["qbo_id"] == old_qbo_id
    report = reconcile(api)
    missing = next(d for d in report["differences"] if d["kind"] == "missing")
    assert missing["repair"] == {"kind": "push_again", "invoice_id": invoice["id"], "qbo_id": old_qbo_id}
    # A push_again without the deleted invoice's id is refused naming qbo_id, changing nothing
    refused = api.post("/quickbooks/repairs", json={"kind": "push_again", "invoice_id": invoice["id"]})
    assert refused.status_code == 422 and "qbo_id" in refused.text
    assert api.ok("GET", f"/invoices/{invoice['id']}")["qbo_id"] == old_qbo_id
    # When the repair is clicked (twice: a double click, a retry)
    first = api.ok("POST", "/quickbooks/repairs", json=missing["repair"], expect=202)
    again = api.ok("POST", "/quickbooks/repairs", json=missing["repair"], expect=202)
    assert first["status"] == "queued" and again["status"] in ("queued", "done")
    # Then a new QuickBooks invoice is made and linked, with our number, once
    shown = wait_for(
        lambda: (
            (i := api.ok("GET", f"/invoices/{invoice['id']}"))["sync_status"] == "synced"
            and i["qbo_id"]
            and i
        ),
        timeout=30,
        what="pushed again",
    )
    assert shown["qbo_id"] != old_qbo_id and shown["number"] == invoice["number"]
    new = emu.entity(realm, "Invoice", shown["qbo_id"])
    assert new["DocNumber"] == invoice["number"] and Decimal(str(new["TotalAmt"])) == Decimal("120.00")
    stack.aws.drain()
    marker = f"fieldbill:invoice:{api.tenant_id}:{invoice['id']}"
    assert [r["Id"] for r in emu.entities(realm, "Invoice") if marker in str(r.get("PrivateNote"))] == [
        shown["qbo_id"]
    ]
    # A third click afterwards changes nothing; the reconciliation finds nothing missing
    done = api.ok("POST", "/quickbooks/repairs", json=missing["repair"], expect=202)
    assert (done["status"], done["new_qbo_id"]) == ("done", shown["qbo_id"])
    assert api.ok("GET", f"/invoices/{invoice['id']}")["qbo_id"] == shown["qbo_id"]
    assert "missing" not in kinds(reconcile(api), invoice["id"])
    history = api.ok("GET", f"/history/invoice/{invoice['id']}")["history"]
    assert any("pushed again" in (e.get("reason") or "") for e in history)


def test_a_push_again_of_an_invoice_quickbooks_still_has_links_it_again_and_makes_no_second(
    stack, connected_client: Client
):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    tokens.save_settings(api.tenant_id, {"automated_tax": False}, "test")
    invoice = synced_invoice(api, "c-there", "There Pools")
    stack.aws.drain()
    before = emu.count(realm, "Invoice")
    # When push_again is asked for an invoice QuickBooks did not delete (an old report)
    api.ok(
        "POST",
        "/quickbooks/repairs",
        json={"kind": "push_again", "invoice_id": invoice["id"], "qbo_id": invoice["qbo_id"]},
        expect=202,
    )
    # Then the sync finds QuickBooks' copy and links it again: no second invoice there
    shown = wait_for(
        lambda: (
            (i := api.ok("GET", f"/invoices/{invoice['id']}"))["sync_status"] == "synced"
            and i["qbo_id"]
            and i
        ),
        timeout=30,
        what="linked again",
    )
    assert shown["qbo_id"] == invoice["qbo_id"]
    assert emu.count(realm, "Invoice") == before
    # A push_again naming an invoice it is not linked to is refused naming qbo_id
    wrong = api.post(
        "/quickbooks/repairs", json={"kind": "push_again", "invoice_id": invoice["id"], "qbo_id": "999999"}
    )
    assert wrong.status_code == 422 and "qbo_id" in wrong.text


def test_an_invoice_made_in_quickbooks_only_is_reported_as_extra_with_no_repair(
    stack, connected_client: Client
):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    tokens.save_settings(api.tenant_id, {"automated_tax": False}, "test")
    invoice = synced_invoice(api, "c-extra", "Extra Pools")
    stack.aws.drain()
    # When someone makes an invoice for the same customer in QuickBooks itself
    theirs = emu.user_create(
        realm,
        "Invoice",
        {
            "CustomerRef": {"value": emu.entity(realm, "Invoice", invoice["qbo_id"])["CustomerRef"]["value"]},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "55.00", "SalesItemLineDetail": {}}],
        },
    )
    stack.aws.drain()
    # Then the report names it (its id, number and total), says where it comes from, offers no repair
    extra = [d for d in reconcile(api)["differences"] if d["kind"] == "extra"]
    assert [(d["qbo_id"], d["quickbooks"], d["repair"]) for d in extra] == [(theirs["Id"], "55.00", None)]
    assert extra[0]["doc_number"] == theirs.get("DocNumber") and "made in QuickBooks" in extra[0]["detail"]
