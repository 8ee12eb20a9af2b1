"""An invoice group's charts and totals, pure (issue 16 item 6): status buckets, the
aging edges (current, 1-30, 31-60, 61-90, over 90 days past due), email status, collected and
uncollected, void and deleted left out."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from fieldbill.domain.invoice_groups import Member, aging_bucket, summarize

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("days_late", "bucket"),
    [(-5, "current"), (0, "current"), (1, "1_30"), (30, "1_30"), (31, "31_60"), (60, "31_60"),
     (61, "61_90"), (90, "61_90"), (91, "over_90"), (400, "over_90")],
)  # fmt: skip
def test_aging_buckets_by_days_past_due(days_late: int, bucket: str):
    assert aging_bucket(TODAY - timedelta(days=days_late), TODAY) == bucket


def test_no_due_date_is_current():
    assert aging_bucket(None, TODAY) == "current"


def _m(
    status: str, total: str, balance: str, paid: str = "0", late: int = 0, email: str | None = None
) -> Member:
    return Member(
        status=status,
        total=Decimal(total),
        balance=Decimal(balance),
        amount_paid=Decimal(paid),
        due_date=TODAY - timedelta(days=late),
        delivery_status=email,
    )


def test_a_group_charts_status_aging_email_and_collected_and_uncollected():
    summary = summarize(
        [
            _m("draft", "50.00", "50.00"),
            _m("open", "100.00", "100.00", late=45, email="sent"),
            _m("partially_paid", "80.00", "30.00", paid="50.00", late=95, email="delivered"),
            _m("paid", "40.00", "0.00", paid="40.00", late=10, email="delivered"),
            _m("void", "999.00", "0.00"),
            _m("deleted", "5.00", "5.00"),
        ],
        TODAY,
    )
    assert (summary.invoices, summary.left_out) == (4, 2)
    assert summary.by_status == {
        "draft": {"count": 1, "amount": Decimal("50.00")},
        "unpaid": {"count": 2, "amount": Decimal("180.00")},
        "paid": {"count": 1, "amount": Decimal("40.00")},
    }
    # aging counts what is still owed on unpaid invoices only (a paid one owes nothing, however late)
    assert summary.aging["31_60"] == {"count": 1, "amount": Decimal("100.00")}
    assert summary.aging["over_90"] == {"count": 1, "amount": Decimal("30.00")}
    assert summary.aging["1_30"] == {"count": 0, "amount": Decimal("0.00")}
    assert summary.email == {"not_sent": 1, "sent": 1, "delivered": 2}
    assert (summary.collected, summary.uncollected) == (Decimal("90.00"), Decimal("130.00"))
