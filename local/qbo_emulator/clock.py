"""Emulated clock: real time scaled by ``time_scale`` (60.0 = one emulated minute per real second)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone


class Clock:
    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self._lock = threading.Lock()
        self._real0 = time.monotonic()
        self._emu0 = (start or datetime.now(UTC)).timestamp()
        self._scale = float(time_scale)

    @property
    def time_scale(self) -> float:
        return self._scale

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        with self._lock:
            now = self._now_unlocked()
            self._real0 = time.monotonic()
            self._emu0 = now
            self._scale = float(time_scale)

    def advance(self, seconds: float) -> None:
        """Jump emulated time forward (tokens expire, limit windows pass)."""
        with self._lock:
            self._emu0 += seconds

    def _now_unlocked(self) -> float:
        return self._emu0 + (time.monotonic() - self._real0) * self._scale

    def now(self) -> float:
        """Emulated epoch seconds."""
        with self._lock:
            return self._now_unlocked()

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def real_seconds(self, emulated_seconds: float) -> float:
        return emulated_seconds / self._scale


def company_tz(offset_minutes: int) -> timezone:
    return timezone(timedelta(minutes=offset_minutes))


def fmt_time(ts: float, offset_minutes: int = -420, millis: bool = False) -> str:
    """QuickBooks style timestamp in the company's zone, e.g. ``2024-05-01T10:20:30-07:00``."""
    dt = datetime.fromtimestamp(ts, company_tz(offset_minutes))
    return dt.isoformat(timespec="milliseconds" if millis else "seconds")


def fmt_date(ts: float, offset_minutes: int = -420) -> str:
    return datetime.fromtimestamp(ts, company_tz(offset_minutes)).date().isoformat()


def fmt_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str, offset_minutes: int = -420) -> datetime:
    """Parse an ISO date or datetime; naive values are taken in the company zone."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=company_tz(offset_minutes))
    return dt
