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

Durability (docs/decisions/0004-durable-local-state.md): with a journal set (`make serve`), every
request that changes messages (send, receive, delete, visibility, purge) writes the post-image of
each message it changed, in the queue it named and its dead-letter queue, before it is answered
(under the lock). `restore()` puts them back, in-flight messages visible again at once: the
consumer that held them died with the process.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.RLock()
_installed = False
_journal: Any = None
_CHANGES = {
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "PurgeQueue",
}
_NS = "sqs:"  # namespace per queue: "sqs:<queue name>", key: message id, value: the pickled message


@contextmanager
def changing(queues: list[Any]) -> Iterator[None]:
    """For a change to `queues` made outside an SQS request (SNS delivering to a queue
    in-process): under the lock every SQS action takes, and journaled as a SendMessage would be."""
    with _LOCK:
        if _journal is None:
            yield
            return
        before = {q.name: _marks(q) for q in queues}
        try:
            yield
        finally:
            _record(queues, before)


def set_journal(journal: Any) -> None:
    """Journal every message change from now on (None: stop; the queues stay in memory)."""
    global _journal
    with _LOCK:
        _journal = journal


def _marks(queue: Any) -> dict[str, tuple[Any, ...]]:
    """What a request can change about each message of a queue."""
    return {
        m.id: (m.receipt_handle, m.approximate_receive_count, m.visible_at, m.delayed_until)
        for m in queue._messages
    }


def _record(queues: list[Any], before: dict[str, dict[str, tuple[Any, ...]]]) -> None:
    puts, deletes = [], []
    for queue in queues:
        old, now = before[queue.name], _marks(queue)
        changed = {m.id: m for m in queue._messages if old.get(m.id) != now[m.id]}
        puts += [(_NS + queue.name, mid, pickle.dumps(m)) for mid, m in changed.items()]
        deletes += [(_NS + queue.name, mid) for mid in old.keys() - now.keys()]
    _journal.write(puts, deletes)


def restore(journal: Any) -> int:
    """Put the journal's messages back into moto's (new, empty) queues; returns how many."""
    from moto.sqs.models import sqs_backends

    from local.template import ACCOUNT, REGION

    backend = sqs_backends[ACCOUNT][REGION]
    count = 0
    with _LOCK:
        for ns, messages in journal.load_prefix(_NS).items():
            queue = backend.queues.get(ns[len(_NS) :])
            if queue is None:
                continue  # the template no longer has this queue
            restored = [pickle.loads(value) for value in messages.values()]
            for message in sorted(restored, key=lambda m: (m.sent_timestamp or 0, m.id)):
                message.visible_at = 0.0  # its consumer died with the process: visible again now
                queue._messages.append(message)
                count += 1
    return count


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
            if _journal is None or self._get_action() not in _CHANGES:
                return original_call(self)
            queue = self.sqs_backend.queues.get(self._get_queue_name())
            if queue is None:
                return original_call(self)
            # A receive may move messages to the dead-letter queue: record both.
            queues = [queue] + ([queue.dead_letter_queue] if queue.dead_letter_queue else [])
            before = {q.name: _marks(q) for q in queues}
            try:
                return original_call(self)
            finally:
                _record(queues, before)

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
