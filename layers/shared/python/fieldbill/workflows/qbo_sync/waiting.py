"""Why an invoice's sync is waiting, and until when (issue 15 item 7): shown on the invoice.

An invoice queued for QuickBooks (`pending`, or `unknown` while a lost answer is looked up) waits
when its company cannot be called now:
- `disconnected` / `needs_reconnect`: its messages are parked until the company connects again
  (docs/sync.md §2); no retry time: a person must reconnect (GET /quickbooks/connect);
- `throttled`: QuickBooks answered 429 and the whole company cools down (the limiter's cool-down
  item, store/rate_limits.py): retry at its end;
- `rate_limited`: our limiter has spent the company's budget of the minute (QuickBooks' published
  limits): retry when the window frees a call;
- `desktop_connection` (issue 17): a QuickBooks Desktop invoice is never sent to QuickBooks Online;
  it waits here, not synced, for the Desktop connection to take it.
Read-only: nothing here changes the sync; it reads the connection and the limiter's items.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fieldbill.domain.model import Destination, SyncStatus
from fieldbill.store import connections

WAITING = (SyncStatus.PENDING, SyncStatus.UNKNOWN)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def sync_wait(tenant_id: str, destination: str, sync_status: str) -> dict[str, Any] | None:
    """{reason, retry_at, detail} when the invoice's sync waits on its company, else None."""
    if destination == Destination.QUICKBOOKS_DESKTOP and sync_status == SyncStatus.NOT_SYNCED:
        return {
            "reason": "desktop_connection",
            "retry_at": None,
            "detail": "a QuickBooks Desktop invoice: it waits here for the Desktop connection to take it",
        }
    if destination != Destination.QUICKBOOKS or sync_status not in WAITING:
        return None
    record = connections.get(tenant_id, consistent=False)
    status = str(record.status) if record is not None else "disconnected"
    if status != "connected" or record is None or not record.realm_id:
        return {
            "reason": status if status == "needs_reconnect" else "disconnected",
            "retry_at": None,
            "detail": "QuickBooks must be connected again (GET /quickbooks/connect); the sync then resumes",
        }
    from fieldbill.quickbooks.limiter import default_limiter  # lazy: the API's cold start
    from fieldbill.store.rate_limits import RateKeys

    limiter = default_limiter()
    now = limiter.clock()
    cooldown = limiter.slots.get(str(record.realm_id), RateKeys.cooldown())
    if cooldown is not None and cooldown.expires is not None and cooldown.expires > now:
        return {
            "reason": "throttled",
            "retry_at": _iso(cooldown.expires),
            "detail": "QuickBooks asked us to slow down (HTTP 429): the company's calls pause until then",
        }
    wait = limiter.estimate(str(record.realm_id))
    if wait > 0:
        return {
            "reason": "rate_limited",
            "retry_at": _iso(now + wait),
            "detail": "the company's QuickBooks calls of this minute are spent; the next frees then",
        }
    return None
