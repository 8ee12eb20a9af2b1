"""Where a new invoice goes: the ONE resolver every path that creates invoices asks.

QuickBooks for a company that uses it (connected, or waiting for a reconnect: its work is parked
until then), local otherwise. A choice of QuickBooks without a connection is refused (422).
"""

from __future__ import annotations

from fieldbill.domain.model import Destination
from fieldbill.workflows.qbo_sync import enqueue


def resolve(tenant_id: str, chosen: Destination | None = None) -> Destination:
    """The destination of invoices about to be created for `tenant_id`."""
    return enqueue.checked_destination(tenant_id, chosen)
