"""Per-realm throttling: requests/minute and batches/minute (sliding window, emulated time) and
requests in flight."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from .clock import Clock
from .config import Settings

WINDOW = 60.0  # emulated seconds


@dataclass
class _RealmState:
    requests: deque[float] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class Limiter:
    def __init__(self, clock: Clock, settings: Settings) -> None:
        self.clock = clock
        self.settings = settings
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmState] = {}

    def acquire(self, realm: str, is_batch: bool) -> str | None:
        """Admit a request: returns None (and counts it in flight) or the name of the limit exceeded.
        Every admitted call must be paired with ``release``."""
        get = self.settings.get
        with self._lock:
            st = self._realms.setdefault(realm, _RealmState())
            if not get("limits_enabled", realm):
                st.in_flight += 1
                return None
            now = self.clock.now()
            for q in (st.requests, st.batches):
                while q and q[0] <= now - WINDOW:
                    q.popleft()
            if st.in_flight >= get("concurrent_requests", realm):
                return "concurrent_requests"
            if len(st.requests) >= get("requests_per_minute", realm):
                return "requests_per_minute"
            if is_batch and len(st.batches) >= get("batch_per_minute", realm):
                return "batch_per_minute"
            st.requests.append(now)
            if is_batch:
                st.batches.append(now)
            st.in_flight += 1
            return None

    def release(self, realm: str) -> None:
        with self._lock:
            st = self._realms.get(realm)
            if st is not None and st.in_flight > 0:
                st.in_flight -= 1

    def in_flight(self, realm: str) -> int:
        with self._lock:
            st = self._realms.get(realm)
            return st.in_flight if st else 0

    def reset(self, realm: str | None = None) -> None:
        with self._lock:
            if realm is None:
                for st in self._realms.values():
                    st.requests.clear()
                    st.batches.clear()
            elif realm in self._realms:
                self._realms[realm].requests.clear()
                self._realms[realm].batches.clear()
