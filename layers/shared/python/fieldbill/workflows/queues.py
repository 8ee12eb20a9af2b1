"""Sending queue messages: every producer sends pydantic messages through here, 10 per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import boto3

from fieldbill.observability import logger

if TYPE_CHECKING:  # senders pass pydantic messages; sending needs only their model_dump_json
    from pydantic import BaseModel

SQS_BATCH = 10


class QueueRefused(RuntimeError):
    """SQS refused some entries of a batch: the caller decides between retrying and failing."""


def send(queue_url: str, messages: Sequence[BaseModel], client: Any = None) -> None:
    sqs = client or boto3.client("sqs")
    for start in range(0, len(messages), SQS_BATCH):
        chunk = messages[start : start + SQS_BATCH]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise QueueRefused(f"SQS refused {len(response['Failed'])} of {len(chunk)} message(s)")


def send_delayed(queue_url: str, copies: Sequence[tuple[BaseModel, int]], client: Any = None) -> set[int]:
    """Send each message with its own delay (a hand-back waits its turn), 10 per request. Returns
    the indexes SQS did not take (all of a request that failed): the caller keeps their originals."""
    sqs = client or boto3.client("sqs")
    failed: set[int] = set()
    for start in range(0, len(copies), SQS_BATCH):
        chunk = copies[start : start + SQS_BATCH]
        entries = [
            {"Id": str(i), "MessageBody": message.model_dump_json(), "DelaySeconds": seconds}
            for i, (message, seconds) in enumerate(chunk)
        ]
        try:
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed |= {start + int(f["Id"]) for f in answer.get("Failed", [])}
        except Exception:
            logger.exception(
                "could not send delayed copies; their originals stay", extra={"count": len(chunk)}
            )
            failed |= set(range(start, start + len(chunk)))
    return failed
