"""The /__admin HTTP API: companies, state, counters, edits "made in QuickBooks", reset."""

from __future__ import annotations

from decimal import Decimal

import requests

from tests.emulator.conftest import Qbo, assert_fault


def admin(emu, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{emu.url}/__admin/{path}", json=body, timeout=5)


def test_company_state_and_calls(emu):
    realm = admin(emu, "POST", "companies", {"name": "Admin Pools"}).json()["realmId"]
    state = admin(emu, "GET", f"companies/{realm}/state").json()
    assert state["CompanyName"] == "Admin Pools"
    assert {a["Name"] for a in state["entities"]["Account"]} >= {"Services", "Cost of Goods Sold"}
    assert state["entities"]["Customer"] == []
    qbo = Qbo(
        emu,
        realm,
        admin(emu, "POST", f"companies/{realm}/connect", {"client_id": "test-client"}).json()["access_token"],
    )
    qbo.get("preferences")
    qbo.get("invoice/1")
    calls = admin(emu, "GET", f"companies/{realm}/calls").json()
    assert calls["total"] == 2 and calls["by_status"] == {"200": 1, "400": 1}


def test_user_edits_inside_quickbooks(emu, realm, qbo: Qbo):
    cust, item = qbo.customer("Pat"), qbo.item()
    edited = admin(
        emu, "POST", f"companies/{realm}/customers/{cust['Id']}", {"Notes": "changed by the owner"}
    ).json()
    assert edited["SyncToken"] == "1" and edited["Notes"] == "changed by the owner"
    # the client's copy is now stale
    assert_fault(
        qbo.post("customer", {"Id": cust["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"}), 400, "5010"
    )
    inv = qbo.invoice(cust["Id"], item["Id"], [(4, 25)])
    paid = admin(emu, "POST", f"companies/{realm}/invoices/{inv['Id']}/pay", {"amount": "40"}).json()
    assert paid["TotalAmt"] == 40
    assert Decimal(str(qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]["Balance"])) == 60
    emu.pay_invoice(realm, inv["Id"])
    assert emu.entity(realm, "Invoice", inv["Id"])["Balance"] == 0
    bad = admin(emu, "POST", f"companies/{realm}/customers/{cust['Id']}", {"DisplayName": "a:b"})
    assert bad.status_code == 400 and bad.json()["Fault"]["Error"][0]["code"] == "2040"
    new_item = admin(
        emu, "POST", f"companies/{realm}/items", {"Name": "Made in QBO", "Type": "NonInventory"}
    ).json()
    assert new_item["Id"] and new_item["SyncToken"] == "0"
    other = qbo.invoice(cust["Id"], item["Id"], [(1, 1)])
    assert admin(emu, "DELETE", f"companies/{realm}/invoices/{other['Id']}").json()["status"] == "Deleted"
    assert admin(emu, "GET", "companies/nope/state").status_code == 404


def test_reset_realm(emu, realm, qbo: Qbo):
    qbo.customer("Temp")
    emu.configure(realm=realm, requests_per_minute=1)
    assert admin(emu, "POST", "reset", {"realm": realm}).status_code == 200
    assert emu.entities(realm, "Customer") == []
    assert emu.calls(realm)["total"] == 0
    assert qbo.get("preferences").status_code == 200  # tokens and limits: back to defaults
    assert qbo.get("preferences").status_code == 200


def test_advance_clock(emu, realm, qbo: Qbo):
    assert admin(emu, "POST", "clock/advance", {"seconds": 4000}).status_code == 200
    assert qbo.get("preferences").status_code == 401


def test_admin_apps_webhooks_and_health(emu, receiver):
    app = {"client_id": "admin-app", "client_secret": "s", "redirect_uris": ["http://localhost/cb"]}
    app |= {"webhook_url": receiver.url, "verifier_token": "v"}
    assert admin(emu, "POST", "apps", app).json() == {"client_id": "admin-app"}
    realm = admin(emu, "POST", "companies", {}).json()["realmId"]
    admin(emu, "POST", f"companies/{realm}/connect", {"client_id": "admin-app"})
    admin(emu, "POST", f"companies/{realm}/customers", {"DisplayName": "Made by a user"})
    assert admin(emu, "POST", "webhooks/flush", {"timeout": 5}).json() == {"flushed": True}
    deliveries = admin(emu, "GET", "webhooks/deliveries").json()["deliveries"]
    assert any(d["client_id"] == "admin-app" and d["status"] == 200 for d in deliveries)
    assert len(receiver.requests) == 1
    assert realm in admin(emu, "GET", "health").json()["realms"]
