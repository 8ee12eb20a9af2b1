"""Time in one place, so tests can reason about it."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def today() -> date:
    """Today's date in UTC (due dates and overdue are days, not instants)."""
    return now().date()
