"""The conflict rule (issue 15 item 5): QuickBooks holds a newer version of a contact changed here
and not pushed yet: ours is kept for the fields we own, theirs taken for the rest, and the
contact's history says so."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fieldbill.quickbooks.client import QboClient
from fieldbill.store import catalog, qbo_links
from fieldbill.store.models import Contact
from fieldbill.workflows.inbound.applier import Applier
from tests.integration.test_qbo_sync import qbo_connect, qbo_tenant

pytestmark = pytest.mark.integration


def test_ours_wins_for_owned_fields_theirs_for_the_others_and_it_is_recorded(stack):
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Conflict Pools"})
    applier = Applier(tenant, QboClient(tenant))
    assert applier.apply_rows("Customer", [customer]).created == 1
    (record,) = [
        r for r in catalog.list_contacts(tenant, 10, None, None, None)[0] if r.name == "Conflict Pools"
    ]
    # Given our rename, not pushed yet (dirty)
    catalog.contacts.update(
        tenant, record.id, qbo_links.marked_dirty({"name": "Conflict Pools (ours)"}), "alice"
    )
    # When QuickBooks holds a newer version: renamed there too, and a balance of its own
    newer = {**customer, "DisplayName": "Conflict Pools (theirs)", "Balance": 42, "SyncToken": "1"}
    applier = Applier(tenant, QboClient(tenant))
    assert applier.apply_rows("Customer", [newer]).updated == 1
    # Then our name stands (pushed next: still dirty), their balance is taken, and history says why
    after = catalog.contacts.get(tenant, record.id)
    assert isinstance(after, Contact)
    assert after.name == "Conflict Pools (ours)" and after.balance == Decimal("42")
    assert after.qbo_dirty_since and after.qbo_sync_token == "1"
    assert "conflict" in after.history[-1].reason and "name" in after.history[-1].reason


def test_without_a_change_here_theirs_is_taken_whole(stack):
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Calm Pools"})
    Applier(tenant, QboClient(tenant)).apply_rows("Customer", [customer])
    newer = {**customer, "DisplayName": "Calm Pools Renamed", "SyncToken": "1"}
    Applier(tenant, QboClient(tenant)).apply_rows("Customer", [newer])
    (record,) = catalog.list_contacts(tenant, 10, None, None, None)[0]
    assert record.name == "Calm Pools Renamed" and "conflict" not in (record.history[-1].reason or "")
