"""The sync back-off policy: pure functions, no queue, no clock, no settings."""

from __future__ import annotations

import pytest

from fieldbill.workflows.qbo_sync import backoff


def lowest(a: float, b: float) -> float:
    return a


def highest(a: float, b: float) -> float:
    return b


def test_transient_back_off_grows_by_half_per_receive_up_to_fifteen_minutes() -> None:
    # Given the receives of one message / Then 4 s, 6 s, 9 s, 13.5 s … capped at 15 QuickBooks minutes
    waits = [backoff.transient_backoff_qbo_seconds(n) for n in range(1, 6)]
    assert waits == [4.0, 6.0, 9.0, 13.5, 20.25]
    assert backoff.transient_backoff_qbo_seconds(0) == 4.0  # an unknown count is a first receive
    assert backoff.transient_backoff_qbo_seconds(15) == 900.0
    assert backoff.transient_backoff_qbo_seconds(10_000) == 900.0  # no float overflow
    # And 25 receives span more than three hours of an outage before the DLQ
    assert sum(backoff.transient_backoff_qbo_seconds(n) for n in range(1, 26)) > 3 * 3600


def test_a_parked_message_looks_again_after_one_two_four_minutes_up_to_an_hour() -> None:
    assert [backoff.reconnect_wait_qbo_seconds(n) for n in (1, 2, 3, 4)] == [60.0, 120.0, 240.0, 480.0]
    assert backoff.reconnect_wait_qbo_seconds(7) == 3600.0
    assert backoff.reconnect_wait_qbo_seconds(50) == 3600.0


def test_batch_wait_is_three_batch_intervals_within_two_and_ten_seconds() -> None:
    # 40 batches a QuickBooks minute of 60 s: 1.5 s apart, so 4.5 s
    assert backoff.batch_wait_seconds(60, 40) == pytest.approx(4.5)
    assert backoff.batch_wait_seconds(1, 40) == 2.0  # tests' fast minute: at least 2 s
    assert backoff.batch_wait_seconds(60, 1) == 10.0  # at most 10 s
    assert backoff.batch_wait_seconds(60, 0) == 10.0  # a zero limit does not divide by zero


def test_visibility_is_scaled_jittered_and_kept_within_sqs_limits() -> None:
    # Given one QuickBooks minute lasting 60 real seconds: 10 QuickBooks seconds are 10 to 12 real
    assert backoff.visibility_seconds(10, 60, 0.2, draw=lowest) == 10
    assert backoff.visibility_seconds(10, 60, 0.2, draw=highest) == 12
    # A fast test minute (1 s) scales the wait down, never below one second
    assert backoff.visibility_seconds(10, 1, 0.2, draw=highest) == 1
    assert backoff.visibility_seconds(0, 60, draw=lowest) == 1
    # And never past SQS's 12 hours
    assert backoff.visibility_seconds(10**9, 60, draw=lowest) == backoff.MAX_VISIBILITY_SECONDS


def test_jitter_is_smaller_for_our_own_limiter_than_for_a_quickbooks_429() -> None:
    assert backoff.throttle_jitter(local=True) < backoff.throttle_jitter(local=False)
    assert backoff.jittered(100, backoff.throttle_jitter(local=True), draw=highest) == pytest.approx(110)
    assert backoff.jittered(100, backoff.throttle_jitter(local=False), draw=highest) == pytest.approx(150)


def test_a_throttled_message_is_handed_back_while_sqs_can_delay_it_and_it_is_not_stuck() -> None:
    assert backoff.hands_back(900, 0)
    assert not backoff.hands_back(901, 0)  # longer than SQS's DelaySeconds: waits as a visibility
    assert backoff.hands_back(10, 99)
    assert not backoff.hands_back(10, 100)  # handed back too often: its waits count as receives


def test_batch_retry_pause_is_half_to_one_quickbooks_second() -> None:
    assert backoff.batch_retry_pause(60, draw=lowest) == pytest.approx(0.5)
    assert backoff.batch_retry_pause(60, draw=highest) == pytest.approx(1.0)
    assert backoff.batch_retry_pause(6, draw=highest) == pytest.approx(0.1)
