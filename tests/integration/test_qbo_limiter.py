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


def test_a_429_without_retry_after_cools_down_longer_only_while_429s_follow_each_other(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock)
    # A lone 429: a short cool-down (our counters keep us under the limits: it is an outlier)
    assert rl.note_throttled(realm) == 5
    # Refused again right after each cool-down: a storm, so it doubles up to Intuit's 60 s
    for expected in (10, 20, 40, 60, 60):
        clock.now = _cooldown_end(rl, realm) + 1
        assert rl.note_throttled(realm) == expected
    # Calls went through after the cool-down: the next 429 is an outlier again, 5 s
    clock.now = _cooldown_end(rl, realm) + 1
    for _ in range(4):
        permit = rl.try_acquire(realm)
        assert isinstance(permit, Permit)
        rl.release(permit)
    assert rl.note_throttled(realm) == 5
    # A Retry-After is taken as it is, and a cool-down never shortens
    assert rl.note_throttled(realm, 30) == 30
    assert rl.note_throttled(realm, 2) >= 29


def test_a_429_after_the_realm_sat_idle_past_the_cool_down_is_not_consecutive(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock)
    assert rl.note_throttled(realm) == 5
    # Nothing was sent for longer than the cool-down (records waited out their back-off): the next
    # 429 was not a refusal of the calls right after the cool-down, so it is an outlier again
    clock.now = _cooldown_end(rl, realm) + 6
    assert rl.note_throttled(realm) == 5
    # Refused right after the cool-down: consecutive
    clock.now = _cooldown_end(rl, realm) + 1
    assert rl.note_throttled(realm) == 10


def _cooldown_end(rl: RateLimiter, realm: str) -> float:
    item = rl._cooldown_item(realm)
    assert item is not None and item.expires is not None
    return item.expires


def test_estimate_tells_the_wait_without_taking_anything(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock, qbo_requests_per_minute=100)
    assert rl.estimate(realm, batch=True) == 0.0
    assert rl.estimate(realm, batch=True) == 0.0  # nothing was counted
    permit = rl.try_acquire(realm, batch=True)
    assert isinstance(permit, Permit)
    rl.release(permit)
    assert 0 < rl.estimate(realm, batch=True) <= 60 + 2 * 60 / SLOTS_PER_MINUTE  # one batch a minute
    assert rl.estimate(realm) == 0.0  # single calls still have budget
    rl.note_throttled(realm, 30)
    assert 29 <= rl.estimate(realm) <= 30


def test_spare_calls_leave_a_reserve_of_the_minute_to_the_others(stack):
    # Given a realm allowed 10 calls a minute, 4 of them kept from spare calls
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock, qbo_requests_per_minute=10, qbo_max_concurrent=10)
    rl.spare_reserve = 4
    # When spare calls take what they may
    taken = 0
    while isinstance(got := rl.try_acquire(realm, spare=True), Permit):
        rl.release(got)
        taken += 1
        assert taken <= 10
    # Then they stopped at 6, the estimate for a spare call says wait, and ordinary calls and a
    # batch still go
    assert taken == 6
    assert rl.estimate(realm, spare=True) > 0 and rl.estimate(realm) == 0.0
    for _ in range(4):
        got = rl.try_acquire(realm)
        assert isinstance(got, Permit)
        rl.release(got)


def test_spare_calls_keep_to_quickbooks_ten_a_second_within_one_slot(stack):
    # Given a realm with a large minute budget (the per-second limit is what binds)
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock, qbo_requests_per_minute=500, qbo_max_concurrent=10)
    clock.now = (int(clock.now // rl.slot_seconds) + 0.1) * rl.slot_seconds  # early in a slot
    per_slot = int(10 * rl.slot_seconds * 60 / rl.minute)
    taken = 0
    while isinstance(got := rl.try_acquire(realm, spare=True), Permit):
        rl.release(got)
        taken += 1
        assert taken <= 100
    # Then one slot took 10 calls a QuickBooks second, and the wait is to the next slot
    assert taken == per_slot
    wait = rl.try_acquire(realm, spare=True)
    assert isinstance(wait, float) and 0 < wait <= rl.slot_seconds


def test_a_429_on_a_spare_call_stops_spare_calls_only(stack):
    clock, realm = Clock(), f"r-{uuid.uuid4().hex[:8]}"
    rl = limiter(clock, qbo_requests_per_minute=100, qbo_max_concurrent=10)
    rl.spare_reserve = 10
    # When QuickBooks refuses a spare call
    cooled = rl.note_throttled(realm, spare=True)
    # Then spare calls wait that long, ordinary calls and batches do not wait at all
    assert cooled > 0
    assert isinstance(rl.try_acquire(realm, spare=True), float)
    assert rl.estimate(realm, spare=True) > 0
    assert rl.estimate(realm, batch=True) == 0.0
    got = rl.try_acquire(realm, batch=True)
    assert isinstance(got, Permit)
    rl.release(got)
    clock.now += rl.to_real_seconds(cooled) + 0.01
    assert isinstance(rl.try_acquire(realm, spare=True), Permit)
