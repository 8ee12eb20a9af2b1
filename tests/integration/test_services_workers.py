"""Workers linked to the tenant's users: a worker linked before the link was claimed
(user_id set, no claim item) is still found for its user."""

from __future__ import annotations

import pytest

from fieldbill.store import catalog, common
from fieldbill.store import services as store
from fieldbill.store.models import Worker


def test_a_worker_linked_before_claims_is_found_for_its_user(stack, tenant_id):
    # Given a worker written the old way (catalog only: no claim of its user)
    catalog.workers.create(tenant_id, "seed", {"id": "old", "name": "Old Timer", "user_id": "u-old"})
    # When its user asks for their worker, Then it is found
    assert store.worker_of_user(tenant_id, "u-old").id == "old"


def test_links_made_before_claims_are_claimed_once_the_oldest_keeps_a_shared_user(stack, tenant_id):
    import pytest

    from fieldbill.domain.errors import Conflict

    # Given workers linked the old way: one alone, two sharing a user (the older is "first"),
    # one already claimed the new way, one not linked at all
    store.create_worker(tenant_id, "seed", {"id": "new", "name": "New", "user_id": "u-new"})
    catalog.workers.create(tenant_id, "seed", {"id": "solo", "name": "Solo", "user_id": "u-solo"})
    catalog.workers.create(tenant_id, "seed", {"id": "zed", "name": "Zed First", "user_id": "u-both"})
    catalog.workers.create(tenant_id, "seed", {"id": "amy", "name": "Amy Second", "user_id": "u-both"})
    catalog.workers.create(tenant_id, "seed", {"id": "free", "name": "Free"})
    # (zed was linked first; two creates may share a millisecond, so say so)
    zed = common.get(Worker, Worker.key(tenant_id, "zed"))
    zed.update(actions=[Worker.created_at.set("2020-01-01T00:00:00.000Z")])
    # When the tenant's links are claimed (twice: safe to repeat)
    report = store.claim_worker_users(tenant_id)
    assert report.claimed == 2
    assert report.shared == {"u-both": ("zed", ["amy"])}  # the oldest keeps it, the other is reported
    again = store.claim_worker_users(tenant_id)
    assert again.claimed == 0 and again.shared == {"u-both": ("zed", ["amy"])}
    # Then each old link is protected like a new one: a second link of its user is refused
    with pytest.raises(Conflict, match="worker 'solo'"):
        store.create_worker(tenant_id, "seed", {"id": "dup", "name": "Dup", "user_id": "u-solo"})
    with pytest.raises(Conflict, match="worker 'zed'"):
        store.create_worker(tenant_id, "seed", {"id": "dup2", "name": "Dup", "user_id": "u-both"})
    assert store.worker_of_user(tenant_id, "u-both").id == "zed"
    # and unlinking the holder frees the user for someone else
    store.update_worker(tenant_id, "solo", {"user_id": None}, "seed")
    assert (
        store.create_worker(tenant_id, "seed", {"id": "next", "name": "Next", "user_id": "u-solo"}).id
        == "next"
    )


def test_linking_a_user_an_old_worker_holds_is_refused_without_running_anything_first(stack, tenant_id):
    """The back-fill of old links runs at the tenant's first link (store/backfills.py), so a
    user linked before claims existed is protected without anyone running it by hand."""
    from fieldbill.domain.errors import Conflict

    # Given a worker linked the old way (no claim)
    catalog.workers.create(tenant_id, "seed", {"id": "old", "name": "Old", "user_id": "u-old"})
    # When another worker is linked to the same user, through the store as the API does
    with pytest.raises(Conflict, match="worker 'old'"):
        store.create_worker(tenant_id, "seed", {"id": "dup", "name": "Dup", "user_id": "u-old"})
    catalog.workers.create(tenant_id, "seed", {"id": "plain", "name": "Plain"})
    with pytest.raises(Conflict, match="worker 'old'"):
        store.update_worker(tenant_id, "plain", {"user_id": "u-old"}, "seed")
    # Then nothing was written for the refused links
    assert store.worker_of_user(tenant_id, "u-old").id == "old"
