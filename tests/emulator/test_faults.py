"""Fault injection: status codes, dropped connections, lost-after-commit, token faults, slowness."""

from __future__ import annotations

import time

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError

from tests.emulator.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Qbo


def test_status_faults_with_count_and_match(emu, realm, qbo: Qbo):
    emu.configure(
        realm=realm,
        faults=[
            {
                "kind": "status",
                "status": 503,
                "count": 1,
                "match": {"method": "POST", "path_regex": "/customer"},
            },
            {
                "kind": "status",
                "status": 500,
                "count": 1,
                "match": {"method": "POST", "path_regex": "/customer"},
            },
        ],
    )
    assert qbo.get("preferences").status_code == 200  # GET does not match
    first = qbo.post("customer", {"DisplayName": "F1"})
    assert first.status_code == 503 and "Service Unavailable" in first.text
    second = qbo.post("customer", {"DisplayName": "F1"})
    assert second.status_code == 500
    # ruckus/quickbooks-ruby spec/fixtures/generic_error.xml: a server fault is SystemFault 10000
    assert second.json()["Fault"]["type"] == "SystemFault"
    assert second.json()["Fault"]["Error"][0]["code"] == "10000"
    assert qbo.post("customer", {"DisplayName": "F1"}).status_code == 200
    assert len(emu.entities(realm, "Customer")) == 1


def test_injected_403_is_the_application_authorization_failed_body(emu, realm, qbo: Qbo):
    # Given a company whose app has lost its authorization (injected: QuickBooks decides this)
    emu.add_fault(realm, kind="status", status=403, count=1)
    # When a client calls it
    resp = qbo.get("preferences")
    # Then it answers QuickBooks' lower-case 3100 body (reference §2), once
    assert resp.status_code == 403
    (error,) = resp.json()["fault"]["error"]
    assert error["code"] == "3100" and "errorCode=003100; statusCode=403" in error["message"]
    assert qbo.get("preferences").status_code == 200


def test_injected_429_is_the_xml_body(emu, realm, qbo: Qbo):
    emu.add_fault(realm, kind="status", status=429, count=1, retry_after=60)
    resp = qbo.get("preferences")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "60"
    assert "ThrottleExceeded" in resp.text and resp.headers["Content-Type"].startswith("application/xml")


def test_drop_connection_before_commit(emu, realm, qbo: Qbo):
    emu.configure(
        realm=realm, faults=[{"kind": "drop_connection", "count": 1, "match": {"path_regex": "/customer$"}}]
    )
    with pytest.raises(requests.ConnectionError):
        qbo.post("customer", {"DisplayName": "Dropped"})
    assert emu.entities(realm, "Customer") == []
    assert qbo.post("customer", {"DisplayName": "Dropped"}).status_code == 200
    assert emu.calls(realm)["dropped"] == 1


def test_lost_after_commit_leaves_the_entity_and_requestid_recovers(emu, realm, qbo: Qbo):
    emu.configure(
        realm=realm, faults=[{"kind": "lost_after_commit", "count": 1, "match": {"path_regex": "/customer$"}}]
    )
    with pytest.raises(requests.ConnectionError):
        qbo.post("customer", {"DisplayName": "Lost"}, requestid="lost-1")
    (created,) = emu.entities(realm, "Customer")
    assert created["DisplayName"] == "Lost"
    retry = qbo.post("customer", {"DisplayName": "Lost"}, requestid="lost-1")
    assert retry.status_code == 200 and retry.json()["Customer"]["Id"] == created["Id"]
    assert len(emu.entities(realm, "Customer")) == 1
    # without a requestid the retry is a duplicate name
    emu.configure(realm=realm, faults=[{"kind": "lost_after_commit", "count": 1}])
    with pytest.raises(requests.ConnectionError):
        qbo.post("customer", {"DisplayName": "Lost2"})
    assert qbo.post("customer", {"DisplayName": "Lost2"}).json()["Fault"]["Error"][0]["code"] == "6240"


def test_expire_tokens(emu, realm, tokens, qbo: Qbo):
    emu.configure(realm=realm, faults=[{"kind": "expire_tokens", "count": 1}])
    resp = qbo.get("preferences")
    assert resp.status_code == 401 and resp.json()["fault"]["error"][0]["code"] == "3200"
    assert qbo.get("preferences").status_code == 401  # stays expired
    ac = AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=emu.discovery_url)
    ac.refresh(refresh_token=tokens["refresh_token"])
    assert Qbo(emu, realm, ac.access_token).get("preferences").status_code == 200


def test_invalid_grant(emu, realm, tokens):
    emu.configure(realm=realm, faults=[{"kind": "invalid_grant", "count": 1}])
    ac = AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=emu.discovery_url)
    with pytest.raises(AuthClientError) as info:
        ac.refresh(refresh_token=tokens["refresh_token"])
    assert info.value.status_code == 400 and info.value.response.json() == {"error": "invalid_grant"}
    with pytest.raises(AuthClientError):  # the grant is gone: the company must reconnect
        ac.refresh(refresh_token=tokens["refresh_token"])


def test_token_endpoint_status_fault(emu, realm, tokens):
    emu.configure(
        realm=realm,
        faults=[{"kind": "status", "status": 503, "count": 1, "match": {"path_regex": "tokens/bearer"}}],
    )
    ac = AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=emu.discovery_url)
    with pytest.raises(AuthClientError) as info:
        ac.refresh(refresh_token=tokens["refresh_token"])
    assert info.value.status_code == 503
    ac.refresh(refresh_token=tokens["refresh_token"])  # not rotated by the failed call
    assert ac.access_token


def test_slow(emu, realm, qbo: Qbo):
    emu.configure(realm=realm, faults=[{"kind": "slow", "delay_ms": 250, "count": 1}])
    start = time.monotonic()
    assert qbo.get("preferences").status_code == 200
    assert time.monotonic() - start >= 0.25


def test_random_faults_are_reproducible(emu, realm, qbo: Qbo):
    def run() -> list[int]:
        emu.configure(realm=realm, fault_seed=42, faults=[{"kind": "status", "status": 500, "rate": 0.3}])
        return [qbo.get("preferences").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(500) < 30
    emu.configure(realm=realm, faults=[])


def test_admin_http_configure(emu, realm, qbo: Qbo):
    body = {"realm": realm, "faults": [{"kind": "status", "status": 503, "count": 2}]}
    resp = requests.post(f"{emu.url}/__admin/configure", json=body, timeout=5)
    assert resp.status_code == 200 and resp.json()["faults"][0]["kind"] == "status"
    assert [qbo.get("preferences").status_code for _ in range(3)] == [503, 503, 200]
    bad = requests.post(f"{emu.url}/__admin/configure", json={"faults": [{"kind": "nope"}]}, timeout=5)
    assert bad.status_code == 400
