"""QuickBooks limits per company (realm), shared by every worker through the table: the policy
here, the items' reads and conditional writes in store/rate_limits.py.

Three limits (QuickBooks counts a batch call as a request too):
- requests per minute: a sliding window kept as SLOTS_PER_MINUTE small counters (one item each).
  Past slots never change, so the allowance of the current slot is `limit - sum(previous slots)`
  and one conditional ADD enforces it exactly, with no lock. The window summed is one slot longer
  than a minute, so a sliding one-minute window on QuickBooks' side can never see more than the
  limit (at most one slot, ~3 %, of throughput given up).
- batch requests per minute: the same, on its own counters.
- concurrent requests: `max_concurrent` lease items; a lease expires on its own if a worker dies.

Spare calls (single creates sent while the batch budget is spent, docs/sync.md §4) are optional
traffic: they leave `spare_reserve` of the minute's requests to the others, keep to QuickBooks'
10 requests a second within each slot, and a 429 on one stops only spare calls for a while.

Time: one QuickBooks minute lasts `settings.qbo_seconds_per_minute` real seconds (60 in production).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fieldbill.quickbooks.errors import DEFAULT_THROTTLE_SECONDS, Throttled
from fieldbill.settings import get_settings
from fieldbill.store.rate_limits import RateItem, RateKeys, RateSlots

if TYPE_CHECKING:
    from fieldbill.settings.model import Settings

SLOTS_PER_MINUTE = 30
# Waits up to this many real seconds happen inside the function; longer ones go back to the queue.
DEFAULT_MAX_WAIT_SECONDS = 2.0
LEASE_MARGIN_SECONDS = 5.0
# A 429 without Retry-After: the first cool-down (QuickBooks seconds), doubled per consecutive 429.
FIRST_COOLDOWN_QBO_SECONDS = 5.0
# At most this many calls between the end of a cool-down and the next 429: the 429s are consecutive.
CONSECUTIVE_CALLS = 3
# Requests a minute spare calls leave to the others (batch calls count as requests too).
SPARE_RESERVE = 100
# QuickBooks' per-second request limit, which spare calls could otherwise reach in bursts.
REQUESTS_PER_QBO_SECOND = 10
# A 429 on a spare call (no Retry-After): spare calls stop this long; the others go on.
SPARE_COOLDOWN_QBO_SECONDS = 10.0


@dataclass(frozen=True)
class Permit:
    realm_id: str
    lease_sk: str
    lease_id: str
    batch: bool


class RateLimiter:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        client: Any = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.clock = clock
        self.sleep = sleep
        self.slots = RateSlots(self.settings.table_name, client)
        self.spare_reserve = SPARE_RESERVE

    # ------------------------------------------------------------------ derived values

    @property
    def minute(self) -> float:
        return float(self.settings.qbo_seconds_per_minute)

    @property
    def slot_seconds(self) -> float:
        return self.minute / SLOTS_PER_MINUTE

    def to_qbo_seconds(self, real_seconds: float) -> float:
        return real_seconds * 60.0 / self.minute

    def to_real_seconds(self, qbo_seconds: float) -> float:
        return qbo_seconds * self.minute / 60.0

    def _request_limit(self, spare: bool) -> int:
        limit = int(self.settings.qbo_requests_per_minute)
        return max(1, limit - self.spare_reserve) if spare else limit

    def _slot_cap(self, spare: bool) -> int | None:
        return (
            max(1, int(REQUESTS_PER_QBO_SECOND * self.to_qbo_seconds(self.slot_seconds))) if spare else None
        )

    # ------------------------------------------------------------------ public
    def try_acquire(self, realm_id: str, *, batch: bool = False, spare: bool = False) -> Permit | float:
        """A permit, or the real seconds to wait before trying again."""
        lease = self._take_lease(realm_id, spare=spare)
        if isinstance(lease, float):
            return lease
        sk, lease_id = lease
        permit = Permit(realm_id, sk, lease_id, batch)
        if batch:
            wait = self._count(realm_id, RateKeys.batch_slot, self.settings.qbo_batches_per_minute)
            if wait:
                self.release(permit)
                return wait
        wait = self._count(
            realm_id, RateKeys.request_slot, self._request_limit(spare), slot_cap=self._slot_cap(spare)
        )
        if wait:
            self.release(permit)
            return wait
        return permit

    def estimate(self, realm_id: str, *, batch: bool = False, spare: bool = False) -> float:
        """Real seconds until a call could start (0.0: now), taking nothing: lets a worker give its
        records back before preparing work that could not be sent for a while."""
        now = self.clock()
        waits = [0.0]
        last = RateKeys.spare_cooldown() if spare else RateKeys.cooldown()
        for item in self.slots.between(realm_id, RateKeys.cooldown(), last):
            if item.expires is not None:
                waits.append(item.expires - now)
        if batch:
            waits.append(
                self._window_wait(realm_id, RateKeys.batch_slot, self.settings.qbo_batches_per_minute)
            )
        waits.append(
            self._window_wait(
                realm_id, RateKeys.request_slot, self._request_limit(spare), self._slot_cap(spare)
            )
        )
        return max(waits)

    def _window_wait(
        self, realm_id: str, slot_key: Callable[[int], str], limit: int, slot_cap: int | None = None
    ) -> float:
        now = self.clock()
        slot = int(now // self.slot_seconds)
        first = slot - SLOTS_PER_MINUTE
        counts = self._counts(realm_id, slot_key(first), slot_key(slot))
        previous = [(s, counts.get(slot_key(s), 0)) for s in range(first, slot)]
        current = counts.get(slot_key(slot), 0)
        used = sum(n for _, n in previous) + current
        if used >= limit:
            return self._wait(previous, used - limit + 1, slot, now)
        if slot_cap is not None and current >= slot_cap:
            return max(0.01, (slot + 1) * self.slot_seconds - now)
        return 0.0

    def release(self, permit: Permit) -> None:
        self.slots.release_lease(permit.realm_id, permit.lease_sk, permit.lease_id)

    def note_throttled(
        self, realm_id: str, qbo_seconds: float | None = None, *, spare: bool = False
    ) -> float:
        """QuickBooks answered 429: every worker holds off this realm. Returns the cool-down applied,
        in QuickBooks seconds.

        With a Retry-After (`qbo_seconds`) that is the cool-down. Without one, the cool-down grows
        with consecutive 429s: 5, 10, 20, 40, then Intuit's 60 seconds. Our own counters already keep
        us under the published limits, so a lone 429 is an outlier, and a full minute of silence per
        outlier would cost a large share of a run. A 429 is consecutive when it comes within one
        cool-down of the previous cool-down's end and at most CONSECUTIVE_CALLS calls went out
        since that end (read from our own request counters): in a storm (the limits are lower than
        we think) the first calls after each cool-down are refused again at once, which reaches
        Intuit's 60 s after four strikes.
        """
        now = self.clock()
        if spare:
            # Optional traffic: it stops; the realm's batches and other calls go on (a real storm
            # refuses them too, and they cool the realm down themselves).
            return self._put_cooldown(
                realm_id, RateKeys.spare_cooldown(), now, qbo_seconds or SPARE_COOLDOWN_QBO_SECONDS, 1
            )
        strikes = 1
        if qbo_seconds is None:
            current = self._cooldown_item(realm_id)
            if current is not None and current.seconds is not None and current.expires is not None:
                ended = current.expires
                # Within one cool-down of the last one's end: a realm left idle for longer by its
                # records' back-off was not refused again, it was not asked.
                soon = min(self.minute, self.to_real_seconds(current.seconds))
                if now - ended < soon and self._calls_since(realm_id, ended) <= CONSECUTIVE_CALLS:
                    strikes = (current.strikes or 0) + 1
            qbo_seconds = min(DEFAULT_THROTTLE_SECONDS, FIRST_COOLDOWN_QBO_SECONDS * 2 ** (strikes - 1))
        return self._put_cooldown(realm_id, RateKeys.cooldown(), now, qbo_seconds, strikes)

    def _put_cooldown(self, realm_id: str, sk: str, now: float, qbo_seconds: float, strikes: int) -> float:
        """Write a cool-down that only ever extends; returns the one in force (QuickBooks seconds)."""
        until = now + self.to_real_seconds(qbo_seconds)
        if not self.slots.extend_cooldown(realm_id, sk, until, strikes, qbo_seconds):
            # a longer cool-down is already in place
            current = self._cooldown_item(realm_id, sk)
            if current is not None and current.expires is not None:
                qbo_seconds = max(qbo_seconds, self.to_qbo_seconds(current.expires - now))
        return float(qbo_seconds)

    def _calls_since(self, realm_id: str, since: float) -> int:
        """Calls counted from the slot of `since` on (the slot is the resolution)."""
        first = int(since // self.slot_seconds)
        last = int(self.clock() // self.slot_seconds)
        return sum(self._counts(realm_id, RateKeys.request_slot(first), RateKeys.request_slot(last)).values())

    def _cooldown_item(self, realm_id: str, sk: str | None = None) -> RateItem | None:
        item = self.slots.get(realm_id, sk or RateKeys.cooldown())
        return item if item is not None and item.expires is not None else None

    @contextmanager
    def permit(
        self, realm_id: str, *, batch: bool = False, max_wait: float | None = None, spare: bool = False
    ) -> Iterator[Permit]:
        """Hold a permit for one call. Short waits are slept here; a long one raises a local Throttled
        whose retry_after is in QuickBooks seconds, so the message goes back to the queue."""
        budget = DEFAULT_MAX_WAIT_SECONDS if max_wait is None else max_wait
        waited = 0.0
        while True:
            got = self.try_acquire(realm_id, batch=batch, spare=spare)
            if isinstance(got, Permit):
                break
            if waited + got > budget:
                raise Throttled(
                    self.to_qbo_seconds(got), local=True, message=f"limiter: realm busy for {got:.2f}s"
                )
            pause = got * random.uniform(1.0, 1.2)
            self.sleep(pause)
            waited += pause
        try:
            yield got
        finally:
            self.release(got)

    # ------------------------------------------------------------------ internals
    def _take_lease(self, realm_id: str, *, spare: bool = False) -> tuple[str, str] | float:
        now = self.clock()
        limit = int(self.settings.qbo_max_concurrent)
        items = self.slots.between(realm_id, *RateKeys.leases())
        held = {it.sk: it.expires for it in items if it.expires is not None}
        cooling = held.pop(RateKeys.cooldown(), 0.0)
        spare_cooling = held.pop(RateKeys.spare_cooldown(), 0.0)
        if spare:
            cooling = max(cooling, spare_cooling)
        if cooling > now:
            return float(cooling - now)
        free = [RateKeys.lease(i) for i in range(limit) if held.get(RateKeys.lease(i), 0.0) <= now]
        random.shuffle(free)
        lease_id = secrets.token_hex(8)
        expires = now + float(self.settings.qbo_http_timeout_seconds) + LEASE_MARGIN_SECONDS
        for sk in free[:3]:
            if self.slots.take_lease(realm_id, sk, lease_id, expires, now):
                return sk, lease_id
        # All leases busy: calls are short, so look again soon (the earliest expiry bounds it).
        soonest = min((e for e in held.values() if e > now), default=now)
        return float(min(max(0.02, self.slot_seconds / 10), max(0.02, soonest - now)))

    def _count(
        self, realm_id: str, slot_key: Callable[[int], str], limit: int, *, slot_cap: int | None = None
    ) -> float:
        """0.0 when one more call was counted in the current slot, else the real seconds to wait.
        `slot_cap`: at most this many in the current slot (then wait for the next one)."""
        for _ in range(3):
            now = self.clock()
            slot = int(now // self.slot_seconds)
            first = slot - SLOTS_PER_MINUTE  # one slot more than a minute: see module docstring
            counts = self._counts(realm_id, slot_key(first), slot_key(slot))
            previous = [(s, counts.get(slot_key(s), 0)) for s in range(first, slot)]
            used_before = sum(n for _, n in previous)
            current = counts.get(slot_key(slot), 0)
            allowance = limit - used_before
            if current >= allowance:
                return self._wait(previous, used_before + current - limit + 1, slot, now)
            if slot_cap is not None and current >= slot_cap:
                return max(0.01, (slot + 1) * self.slot_seconds - now)
            if slot_cap is not None:
                allowance = min(allowance, slot_cap)
            if self.slots.count(realm_id, slot_key(slot), allowance, ttl=int(now + 2 * self.minute + 3600)):
                return 0.0
        return self.slot_seconds

    def _wait(self, previous: list[tuple[int, int]], deficit: int, slot: int, now: float) -> float:
        """Until enough of the oldest slots leave the window to free `deficit` calls."""
        freed = 0
        for s, n in previous:
            freed += n
            if freed >= deficit:
                return max(0.01, (s + SLOTS_PER_MINUTE + 1) * self.slot_seconds - now)
        return max(0.01, (slot + SLOTS_PER_MINUTE + 1) * self.slot_seconds - now)

    def _counts(self, realm_id: str, low: str, high: str) -> dict[str, int]:
        """sk -> calls counted, for the realm's slots between `low` and `high`."""
        return {it.sk: it.n for it in self.slots.between(realm_id, low, high) if it.n is not None}


_default: RateLimiter | None = None


def default_limiter() -> RateLimiter:
    global _default
    if _default is None or _default.settings is not get_settings():
        _default = RateLimiter()
    return _default
