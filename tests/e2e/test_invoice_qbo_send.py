"""Issue 13: a tenant that chose QuickBooks' own send has QuickBooks email its invoices (through
the sync queue, once QuickBooks holds the current version); the default stays our own email."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import Client, wait_for
from tests.e2e.test_invoice_lifecycle import _run, _work


def _choose(api: Client, send_via: str) -> dict[str, Any]:
    current = api.ok("GET", "/quickbooks/connection")["settings"]
    body = {
        k: current[k]
        for k in ("default_income_account", "default_expense_account", "custom_txn_numbers", "automated_tax")
    }
    return dict(api.ok("PUT", "/quickbooks/settings", json={**body, "send_via": send_via}))


def test_quickbooks_sends_the_invoice_when_the_tenant_chose_it(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    assert api.ok("GET", "/quickbooks/connection")["settings"].get("send_via", "email") == "email"
    assert _choose(api, "quickbooks")["settings"]["send_via"] == "quickbooks"
    _work(api, entries=1)
    (invoice,) = _run(api)
    address = f"ap-{api.tenant_id}@example.com"
    # When it is sent
    sent = api.ok("POST", f"/invoices/{invoice['id']}/send", json={"to": address})
    assert sent["recipient"] == address and sent["invoice"]["sent_via"] == "quickbooks"
    assert sent["invoice"]["qbo_send"]["status"] == "queued"

    # Then QuickBooks emailed it (its send endpoint), and ours records it sent
    def done() -> dict[str, Any] | None:
        ours = api.ok("GET", f"/invoices/{invoice['id']}")
        return ours if (ours.get("qbo_send") or {}).get("status") == "sent" else None

    ours = wait_for(done, timeout=30, what="QuickBooks sent it")
    assert ours["delivery_status"] == "sent" and ours["qbo_send"]["to"] == address
    theirs = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert theirs["EmailStatus"] == "EmailSent" and theirs["DeliveryInfo"]["DeliveryType"] == "Email"
    assert [(s["Id"], s["to"]) for s in stack.emulator.store.companies[realm].sent] == [
        (invoice["qbo_id"], address)
    ]
    # And our own email did not send it
    listed = requests.get(stack.outbox_url, params={"to": address}, timeout=30).json()
    assert listed["items"] == []
    # A bad address is refused before anything is queued
    bad = api.post(f"/invoices/{invoice['id']}/send", json={"to": "nope"})
    assert bad.status_code in (400, 422), bad.text


def test_an_edit_after_quickbooks_sent_the_invoice_is_not_refused_as_stale(stack, connected_client: Client):
    """QuickBooks' send is an update there (SyncToken + 1): ours keeps the new token, so the next
    sparse update of the invoice carries the current one instead of being refused as stale."""
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _choose(api, "quickbooks")
    _work(api, entries=1)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    api.ok("POST", f"{path}/send", json={"to": f"ap-{api.tenant_id}@example.com"})
    wait_for(
        lambda: (api.ok("GET", path).get("qbo_send") or {}).get("status") == "sent",
        timeout=30,
        what="QuickBooks sent it",
    )
    theirs = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    # When the sent (open) invoice is edited
    ours = api.ok("GET", path)
    edited = api.ok(
        "PATCH", path, json={"version": ours["version"], "customer_message": "Paid by card, thanks"}
    )

    # Then QuickBooks takes the sparse update (no stale-token refusal) and ours is synced at it
    def synced() -> dict[str, Any] | None:
        now = api.ok("GET", path)
        assert now["sync_status"] != "error", now.get("badge_detail")
        return (
            now if now["sync_status"] == "synced" and now["qbo_synced_version"] == edited["version"] else None
        )

    wait_for(synced, timeout=30, what="the edit reached QuickBooks")
    after = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert after["CustomerMemo"]["value"] == "Paid by card, thanks"
    assert int(after["SyncToken"]) == int(theirs["SyncToken"]) + 1
