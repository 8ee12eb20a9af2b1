"""Records going back to the queue, gathered during one batch and sent before it returns.

- retried: reported as a batch item failure, with a new visibility (one call per 10 records);
- handed back (made to wait its turn: nothing of the call reached QuickBooks): a copy is sent
  with the wait as its delay and the original consumed, so the wait is not a receive (towards the
  DLQ, the transient back-off, the look-up of a redelivery). If SQS refuses the copy, the original
  stays, failed, with the wait as its visibility;
- parked (the company must reconnect): retried with a long visibility, its receipt handle noted so
  `resume_parked` (after a reconnect) makes it visible at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import parked as parked_store
from fieldbill.workflows import queues
from fieldbill.workflows.messages import QboSyncMessage

SQS_BATCH = queues.SQS_BATCH
PARKED_NOTE_MARGIN_SECONDS = 3600  # a note outlives its message's parking time by this much


class RetryLater(Exception):
    """The record goes back to the queue; its visibility timeout is already set."""


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


def receive_count(record: SQSRecord) -> int:
    return int(record.attributes.approximate_receive_count or 1)


def maybe_sent_before(record: SQSRecord, message: QboSyncMessage) -> bool:
    """An earlier delivery of this work may have reached QuickBooks (the function may have died
    after sending): an invoice is then looked up before it is created."""
    return message.attempted or receive_count(record) > 1


def handback_copy(record: SQSRecord, message: QboSyncMessage) -> QboSyncMessage:
    """The message that replaces one made to wait: the same work, a fresh receive count, and the
    doubt (and first queue time) of the one it replaces."""
    sent = record.attributes.sent_timestamp
    return message.model_copy(
        update={
            "attempted": maybe_sent_before(record, message),
            "handbacks": message.handbacks + 1,
            "queued_at_ms": message.queued_at_ms or (int(sent) if sent else None),
        }
    )


def claim_owner(record: SQSRecord) -> str:
    """Who claims the right to create an invoice: this attempt (one receive of one message). A
    redelivery made while a slow attempt still runs is another attempt, so it waits."""
    return f"{record.message_id}#{receive_count(record)}"


@dataclass
class Requeue:
    visibility: list[tuple[str, int]] = field(default_factory=list)  # (receipt handle, seconds)
    handbacks: list[tuple[SQSRecord, QboSyncMessage, int]] = field(
        default_factory=list
    )  # (record, copy, delay)
    parked: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # (tenant, message id, handle, seconds)

    def retry_later(self, record: SQSRecord, seconds: int, why: str) -> None:
        """Report the record as failed; its visibility is set before the invocation returns."""
        self.visibility.append((record.receipt_handle, int(seconds)))
        logger.info("message returned to the queue", extra={"delay_seconds": seconds, "reason": why})
        raise RetryLater(why)

    def hand_back(self, record: SQSRecord, message: QboSyncMessage, seconds: int) -> None:
        self.handbacks.append((record, handback_copy(record, message), seconds))

    def park(self, tenant_id: str, record: SQSRecord, seconds: int) -> None:
        self.parked.append((tenant_id, record.message_id, record.receipt_handle, seconds))
        self.retry_later(record, seconds, "QuickBooks connection needs reconnect")

    def flush_handbacks(self) -> list[str]:
        """Send the copies of the records made to wait (their originals are then deleted as done).
        Returns the message ids whose copy SQS did not take: those stay failed, with their wait as
        visibility, so nothing is dropped."""
        pending, self.handbacks = self.handbacks, []
        if not pending:
            return []
        failed = queues.send_delayed(
            get_settings().qbo_sync_queue_url, [(copy, seconds) for _, copy, seconds in pending], _sqs()
        )
        unsent: list[str] = []
        for i, (record, _, seconds) in enumerate(pending):
            if i in failed:
                unsent.append(record.message_id)
                self.visibility.append((record.receipt_handle, seconds))
        logger.info("messages handed back to wait their turn", extra={"count": len(pending) - len(unsent)})
        return unsent

    def flush_visibility(self) -> None:
        pending, self.visibility = self.visibility, []
        if not pending:
            return
        queue_url = get_settings().qbo_sync_queue_url
        for start in range(0, len(pending), SQS_BATCH):
            chunk = pending[start : start + SQS_BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, (handle, seconds) in enumerate(chunk)
            ]
            try:
                answer = _sqs().change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
                if answer.get("Failed"):
                    logger.warning("visibility not changed", extra={"failed": answer["Failed"]})
            except Exception:  # the queue's own visibility timeout still brings the messages back
                logger.exception("could not change message visibility")

    def note_parked(self) -> None:
        """Remember the receipt handles of parked messages: resume_parked makes them visible."""
        pending, self.parked = self.parked, []
        if not pending:
            return
        now = time.time()
        try:
            parked_store.park(
                parked_store.ParkedMessage(
                    tenant_id=tenant_id,
                    message_id=message_id,
                    receipt_handle=handle,
                    expires_at=int(now + seconds + PARKED_NOTE_MARGIN_SECONDS),
                )
                for tenant_id, message_id, handle, seconds in pending
            )
        except Exception:  # resume is a shortcut: the message still comes back on its own
            logger.exception("parked messages not recorded")


def resume_parked(tenant_id: str) -> int:
    """After a reconnect: make the tenant's parked messages visible now (instead of after their
    parking time). Returns how many were resumed. Stale handles (a message received again since)
    are skipped: that message is being handled already."""
    queue_url = get_settings().qbo_sync_queue_url
    waiting = parked_store.parked(tenant_id)
    resumed = 0
    for start in range(0, len(waiting), SQS_BATCH):
        chunk = waiting[start : start + SQS_BATCH]
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
            for i, m in enumerate(chunk)
        ]
        try:
            answer = _sqs().change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
            resumed += len(answer.get("Successful", []))
        except Exception:
            logger.exception("could not resume parked messages")
        for message in chunk:
            parked_store.forget(message)
    logger.info("parked QuickBooks messages resumed", extra={"tenant_id": tenant_id, "resumed": resumed})
    return resumed
