"""How long QuickBooks work waits before it is tried again: pure functions, no I/O, no settings.

Waits are reckoned in QuickBooks seconds (one QuickBooks minute lasts `seconds_per_minute` real
seconds: 60 in production, less in tests) and turned into real SQS seconds at the last moment.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

MAX_VISIBILITY_SECONDS = 43_200  # SQS maximum
MAX_DELAY_SECONDS = 900  # SQS maximum DelaySeconds: a longer wait keeps the message, as a visibility
MAX_HANDBACKS = 100  # then waits count as receives (towards the DLQ): something is stuck
TRANSIENT_BASE_QBO_SECONDS = 4.0
TRANSIENT_CAP_QBO_SECONDS = 900.0
TRANSIENT_GROWTH = 1.5
RECONNECT_WAIT_QBO_SECONDS = 3600.0
RECONNECT_FIRST_QBO_SECONDS = 60.0
# Our limiter knows when its budget frees (little jitter); a QuickBooks 429 spreads the realm more.
LOCAL_THROTTLE_JITTER = 0.1
QUICKBOOKS_THROTTLE_JITTER = 0.5
RECONNECT_JITTER = 0.1
DEFAULT_JITTER = 0.2

Draw = Callable[[float, float], float]


def scale(seconds_per_minute: float) -> float:
    """Real seconds per QuickBooks second."""
    return float(seconds_per_minute) / 60.0


def jittered(seconds: float, jitter: float, draw: Draw = random.uniform) -> float:
    """`seconds` stretched by up to `jitter` (a share), so records made to wait together spread out."""
    return seconds * draw(1.0, 1.0 + jitter)


def visibility_seconds(
    qbo_seconds: float, seconds_per_minute: float, jitter: float = DEFAULT_JITTER, draw: Draw = random.uniform
) -> int:
    """A QuickBooks wait as an SQS visibility or delay: real seconds, jittered, 1 s to 12 h."""
    real = jittered(qbo_seconds * scale(seconds_per_minute), jitter, draw)
    return max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(real)))


def transient_backoff_qbo_seconds(receive_count: int) -> float:
    """4 s growing by half each receive (4, 6, 9, 13.5 … 15 min). Receives also count deferrals by
    the limiter, so doubling would punish a message for waiting its turn; 25 receives still span
    more than three hours of a QuickBooks outage before the DLQ."""
    exponent = max(0, receive_count - 1)
    if exponent > 20:
        return TRANSIENT_CAP_QBO_SECONDS
    return min(TRANSIENT_CAP_QBO_SECONDS, TRANSIENT_BASE_QBO_SECONDS * TRANSIENT_GROWTH**exponent)


def reconnect_wait_qbo_seconds(receive_count: int) -> float:
    """A parked message looks again after 1, 2, 4 … 60 QuickBooks minutes (resume_parked: at once)."""
    return min(RECONNECT_WAIT_QBO_SECONDS, RECONNECT_FIRST_QBO_SECONDS * 2 ** max(0, receive_count - 1))


def throttle_jitter(local: bool) -> float:
    return LOCAL_THROTTLE_JITTER if local else QUICKBOOKS_THROTTLE_JITTER


def batch_wait_seconds(seconds_per_minute: float, batches_per_minute: int) -> float:
    """Real seconds a consumer may wait for a batch slot before giving its records back to the queue:
    about three batch intervals (40 batches a minute: 4.5 s in production), 2 to 10 s."""
    interval = float(seconds_per_minute) / max(1, int(batches_per_minute))
    return min(10.0, max(2.0, 3 * interval))


def batch_retry_pause(seconds_per_minute: float, draw: Draw = random.uniform) -> float:
    """Real seconds to pause before retrying a batch call that met a 5xx or a drop (mostly
    momentary): half a QuickBooks second to one."""
    return draw(0.5, 1.0) * scale(seconds_per_minute)


def hands_back(delay_seconds: int, handbacks: int) -> bool:
    """A throttled message waits in a fresh copy (not a receive) while SQS can delay it that long
    and it has not been handed back too often (then something is stuck: waits count again)."""
    return delay_seconds <= MAX_DELAY_SECONDS and handbacks < MAX_HANDBACKS
