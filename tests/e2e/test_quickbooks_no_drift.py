"""Nothing drifts between us and QuickBooks (issue 15 item 5): a new contact is in QuickBooks at
once; edits made while disconnected are marked dirty in their own write and pushed on reconnect;
a conflict keeps ours for the fields we own, theirs for the rest, and says so."""

from __future__ import annotations

from typing import Any

from fieldbill.store import qbo_links
from tests.conftest import Client, wait_for
from tests.e2e.test_quickbooks_connection import oauth_again
from tests.integration.test_qbo_sync import load_invoice, seed_invoice, seed_product, send


def customer_named(stack: Any, realm: str, name: str) -> dict[str, Any] | None:
    return next((c for c in stack.emulator.entities(realm, "Customer") if c["DisplayName"] == name), None)


def test_a_new_contact_is_in_quickbooks_at_once(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    contact = api.ok("POST", "/contacts", json={"name": "Instant Pools", "email": "i@example.com"})
    assert contact["qbo_dirty_since"]  # marked in the create's own write
    found = wait_for(lambda: customer_named(stack, realm, "Instant Pools"), timeout=30, what="customer")
    assert found["PrimaryEmailAddr"]["Address"] == "i@example.com"
    # and once QuickBooks took it, the mark is gone and the contact is linked
    linked = wait_for(
        lambda: (
            (c := api.ok("GET", f"/contacts/{contact['id']}", expect=200))["qbo_dirty_since"] is None and c
        ),
        timeout=30,
        what="dirty mark cleared",
    )
    assert linked["qbo_id"] == found["Id"]


def test_edits_made_while_disconnected_reach_quickbooks_on_reconnect(stack, connected_client: Client):
    api = connected_client
    tenant = api.tenant_id
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a contact and a synced invoice of it
    contact = api.ok("POST", "/contacts", json={"id": "c1", "name": "Drift Pools"})
    wait_for(lambda: customer_named(stack, realm, "Drift Pools"), timeout=30, what="customer")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    wait_for(lambda: load_invoice(tenant, invoice.id).sync_status == "synced", timeout=30, what="synced")
    stack.aws.drain(ignore=("DLQ", "Inbound", "Jobs"))
    # When the company is disconnected and both are edited here
    api.ok("POST", "/quickbooks/disconnect")
    renamed = api.ok("PATCH", f"/contacts/{contact['id']}", json={"name": "Drift Pools Renamed"}, expect=200)
    assert renamed["qbo_dirty_since"]
    edited = api.ok(
        "PATCH", f"/invoices/{invoice.id}", json={"customer_message": "edited while disconnected"}, expect=200
    )
    assert edited["dirty"] is True
    assert ("Customer", "c1") in qbo_links.dirty_records(tenant)
    # Then after reconnecting, QuickBooks holds both edits
    answer = oauth_again(api, realm)
    assert answer["reconnected"] is True and answer["pushed_records"] >= 1
    wait_for(lambda: customer_named(stack, realm, "Drift Pools Renamed"), timeout=60, what="renamed customer")

    def memo() -> bool:
        (qbo,) = [
            i
            for i in stack.emulator.entities(realm, "Invoice")
            if i["Id"] == load_invoice(tenant, invoice.id).qbo_id
        ]
        return (qbo.get("CustomerMemo") or {}).get("value") == "edited while disconnected"

    wait_for(memo, timeout=60, what="invoice edit in QuickBooks")
    after = wait_for(
        lambda: (r := load_invoice(tenant, invoice.id)).sync_status == "synced" and not r.dirty and r,
        timeout=30,
        what="invoice synced, not dirty",
    )
    assert after.version == 2
    assert api.ok("GET", f"/contacts/{contact['id']}", expect=200)["qbo_dirty_since"] is None
