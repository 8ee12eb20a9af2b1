"""Time in one place, so tests can reason about it."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
