"""store.catalog against the local DynamoDB: guards live in the write, so a decision taken on a
stale read cannot break billing (deletes of used records, edits of billed entries, dangling refs)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from fieldbill.domain.errors import Conflict, NotFound, ValidationError
from fieldbill.store import catalog, common, history, work
from fieldbill.store.models import Contact, Entity, Membership, Product, Task, TaskEntry

ACTOR = "user:test"


@pytest.fixture
def tenant(stack: Any) -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_a_delete_decided_on_a_stale_read_loses_to_a_new_reference(tenant: str) -> None:
    contact = catalog.create_named(Contact, tenant, ACTOR, {"name": "Ann"})
    stale = catalog.get(Contact, tenant, contact.id)  # read while nothing references it
    work.create_task(tenant, ACTOR, {"title": "T", "client_contact_id": contact.id})

    with pytest.raises(Conflict, match="still used by 1"):
        catalog.delete(stale, ACTOR)
    assert catalog.get(Contact, tenant, contact.id).ref_count == 1
    assert history.tombstone(tenant, "contact", contact.id) is None


def test_a_reference_to_a_record_deleted_meanwhile_is_refused(tenant: str) -> None:
    membership = catalog.create_named(Membership, tenant, ACTOR, {"name": "Gold"})
    catalog.delete_record(Membership, tenant, membership.id, ACTOR)

    with pytest.raises(ValidationError) as refused:
        catalog.create_named(
            Contact, tenant, ACTOR, {"id": "c1", "name": "Bo", "membership_id": membership.id}
        )
    assert refused.value.field == "membership_id"
    assert common.find(Contact, Contact.key(tenant, "c1")) is None
    # The deleted record left its trail
    tomb = history.tombstone(tenant, "membership", membership.id)
    assert tomb is not None and [h.to_state for h in tomb.history] == ["created", "deleted"]
    # Tombstones sit outside every list
    assert catalog.list_by_name(Membership, tenant, 10, None)[0] == []


def test_an_edit_decided_before_billing_is_refused_after(tenant: str) -> None:
    task = work.create_task(tenant, ACTOR, {"title": "T"})
    entry = work.create_entry(
        tenant,
        task.id,
        ACTOR,
        {"kind": "goods", "started_at": _dt("2024-01-02T08:00:00+00:00"), "quantity": 1},
    )
    stale = work.get_entry(tenant, task.id, entry.id)
    entry.update(actions=[TaskEntry.billed.set(True), TaskEntry.gsi2pk.remove(), TaskEntry.gsi2sk.remove()])

    with pytest.raises(Conflict):
        catalog.update(stale, {"quantity": 5}, ACTOR, condition=(TaskEntry.billed == False))  # noqa: E712
    with pytest.raises(Conflict):
        catalog.delete(stale, ACTOR, condition=(TaskEntry.billed == False))  # noqa: E712
    fresh = work.get_entry(tenant, task.id, entry.id)
    assert fresh.quantity == 1 and fresh.billed
    assert catalog.get(Task, tenant, task.id).ref_count == 1


def test_moving_a_reference_moves_the_pins(tenant: str) -> None:
    a = catalog.create_named(Product, tenant, ACTOR, {"name": "A"})
    b = catalog.create_named(Product, tenant, ACTOR, {"name": "B"})
    task = work.create_task(tenant, ACTOR, {"title": "T", "product_id": a.id})
    work.update_task(tenant, task.id, {"product_id": b.id}, ACTOR)

    assert (catalog.get(Product, tenant, a.id).ref_count, catalog.get(Product, tenant, b.id).ref_count) == (
        0,
        1,
    )
    with pytest.raises(ValidationError):
        work.update_task(tenant, task.id, {"product_id": "ghost"}, ACTOR)
    assert catalog.get(Task, tenant, task.id).product_id == b.id
    assert catalog.get(Product, tenant, b.id).ref_count == 1
    with pytest.raises(NotFound):
        work.update_task(tenant, "ghost", {"title": "x"}, ACTOR)
    # No stray item was created by a pin on a missing key
    assert common.find(Entity, Product.key(tenant, "ghost")) is None


def _dt(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
