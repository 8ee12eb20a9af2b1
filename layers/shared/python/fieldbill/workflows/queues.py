"""Sending queue messages: every producer sends pydantic messages through here, 10 per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
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
