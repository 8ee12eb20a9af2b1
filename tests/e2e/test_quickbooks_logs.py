"""No secret ever reaches a log line: an end-to-end run (connect, settings, token refresh, sync,
webhook, pulls) is captured at the file-descriptor level (Powertools logs go to stdout)."""

from __future__ import annotations

import time

from fieldbill.quickbooks import tokens
from fieldbill.store.models import QboConnection
from tests.conftest import Client, connect_quickbooks


def _tokens_of(tenant: str) -> set[str]:
    record = tokens.get_connection(tenant)
    assert record is not None and record.access_token_enc and record.refresh_token_enc
    return {tokens.decrypt(tenant, record.access_token_enc), tokens.decrypt(tenant, record.refresh_token_enc)}


def test_no_token_secret_or_verifier_appears_in_any_log_line(stack, client: Client, capfd, monkeypatch):
    # Powertools' handler keeps the stdout it found when it was created (maybe an earlier test's
    # capture): point it at this test's captured stdout
    import logging
    import sys

    from fieldbill.observability import logger

    for handler in logger._logger.handlers:
        if type(handler) is logging.StreamHandler:
            monkeypatch.setattr(handler, "stream", sys.stdout)
    emu = stack.emulator
    realm = connect_quickbooks(stack, client)  # with the settings step
    seen = _tokens_of(client.tenant_id)
    # force a refresh so that a rotated pair is used (and could be logged) too
    record = tokens.get_connection(client.tenant_id)
    assert record is not None
    record.update(actions=[QboConnection.access_expires_at.set(int(time.time()))])
    tokens.clear_cache()
    # a contact synced out, a customer changed in QuickBooks (webhook), a scheduled pull
    client.ok("POST", "/contacts", json={"id": "c-log", "name": "Log Pools"})
    customer = emu.user_create(realm, "Customer", {"DisplayName": "Logged Customer"})
    emu.user_edit(realm, "Customer", customer["Id"], {"DisplayName": "Logged Customer 2"})
    assert emu.flush_webhooks()
    stack.aws.fire_schedule("CustomersSync")
    client.ok("POST", "/quickbooks/sync/items", expect=202)
    stack.aws.drain()
    seen |= _tokens_of(client.tenant_id)
    client.ok("POST", "/quickbooks/disconnect")
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    assert any('"QuickBooks connected"' in line for line in lines), "the run's logs were not captured"
    assert any('"QuickBooks event applied"' in line for line in lines)
    # the connect cookie's session secret (the browser's proof that it started the connect) too
    session = client.session.cookies.get("fieldbill_qbo_connect")
    assert session
    secrets = seen | {stack.options.client_secret, stack.options.webhook_verifier_token, session}
    assert all(len(s) >= 16 for s in secrets)
    leaks = [(s[:6] + "…", line[:120]) for line in lines for s in secrets if s in line]
    assert leaks == []
