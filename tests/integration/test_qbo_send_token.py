"""Issue 13: QuickBooks' own send is an update there (SyncToken + 1). The consumer keeps the token
QuickBooks answered (only if newer than the one held), so the next sparse update is not refused as
stale. Against the emulator, with webhooks off (nothing else brings the new token in)."""

from __future__ import annotations

from typing import Any

import pytest

from fieldbill.store import invoice_sync
from tests.conftest import wait_for
from tests.integration.test_qbo_sync import (
    load_invoice,
    qbo_connect,
    qbo_tenant,
    seed_contact,
    seed_invoice,
    seed_product,
    send,
    wait_settled,
)

pytestmark = pytest.mark.integration


def _send_message(stack: Any, tenant: str, invoice_id: str, to: str, version: int) -> None:
    import boto3

    from fieldbill.workflows.messages import QboSyncMessage

    message = QboSyncMessage(
        kind="send_invoice", tenant_id=tenant, entity_id=invoice_id, ref=to, version=version
    )
    boto3.client("sqs").send_message(
        QueueUrl=stack.aws.environment["QBO_SYNC_QUEUE_URL"],
        MessageBody=message.model_dump_json(exclude_none=True),
    )


def test_quickbooks_send_keeps_the_new_sync_token_and_an_older_one_never_overwrites_it(stack):
    # Given an invoice QuickBooks holds at its current version
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    seed_contact(tenant, "Send Owner")
    seed_product(tenant, "Service")
    invoice = seed_invoice(tenant)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    before = stack.emulator.entity(realm, "Invoice", synced.qbo_id)["SyncToken"]
    assert synced.qbo_sync_token == before
    # When QuickBooks' send of it is consumed
    _send_message(stack, tenant, invoice.id, "ap@example.com", int(synced.version))
    sent = wait_for(
        lambda: (lambda r: r if r.qbo_send and r.qbo_send.as_dict().get("status") == "sent" else None)(
            load_invoice(tenant, invoice.id)
        ),
        timeout=30,
        what="QuickBooks' send recorded",
    )
    # Then ours holds the token QuickBooks answered with (the send advanced it)
    theirs = stack.emulator.entity(realm, "Invoice", synced.qbo_id)["SyncToken"]
    assert int(theirs) == int(before) + 1
    assert sent.qbo_sync_token == theirs
    # And an older token (a late answer) never replaces a newer one; an equal one changes nothing
    assert invoice_sync.keep_newer_sync_token(tenant, invoice.id, before) is False
    assert invoice_sync.keep_newer_sync_token(tenant, invoice.id, theirs) is False
    assert load_invoice(tenant, invoice.id).qbo_sync_token == theirs
    assert invoice_sync.keep_newer_sync_token(tenant, invoice.id, str(int(theirs) + 1)) is True
    assert load_invoice(tenant, invoice.id).qbo_sync_token == str(int(theirs) + 1)
