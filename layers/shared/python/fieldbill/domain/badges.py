"""The status badges web clients show (integration guide: invoices; billing page: services).

Invoice: where the document lives and how its sync stands.
- QBO: in QuickBooks Online (synced).
- Pending: for QuickBooks, not there yet (queued, or its outcome being checked).
- Error: QuickBooks (or our set-up check) refused it; `detail` carries the code, message, detail
  and element to show on click.
- Local: kept only here; never synced.

Billable service (item): its invoice destination.
- Unbillable: marked not billable (or withdrawn).
- Invoiced: the badge of its invoice.
- Not invoiced yet: the destination its invoice will have (QBO when the company uses QuickBooks,
  else Local), as the billing page shows before anyone creates the invoice.

Pure functions of stored values: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fieldbill.domain.model import Destination, ItemStatus, SyncStatus


class Badge(enum.StrEnum):
    QBO = "QBO"
    PENDING = "Pending"
    ERROR = "Error"
    LOCAL = "Local"
    UNBILLABLE = "Unbillable"
    # Issue 17: a QuickBooks Desktop invoice (waits here for the Desktop connection).
    QBD = "QBD"


ERROR_FIELDS = ("code", "message", "detail", "element")


@dataclass(frozen=True)
class BadgeView:
    badge: Badge
    detail: dict[str, Any] | None = None

    def as_map(self) -> dict[str, Any]:
        return {"badge": str(self.badge), "badge_detail": self.detail}


def invoice_badge(destination: str, sync_status: str, sync_error: Mapping[str, Any] | None) -> BadgeView:
    if Destination(destination) is Destination.LOCAL:
        return BadgeView(Badge.LOCAL)
    if Destination(destination) is Destination.QUICKBOOKS_DESKTOP:
        return BadgeView(Badge.QBD)
    status = SyncStatus(sync_status)
    if status is SyncStatus.SYNCED:
        return BadgeView(Badge.QBO)
    if status is SyncStatus.ERROR:
        error = dict(sync_error or {})
        return BadgeView(Badge.ERROR, {k: error.get(k) for k in ERROR_FIELDS})
    return BadgeView(Badge.PENDING)


def destination_badge(destination: str) -> BadgeView:
    if Destination(destination) is Destination.QUICKBOOKS_DESKTOP:
        return BadgeView(Badge.QBD)
    return BadgeView(Badge.QBO if Destination(destination) is Destination.QUICKBOOKS else Badge.LOCAL)


def item_badge(item_status: str, invoice: BadgeView | None, default_destination: str) -> BadgeView:
    """`invoice`: the badge of the item's invoice (None when not invoiced or not found)."""
    status = ItemStatus(item_status)
    if status in (ItemStatus.UNBILLABLE, ItemStatus.VOID):
        return BadgeView(Badge.UNBILLABLE)
    if status is ItemStatus.INVOICED and invoice is not None:
        return invoice
    return destination_badge(default_destination)
