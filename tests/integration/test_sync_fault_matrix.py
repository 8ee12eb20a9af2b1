"""The sync engine against every fault QuickBooks (or the way to it) can produce.

One case per fault kind, each on a fresh tenant and company: 12 invoices of one tenant are queued
through the real queue and consumed by the real handler (batched by realm). Afterwards, whatever
happened on the way:
- QuickBooks holds each invoice exactly once (counted by our PrivateNote marker), and
- every invoice is synced, or in error with a reason (code and message): none is lost.
Time runs at TEST_SECONDS_PER_MINUTE (one QuickBooks minute per real second).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from fieldbill.quickbooks import tokens
from fieldbill.store.models import Product, QboConnection
from tests.conftest import Client, wait_for
from tests.integration.test_qbo_sync import (
    connection,
    load_invoice,
    qbo_connect,
    qbo_tenant,
    seed_contact,
    seed_invoice,
    seed_product,
    send_many,
    wait_settled,
)

pytestmark = pytest.mark.integration

INVOICES = 12
BATCH = {"path_regex": r"/batch$"}


@dataclass
class Case:
    faults: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    bad_invoices: int = 0  # invoices whose item does not exist in QuickBooks (validation fault 2500)
    expect: dict[str, int] = field(default_factory=dict)  # emulator counters that must be reached


CASES: dict[str, Case] = {
    "429_storm_with_retry_after": Case(
        faults=[{"kind": "status", "status": 429, "count": 6, "retry_after": 3}], expect={"throttled_429": 6}
    ),
    "429_storm_without_retry_after": Case(
        faults=[{"kind": "status", "status": 429, "count": 6}], expect={"throttled_429": 6}
    ),
    "500": Case(faults=[{"kind": "status", "status": 500, "count": 2, "match": BATCH}], expect={"500": 2}),
    "503": Case(faults=[{"kind": "status", "status": 503, "count": 2, "match": BATCH}], expect={"503": 2}),
    "dropped_connection_before_commit": Case(
        faults=[{"kind": "drop_connection", "count": 2, "match": BATCH}], expect={"dropped": 2}
    ),
    "response_lost_after_commit": Case(
        # QuickBooks forgets requestids at once: only our look-up can prevent a second invoice
        faults=[{"kind": "lost_after_commit", "count": 1, "match": BATCH}],
        config={"requestid_ttl": 0},
        expect={"lost_after_commit": 1},
    ),
    "token_expiry_3200_mid_run": Case(
        faults=[{"kind": "expire_tokens", "count": 1, "match": BATCH}], expect={"status_401": 1}
    ),
    "permanent_validation_error_on_some_invoices": Case(bad_invoices=3),
}


def _seed(tenant: str, bad: int) -> tuple[list[str], set[str]]:
    seed_contact(tenant, "Matrix Owner", "c1")
    seed_contact(tenant, "Matrix Second Owner", "c2")
    seed_product(tenant, "Weekly service", "p1")
    bad_ids: set[str] = set()
    if bad:
        ghost = seed_product(tenant, "Ghost item", "p-ghost")
        ghost.update(actions=[Product.qbo_id.set("999999")])  # linked to an item QuickBooks never had
    ids = []
    for n in range(INVOICES):
        lines = [("p1", "1.5", "80"), ("p1", "2", "12.5")]
        if n % 4 == 1 and len(bad_ids) < bad:
            lines.append(("p-ghost", "1", "10"))
        invoice = seed_invoice(tenant, contact_id=f"c{1 + n % 2}", lines=lines)
        ids.append(invoice.id)
        if len(lines) == 3:
            bad_ids.add(invoice.id)
    return ids, bad_ids


def _counters(stack: Any, realm: str) -> Counter[str]:
    calls = stack.emulator.calls(realm)
    counter: Counter[str] = Counter(calls["counters"])
    counter["throttled_429"] = calls["by_status"].get("429", 0)
    for status, n in calls["by_status"].items():
        counter[status] = n
    return counter


def _assert_exactly_once(stack: Any, realm: str, tenant: str, ids: list[str], bad_ids: set[str]) -> None:
    """Each invoice once in QuickBooks (by marker) and synced, or in error with a reason."""
    markers = Counter(
        str(e.get("PrivateNote", ""))
        for e in stack.emulator.entities(realm, "Invoice")
        if str(e.get("PrivateNote", "")).startswith("fieldbill:invoice:")
    )
    assert all(n == 1 for n in markers.values()), f"duplicates in QuickBooks: {markers}"
    for invoice_id in ids:
        record = load_invoice(tenant, invoice_id)
        marker = f"fieldbill:invoice:{tenant}:{invoice_id}"
        if invoice_id in bad_ids:
            assert record.sync_status == "error", record.sync_status
            reason = record.sync_error.as_dict()
            assert reason["code"] == "2500" and reason["message"], reason
            assert marker not in markers
        else:
            assert record.sync_status == "synced", (record.sync_status, record.sync_error)
            assert markers[marker] == 1
            qbo = stack.emulator.entity(realm, "Invoice", record.qbo_id)
            assert qbo is not None and qbo["PrivateNote"] == marker


@pytest.mark.parametrize("name", list(CASES))
def test_fault_matrix(stack, name):
    case = CASES[name]
    # Given a tenant with 12 invoices and a company that will fault as the case says
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    ids, bad_ids = _seed(tenant, case.bad_invoices)
    if case.config:
        stack.emulator.configure(realm, **case.config)
    for rule in case.faults:
        stack.emulator.add_fault(realm, **rule)
    version_before = connection(tenant).token_version
    # When their messages go through the queue and the consumer
    send_many(stack, tenant, ids)
    wait_settled(tenant, ids, timeout=30)
    # Then every invoice is in QuickBooks exactly once, or in error with QuickBooks' reason
    _assert_exactly_once(stack, realm, tenant, ids, bad_ids)
    # And the fault did happen
    counters = _counters(stack, realm)
    for key, minimum in case.expect.items():
        assert counters[key] >= minimum, (key, dict(counters))
    assert stack.emulator.errors == []
    if name == "token_expiry_3200_mid_run":
        assert connection(tenant).token_version > version_before  # refreshed once, then went on
        assert connection(tenant).status == "connected"
    if bad_ids:
        assert counters["batch_requests"] >= 1  # the bad ones failed inside a batch, the others stood


def test_invalid_grant_then_reconnect_resumes_with_nothing_lost(stack):
    # Given a connection whose access token has expired and whose refresh token QuickBooks refuses
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    ids, _ = _seed(tenant, 0)
    connection(tenant).update(actions=[QboConnection.access_expires_at.set(int(time.time()) - 1)])
    tokens.clear_cache()
    stack.emulator.add_fault(realm, kind="invalid_grant", count=1)
    # When the invoices are queued
    send_many(stack, tenant, ids)
    # Then the connection needs a person and no invoice moves
    wait_for(lambda: connection(tenant).status == "needs_reconnect", timeout=20, what="needs_reconnect")
    time.sleep(0.5)
    assert all(load_invoice(tenant, i).sync_status in ("not_synced", "pending") for i in ids)
    assert stack.emulator.entities(realm, "Invoice") == []
    # When the owner reconnects the same company through the product's OAuth flow
    _reconnect(stack, tenant, realm)
    # Then the parked messages resume and every invoice reaches QuickBooks exactly once
    wait_settled(tenant, ids, timeout=30)
    _assert_exactly_once(stack, realm, tenant, ids, set())


def test_403_application_authorization_failed_pauses_the_connection_and_a_reconnect_resumes(stack):
    # Given a connected tenant whose company refuses the app's authorization: HTTP 403, lower-case
    # ApplicationAuthorizationFailed 3100 (reference §2, corrected 2026-12-02), on every call
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    ids, _ = _seed(tenant, 0)
    version_before = connection(tenant).token_version
    stack.emulator.add_fault(realm, kind="status", status=403, count=1000)
    # When the invoices are queued
    send_many(stack, tenant, ids)
    # Then the connection is paused for a person, with QuickBooks' code as the reason
    wait_for(lambda: connection(tenant).status == "needs_reconnect", timeout=20, what="needs_reconnect")
    assert "3100" in str(connection(tenant).history[-1].reason)
    # And it was not taken for an expired token (no refresh) nor retried as transient
    assert connection(tenant).token_version == version_before
    time.sleep(0.5)
    assert all(load_invoice(tenant, i).sync_status in ("not_synced", "pending") for i in ids)
    assert stack.emulator.entities(realm, "Invoice") == []
    assert _counters(stack, realm)["403"] >= 1
    # When QuickBooks authorizes the app again and the owner reconnects
    stack.emulator.configure(realm, clear_faults=True)
    _reconnect(stack, tenant, realm)
    # Then the kept messages resume and every invoice reaches QuickBooks exactly once
    wait_settled(tenant, ids, timeout=30)
    _assert_exactly_once(stack, realm, tenant, ids, set())


def _reconnect(stack: Any, tenant: str, realm: str) -> None:
    """The owner connects the same company again through the product's OAuth flow."""
    client = Client(stack, tenant)
    url = client.ok("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)
    assert consent.status_code in (302, 303), consent.text
    # (the browser brings back the connect cookie GET /quickbooks/connect set)
    callback = requests.get(consent.headers["Location"], cookies=client.session.cookies, timeout=30)
    assert callback.status_code == 200, callback.text
    assert connection(tenant).status == "connected"
