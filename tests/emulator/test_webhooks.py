"""Webhooks: signed notifications in both formats, retries, switching off."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

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


def test_a_delivery_carries_at_most_100_events(emu, receiver):
    # Given 230 changes made in QuickBooks before the next delivery
    realm, _qbo = _setup(emu, receiver, "hook-100", "legacy")
    emu.configure(realm=realm, webhook_delay=60)  # (real seconds: they all wait for the flush)
    ids = [emu.user_create(realm, "Customer", {"DisplayName": f"Many {n}"})["Id"] for n in range(230)]
    # When they are delivered
    assert emu.flush_webhooks(10)
    # Then in deliveries of at most 100 events (IntuitDeveloper webinar Q&A 2025-02-05, reference §6),
    # every event once, in order
    sizes = [len(p["eventNotifications"][0]["dataChangeEvent"]["entities"]) for p in receiver.payloads()]
    assert sizes == [100, 100, 30]
    delivered = [
        e["id"]
        for p in receiver.payloads()
        for e in p["eventNotifications"][0]["dataChangeEvent"]["entities"]
    ]
    assert delivered == ids


def test_retries_follow_intuits_schedule(emu):
    # reference §6: retried at 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h (emulated seconds)
    assert list(emu.settings.get("webhook_retry_delays")) == [10, 20, 30, 300, 1200, 7200, 14400, 21600]


def test_later_events_wait_for_the_ack_of_an_earlier_delivery(emu, receiver):
    # Given an app whose endpoint refused the first delivery, retried only an emulated hour later
    realm, _qbo = _setup(emu, receiver, "hook-hold", "legacy")
    emu.configure(realm=realm, webhook_retry_delays=[3600])
    receiver.statuses = [500]
    first = emu.user_create(realm, "Customer", {"DisplayName": "First"})["Id"]
    wait_until(lambda: len(receiver.requests) >= 1)
    # When another change happens meanwhile, and everything is delivered
    second = emu.user_create(realm, "Customer", {"DisplayName": "Second"})["Id"]
    assert emu.flush_webhooks(10)
    # Then the later event went out only after the earlier delivery was acknowledged
    # (Intuit holds later events for the app until the ack: reference §6)
    sent = [
        (
            r["status"],
            [e["id"] for e in json.loads(r["raw"])["eventNotifications"][0]["dataChangeEvent"]["entities"]],
        )
        for r in receiver.requests
    ]
    assert sent == [(500, [first]), (200, [first]), (200, [second])]


def wait_until(check, timeout: float = 10.0) -> None:
    """Wait for something the emulator does on its own thread (no assertion on how long it took)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
