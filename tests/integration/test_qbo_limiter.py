"""The per-realm limiter on the real (moto) table, with a controllable clock."""

from __future__ import annotations

import uuid

import pytest

from fieldbill.quickbooks.errors import Throttled
from fieldbill.quickbooks.limiter import SLOTS_PER_MINUTE, Permit, RateLimiter
from fieldbill.settings import get_settings

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: float) -> RateLimiter:
    values = {
        "qbo_requests_per_minute": 5,
        "qbo_max_concurrent": 2,
        "qbo_batches_per_minute": 1,
        "qbo_seconds_per_minute": 60.0,
    } | limits
    return RateLimiter(get_settings().model_copy(update=values), clock=clock, sleep=lambda s: None)


def test_requests_per_minute_is_a_sliding_window(stack):
    # Given a realm allowed 5 calls a minute
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock)
    for _ in range(5):
        got = rl.try_acquire(realm)
        assert isinstance(got, Permit)
        rl.release(got)
    # Then the sixth within the minute must wait until the first slot leaves the window
    wait = rl.try_acquire(realm)
    assert isinstance(wait, float) and 0 < wait <= 60 + 2 * 60 / SLOTS_PER_MINUTE
    clock.now += wait
    assert isinstance(rl.try_acquire(realm), Permit)


def test_concurrent_leases_and_batch_budget(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock, qbo_requests_per_minute=100)
    first, second = rl.try_acquire(realm), rl.try_acquire(realm)
    assert isinstance(first, Permit) and isinstance(second, Permit)
    assert isinstance(rl.try_acquire(realm), float)  # both leases held
    rl.release(first)
    third = rl.try_acquire(realm, batch=True)
    assert isinstance(third, Permit)
    rl.release(third)
    assert isinstance(rl.try_acquire(realm, batch=True), float)  # one batch a minute


def test_a_long_wait_raises_a_local_throttle_in_quickbooks_seconds(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock)
    rl.note_throttled(realm, 60)
    with pytest.raises(Throttled) as caught, rl.permit(realm, max_wait=2):
        pass
    assert caught.value.local and 55 <= caught.value.retry_after_seconds <= 60
    clock.now += 61
    with rl.permit(realm) as permit:
        assert permit.realm_id == realm
