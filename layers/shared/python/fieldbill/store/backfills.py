"""Back-fills: data written before a feature gets that feature's shape, once per tenant, at the
first read that needs it (there is no list of tenants to walk at deploy time, and a tenant that
never reads the feature pays nothing).

A back-fill must be safe to repeat (conditional writes): two first readers at once may both run
it; the marker is put after it completes, so a crash half way runs it again next time.
"""

from __future__ import annotations

from collections.abc import Callable

from fieldbill.clock import now_iso
from fieldbill.store import common
from fieldbill.store.models import META, Backfill

POSTED_INDEX = "posted_index"  # posted job invoices in the journal's index (store.jobs.index_posted)
WORKER_USERS = "worker_users"  # workers' user links claimed one to one (store.services.claim_worker_users)


# Back-fills this process knows are done: a warm function reads each tenant's marker once.
_known_done: set[tuple[str, str]] = set()


def forget() -> None:
    """Forget what this process knows (as a new process would)."""
    _known_done.clear()


def once(tenant_id: str, name: str, run: Callable[[str], object]) -> bool:
    """Run `run(tenant_id)` unless this tenant's `name` back-fill is done; True when it ran."""
    if (tenant_id, name) in _known_done:
        return False
    if common.find(Backfill, Backfill.key(tenant_id, name), META) is not None:
        _known_done.add((tenant_id, name))
        return False
    result = run(tenant_id)
    stamp = now_iso()
    Backfill(
        Backfill.key(tenant_id, name),
        META,
        tenant_id=tenant_id,
        id=name,
        result=str(result),
        created_at=stamp,
        updated_at=stamp,
    ).save()
    _known_done.add((tenant_id, name))
    return True
