"""Webhooks: signed notifications in both formats, retries, switching off."""

from __future__ import annotations

import base64
import hashlib
import hmac

from local.qbo_emulator import verify_webhook
from tests.emulator.conftest import REDIRECT_URI, Qbo

VERIFIER = "verifier-token-123"


def _expected_signature(raw: bytes) -> str:
    return base64.b64encode(hmac.new(VERIFIER.encode(), raw, hashlib.sha256).digest()).decode()


def _setup(emu, receiver, client_id: str, fmt: str) -> tuple[str, Qbo]:
    emu.register_app(
        client_id, "s", [REDIRECT_URI], webhook_url=receiver.url, verifier_token=VERIFIER, webhook_format=fmt
    )
    realm = emu.create_company()
    return realm, Qbo(emu, realm, emu.connect(client_id, realm)["access_token"])


def test_legacy_notifications_signed(emu, receiver):
    realm, qbo = _setup(emu, receiver, "hook-legacy", "legacy")
    cust = qbo.customer("Hooked")
    qbo.create("Customer", {"Id": cust["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"})
    emu.user_edit(realm, "Customer", cust["Id"], {"Notes": "edited in QuickBooks"})
    assert emu.flush_webhooks(5)
    events = []
    for req in receiver.requests:
        assert req["headers"]["intuit-signature"] == _expected_signature(req["raw"])
        assert verify_webhook(VERIFIER, req["raw"], req["headers"]["intuit-signature"])
    for payload in receiver.payloads():
        (notification,) = payload["eventNotifications"]
        assert notification["realmId"] == realm
        events += notification["dataChangeEvent"]["entities"]
    assert [(e["name"], e["id"], e["operation"]) for e in events] == [
        ("Customer", cust["Id"], "Create"),
        ("Customer", cust["Id"], "Update"),
        ("Customer", cust["Id"], "Update"),
    ]
    assert all(e["lastUpdated"].endswith("Z") for e in events)


def test_cloudevents_format(emu, receiver):
    realm, qbo = _setup(emu, receiver, "hook-ce", "cloudevents")
    cust, item = qbo.customer("CE"), qbo.item()
    inv = qbo.invoice(cust["Id"], item["Id"], [(1, 9)])
    qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="void")
    assert emu.flush_webhooks(5)
    events = [e for payload in receiver.payloads() for e in payload]
    for req in receiver.requests:
        assert req["headers"]["intuit-signature"] == _expected_signature(req["raw"])
    types = [(e["type"], e["intuitentityid"]) for e in events]
    assert types == [
        ("qbo.customer.created.v1", cust["Id"]),
        ("qbo.item.created.v1", item["Id"]),
        ("qbo.invoice.created.v1", inv["Id"]),
        ("qbo.invoice.voided.v1", inv["Id"]),
    ]
    for e in events:
        assert e["specversion"] == "1.0" and e["intuitaccountid"] == realm
        assert {"id", "source", "time", "datacontenttype", "data"} <= set(e)


def test_retries_on_failure(emu, receiver):
    _realm, qbo = _setup(emu, receiver, "hook-retry", "legacy")
    receiver.statuses = [500, 503]
    qbo.customer("Retry Me")
    assert emu.flush_webhooks(5)
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert len({r["raw"] for r in receiver.requests}) == 1  # the same body each time
    attempts = [d["attempt"] for d in emu.webhook_deliveries() if d["client_id"] == "hook-retry"]
    assert attempts == [1, 2, 3]


def test_webhooks_can_be_switched_off(emu, receiver):
    realm, qbo = _setup(emu, receiver, "hook-off", "legacy")
    emu.configure(realm=realm, webhooks_enabled=False)
    qbo.customer("Silent")
    assert emu.flush_webhooks(5)
    assert receiver.requests == []
    emu.configure(realm=realm, webhooks_enabled=True)
    qbo.customer("Loud")
    assert emu.flush_webhooks(5)
    assert len(receiver.requests) == 1
