"""QuickBooks OAuth against the emulator: connect, rotate under concurrency, disconnect."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from fieldbill.domain.errors import InvalidTransition
from fieldbill.quickbooks import tokens
from fieldbill.store.models import QboConnection
from tests.integration.test_qbo_sync import connection, qbo_connect, qbo_tenant

pytestmark = pytest.mark.integration


def test_connect_stores_encrypted_tokens_and_the_realm_index(stack):
    # Given a tenant that goes through the consent flow
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    # Then the connection is live, tokens are stored encrypted (never in clear) and the realm maps back
    record = connection(tenant)
    assert record.status == "connected" and record.realm_id == realm
    token, got_realm = tokens.access_token(tenant)
    assert got_realm == realm
    assert token not in (record.access_token_enc or "") and record.refresh_token_enc
    assert record.gsi1pk == QboConnection.realm_key(realm)
    assert tokens.tenant_for_realm(realm) == tenant
    assert record.oauth_state is None  # single use


def test_callback_state_is_checked_and_single_use(stack):
    tenant = qbo_tenant()
    realm = stack.emulator.create_company(name="state company")
    url = tokens.authorization_url(tenant)
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=10)
    location = consent.headers["Location"]
    params = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))
    state = requests.utils.unquote(params["state"])
    # A forged state for the same tenant is refused
    with pytest.raises(tokens.OAuthStateInvalid):
        tokens.complete_connection(f"{tenant}.forged", params["code"], realm)
    # The real one works once
    assert tokens.complete_connection(state, params["code"], realm) == tenant
    with pytest.raises(tokens.OAuthStateInvalid):
        tokens.complete_connection(state, params["code"], realm)


def test_two_concurrent_refreshers_rotate_once_and_the_stored_token_stays_valid(stack):
    # Given a connection whose access token is about to expire
    tenant = qbo_tenant()
    qbo_connect(stack, tenant)
    before = connection(tenant)
    old_token, _ = tokens.access_token(tenant)
    before.update(actions=[QboConnection.access_expires_at.set(int(time.time()))])
    tokens.clear_cache()
    # When two workers need a token at the same moment
    start = threading.Barrier(2)
    results: list[Any] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(tokens.current_token(tenant))
        except Exception as exc:  # collected, asserted below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Then exactly one refresh happened (a second with the spent refresh token would be
    # invalid_grant) and both got the same new token
    assert all(isinstance(r, tokens.AccessToken) for r in results), results
    assert results[0].token == results[1].token != old_token
    after = connection(tenant)
    assert after.status == "connected"
    assert after.token_version == before.token_version + 1
    assert after.refresh_lease_until is None
    # And the stored (rotated) refresh token still works
    refreshed, _ = tokens.access_token(tenant, rejected=results[0].token)
    assert refreshed != results[0].token
    assert connection(tenant).token_version == before.token_version + 2


def test_disconnect_revokes_and_forgets_tokens(stack):
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    token, _ = tokens.access_token(tenant)
    tokens.disconnect(tenant)
    record = connection(tenant)
    assert record.status == "disconnected"
    assert record.access_token_enc is None and record.refresh_token_enc is None
    assert tokens.tenant_for_realm(realm) is None
    with pytest.raises(tokens.NeedsReconnect):
        tokens.access_token(tenant)
    # The revoked token no longer opens the company
    answer = requests.get(
        f"{stack.emulator.api_base}/company/{realm}/companyinfo/{realm}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 401


def _consent_params(stack, url: str) -> dict[str, str]:
    realm = stack.emulator.create_company(name="bound company")
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=10)
    query = consent.headers["Location"].split("?", 1)[1]
    return {k: requests.utils.unquote(v) for k, v in (p.split("=", 1) for p in query.split("&"))}


def test_a_browser_state_needs_its_own_session_and_an_in_process_state_no_browser(stack):
    tenant = qbo_tenant()
    started = tokens.start_connect(tenant, "user:alice")
    params = _consent_params(stack, started.authorization_url)
    state, code, realm = params["state"], params["code"], params["realmId"]
    # The session secret is not in the URL (only its digest is in the state)
    assert started.session not in started.authorization_url
    # Completed without the browser, or with another browser's session: refused, nothing consumed
    with pytest.raises(tokens.OAuthStateInvalid):
        tokens.complete_connection(state, code, realm)
    for session in (None, "", tokens.start_connect(qbo_tenant(), "user:eve").session):
        with pytest.raises(tokens.OAuthStateInvalid):
            tokens.connect_callback(state, code, realm, session=session)
    # With its own session it connects, and the user who asked is the actor of the change
    assert tokens.connect_callback(state, code, realm, session=started.session).tenant_id == tenant
    record = connection(tenant)
    assert record.status == "connected" and record.oauth_state is None
    assert (record.history[-1].actor, record.history[-1].to_state) == ("user:alice", "connected")
    # An in-process state (no browser) is refused by the browser's callback
    unbound = _consent_params(stack, tokens.authorization_url(tenant))
    with pytest.raises(tokens.OAuthStateInvalid):
        tokens.connect_callback(
            unbound["state"], unbound["code"], unbound["realmId"], session=started.session
        )


def test_an_edited_or_expired_state_is_refused(stack, monkeypatch):
    import base64
    import json

    tenant, victim = qbo_tenant(), qbo_tenant()
    tokens.authorization_url(victim)  # the victim has a pending connect too
    params = _consent_params(stack, tokens.authorization_url(tenant))
    body, mac = params["state"].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    # The payload pointed at another tenant, signature kept: refused before anything is read
    payload["t"] = victim
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(tokens.OAuthStateInvalid, match="not signed"):
        tokens.complete_connection(f"{edited}.{mac}", params["code"], params["realmId"])
    assert connection(victim).status == "disconnected"
    # A state past its lifetime
    monkeypatch.setattr(tokens, "STATE_TTL_SECONDS", -1)
    late = _consent_params(stack, tokens.authorization_url(tenant))
    with pytest.raises(tokens.OAuthStateInvalid, match="expired"):
        tokens.complete_connection(late["state"], late["code"], late["realmId"])
    assert connection(tenant).status == "disconnected"


def test_status_changes_follow_the_connection_machine_with_history(stack):
    # Given a connected company that QuickBooks stops accepting, twice (two workers notice)
    tenant = qbo_tenant()
    qbo_connect(stack, tenant)
    tokens.mark_needs_reconnect(tenant, "invalid_grant")
    tokens.mark_needs_reconnect(tenant, "invalid_grant again")
    # Then it changed once, with its history entry, and left the schedules' index
    record = connection(tenant)
    changes = [(h.from_state, h.to_state, h.reason) for h in record.history if h.from_state != h.to_state]
    assert changes[-1] == ("connected", "needs_reconnect", "invalid_grant")
    assert [c for c in changes if c[1] == "needs_reconnect"] == [changes[-1]]
    assert record.gsi2pk is None
    # When it is disconnected, a late "needs reconnect" from a worker changes nothing
    tokens.disconnect(tenant, actor="user:alice")
    before = connection(tenant)
    tokens.mark_needs_reconnect(tenant, "late worker")
    after = connection(tenant)
    assert after.status == "disconnected" and len(after.history) == len(before.history)
    assert (before.history[-1].actor, before.history[-1].from_state) == ("user:alice", "needs_reconnect")
    # And disconnecting again is an illegal transition that writes nothing
    with pytest.raises(InvalidTransition):
        tokens.disconnect(tenant)
    assert len(connection(tenant).history) == len(after.history)
