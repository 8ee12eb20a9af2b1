"""An invoice group's charts and totals (issue 16 item 6), pure.

- By status: draft, unpaid (open or partly paid), paid; void and deleted invoices are counted
  apart and in no chart or total.
- Aging of what is unpaid, by days past the due date: current (not yet due, or no due date),
  1-30, 31-60, 61-90, over 90.
- Email status: the delivery status of each invoice's latest email (not_sent when never emailed).
- Collected: what was paid on the group's invoices; uncollected: their open balances.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal("0.00")
STATUS_BUCKETS = ("draft", "unpaid", "paid")
AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")
LEFT_OUT = ("void", "deleted")


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    status: str
    total: Decimal
    balance: Decimal
    amount_paid: Decimal
    due_date: date | None
    delivery_status: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    invoices: int
    left_out: int
    by_status: dict[str, dict[str, object]]
    aging: dict[str, dict[str, object]]
    email: dict[str, int]
    collected: Decimal
    uncollected: Decimal


def status_bucket(status: str) -> str | None:
    if status == "draft":
        return "draft"
    if status in ("open", "partially_paid"):
        return "unpaid"
    if status == "paid":
        return "paid"
    return None


def aging_bucket(due: date | None, today: date) -> str:
    late = (today - due).days if due is not None else 0
    if late <= 0:
        return "current"
    if late <= 30:
        return "1_30"
    if late <= 60:
        return "31_60"
    if late <= 90:
        return "61_90"
    return "over_90"


def summarize(members: Iterable[Member], today: date) -> Summary:
    by_status: dict[str, dict[str, object]] = {b: {"count": 0, "amount": ZERO} for b in STATUS_BUCKETS}
    aging: dict[str, dict[str, object]] = {b: {"count": 0, "amount": ZERO} for b in AGING_BUCKETS}
    email: dict[str, int] = {}
    collected = uncollected = ZERO
    counted = left_out = 0
    for m in members:
        bucket = status_bucket(m.status)
        if bucket is None:
            left_out += 1
            continue
        counted += 1
        by_status[bucket]["count"] = int(str(by_status[bucket]["count"])) + 1
        by_status[bucket]["amount"] = Decimal(str(by_status[bucket]["amount"])) + m.total
        delivery = m.delivery_status or "not_sent"
        email[delivery] = email.get(delivery, 0) + 1
        collected += m.amount_paid
        if bucket == "unpaid":
            uncollected += m.balance
            age = aging_bucket(m.due_date, today)
            aging[age]["count"] = int(str(aging[age]["count"])) + 1
            aging[age]["amount"] = Decimal(str(aging[age]["amount"])) + m.balance
    return Summary(counted, left_out, by_status, aging, email, collected, uncollected)


def is_unpaid(status: str) -> bool:
    """What "email unpaid" sends: drafts and open or partly paid invoices."""
    return status in ("draft", "open", "partially_paid")
