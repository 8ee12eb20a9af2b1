"""An invoice whose sync waits on its company says why and until when (issue 15 item 7)."""

from __future__ import annotations

import time
from datetime import datetime

from fieldbill.quickbooks.limiter import default_limiter
from fieldbill.store import connections
from fieldbill.store.models import Invoice
from tests.conftest import Client
from tests.integration.test_qbo_sync import qbo_connect, seed_invoice


def pending_invoice(tenant: str) -> Invoice:
    invoice = seed_invoice(tenant)
    invoice.update(actions=[Invoice.sync_status.set("pending")])
    return invoice


def test_a_throttled_company_shows_throttled_with_the_cool_downs_end(stack, client: Client):
    realm = qbo_connect(stack, client.tenant_id)
    invoice = pending_invoice(client.tenant_id)
    assert client.ok("GET", f"/invoices/{invoice.id}", expect=200)["sync_wait"] is None
    # When QuickBooks answers 429 (the limiter cools the company down: 60 QuickBooks seconds)
    before = time.time()
    default_limiter().note_throttled(realm, qbo_seconds=60)
    got = client.ok("GET", f"/invoices/{invoice.id}", expect=200)["sync_wait"]
    assert got["reason"] == "throttled"
    retry = datetime.fromisoformat(got["retry_at"].replace("Z", "+00:00")).timestamp()
    assert retry > before  # in the future, at the cool-down's end


def test_a_company_needing_reconnect_shows_it_without_a_retry_time(stack, client: Client):
    qbo_connect(stack, client.tenant_id)
    invoice = pending_invoice(client.tenant_id)
    record = connections.get(client.tenant_id)
    assert record is not None
    assert connections.mark_needs_reconnect(record, "test: refresh refused", "test")
    got = client.ok("GET", f"/invoices/{invoice.id}", expect=200)["sync_wait"]
    assert (got["reason"], got["retry_at"]) == ("needs_reconnect", None)
    assert "connect" in got["detail"]
