"""The one way a status changes: the machine decides, the store writes conditionally with history."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from fieldbill.domain.errors import Conflict, InvalidTransition
from fieldbill.domain.states import ITEM_MACHINE
from fieldbill.store import common, transitions
from fieldbill.store.models import META, BillableItem


def _item(stack, tenant: str) -> BillableItem:
    item_id = uuid.uuid4().hex
    record = BillableItem(
        pk=BillableItem.key(tenant, item_id),
        sk=META,
        tenant_id=tenant,
        id=item_id,
        contact_id="c1",
        line_kind="task_entry",
        quantity=Decimal("1"),
        unit_price=Decimal("10"),
        amount=Decimal("10"),
        work_date="2026-11-01",
        status="pending",
    )
    return common.create(record, actor="test")  # type: ignore[return-value]


def test_allowed_change_writes_status_and_history(stack, tenant_id):
    item = _item(stack, tenant_id)
    transitions.apply(item, "status", ITEM_MACHINE, "unbillable", actor="alice", reason="goodwill")
    stored = common.get(BillableItem, item.pk)
    assert stored.status == "unbillable"
    last = stored.history[-1]
    assert (last.actor, last.from_state, last.to_state, last.reason) == (
        "alice",
        "pending",
        "unbillable",
        "goodwill",
    )


def test_illegal_change_raises_and_writes_nothing(stack, tenant_id):
    item = _item(stack, tenant_id)
    transitions.apply(item, "status", ITEM_MACHINE, "void", actor="alice")
    before = common.get(BillableItem, item.pk)
    with pytest.raises(InvalidTransition) as caught:
        transitions.apply(before, "status", ITEM_MACHINE, "invoiced", actor="alice")
    assert (caught.value.from_status, caught.value.to_status) == ("void", "invoiced")
    after = common.get(BillableItem, item.pk)
    assert after.status == "void" and len(after.history) == len(before.history)


def test_a_stale_read_loses_cleanly(stack, tenant_id):
    item = _item(stack, tenant_id)
    stale = common.get(BillableItem, item.pk)
    transitions.apply(item, "status", ITEM_MACHINE, "unbillable", actor="alice")
    with pytest.raises(Conflict):
        transitions.apply(stale, "status", ITEM_MACHINE, "void", actor="bob")
    assert common.get(BillableItem, item.pk).status == "unbillable"
