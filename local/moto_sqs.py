"""Make moto's SQS (5.2.x, pinned) safe for concurrent callers and cheap per message.

Two problems, one small patch (docs/decisions/0002-local-runtime.md):
1. moto's SQS backend has no lock, and the local runtime runs several consumers of a queue at
   once (threads, like Lambda's concurrent invocations of one event source mapping): two receives
   or deletes at the same moment could hand out one message twice or rebuild the queue's list
   over each other. Real SQS executes each request atomically, so every SQS action here runs
   under one lock: the same semantics, serialised. (Nothing here long-polls: a receive with
   WaitTimeSeconds would hold the lock while it waits.)
2. moto checks every message's visibility and delay on every send, receive and attribute call,
   and each check builds datetimes (`moto.core.utils.unix_time_millis()`: utcnow, the epoch, a
   timedelta; ~5 µs). With a billing run's 2,000 messages queued a receive takes 20-40 ms, and
   the local queue, not the consumer, becomes the bottleneck. With no argument the patched
   function answers `time.time() * 1000`, the same instant in the same unit (a datetime argument
   is still converted by moto's own function).
3. For every message it hands out, moto checks the retention period by building all the queue's
   attributes (`get_queue_attributes`), which counts every message in the queue: a receive costs
   O(messages received * messages queued), measured at an eighth of a 2,000-invoice sync's CPU.
   The patched check reads the queue's retention period itself: the same rule.
tests/integration/test_moto_patches.py pins visibility, delays, timestamps and retention.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_LOCK = threading.RLock()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time_millis
    from moto.sqs.responses import SQSResponse

    def fast_unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else unix_time_millis(dt)

    original_call = SQSResponse.call_action

    def call_action(self: Any) -> Any:
        with _LOCK:
            return original_call(self)

    original_retention = sqs_models.SQSBackend.is_message_valid_based_on_retention_period

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    is_message_valid_based_on_retention_period.__wrapped__ = original_retention  # type: ignore[attr-defined]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    fast_unix_time_millis.__wrapped__ = unix_time_millis  # type: ignore[attr-defined]
    sqs_models.unix_time_millis = fast_unix_time_millis  # type: ignore[assignment]
    SQSResponse.call_action = call_action  # type: ignore[method-assign]
    _installed = True
