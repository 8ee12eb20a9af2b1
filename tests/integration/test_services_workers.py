"""Workers linked to the tenant's users: a worker linked before the link was claimed
(user_id set, no claim item) is still found for its user."""

from __future__ import annotations

from fieldbill.store import catalog
from fieldbill.store import services as store


def test_a_worker_linked_before_claims_is_found_for_its_user(stack, tenant_id):
    # Given a worker written the old way (catalog only: no claim of its user)
    catalog.workers.create(tenant_id, "seed", {"id": "old", "name": "Old Timer", "user_id": "u-old"})
    # When its user asks for their worker, Then it is found
    assert store.worker_of_user(tenant_id, "u-old").id == "old"
