"""Pins local/moto_dynamodb.py: transactions still roll back, and concurrent writers are safe."""

from __future__ import annotations

import threading
import uuid

import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.store.common import connection
from fieldbill.store.models import META, Contact, Entity


def _contact(tenant: str, cid: str, name: str = "n") -> Contact:
    return Contact(pk=Contact.key(tenant, cid), sk=META, tenant_id=tenant, id=cid, name=name)


def test_a_failed_transaction_leaves_every_item_as_it_was(stack, tenant_id):
    # Given one existing contact
    existing = _contact(tenant_id, "a", "before")
    existing.save()
    # When a transaction updates it, creates another, then fails a condition on a third
    with pytest.raises(TransactWriteError), TransactWrite(connection=connection()) as tx:
        tx.update(existing, actions=[Contact.name.set("after")])
        tx.save(_contact(tenant_id, "b"), condition=Entity.pk.does_not_exist())
        tx.save(_contact(tenant_id, "a"), condition=Entity.pk.does_not_exist())  # fails: exists
    # Then nothing of it is written
    assert Entity.get(Contact.key(tenant_id, "a"), META).name == "before"
    assert Entity.count(Contact.key(tenant_id, "b")) == 0


def test_concurrent_transactions_from_threads_all_apply(stack, tenant_id):
    def write(n: int) -> None:
        for k in range(20):
            with TransactWrite(connection=connection()) as tx:
                for j in range(5):
                    tx.save(_contact(tenant_id, f"{n}-{k}-{j}-{uuid.uuid4().hex[:4]}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    count = sum(1 for r in Entity.scan(Entity.tenant_id == tenant_id))
    assert count == 4 * 20 * 5
