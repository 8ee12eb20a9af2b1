"""QuickBooks -> here: scheduled pulls and webhook events.

Status: the receiving side is wired (schedules, webhook verification, the inbound queue and its
consumer); applying pulled or notified changes to local records is issue #5 and not built yet,
so the consumer records what arrived and applies nothing (see docs/status.md).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store.models import Entity, QboConnection
from fieldbill.workflows.messages import InboundMessage

CONNECTED_INDEX_KEY = "QBO#CONNECTED"


def schedule_pulls(data_type: str) -> dict[str, Any]:
    """One pull message per connected company for this data type."""
    if data_type not in ("customers", "items", "service_types"):
        raise ValueError(f"unknown data type {data_type!r}")
    connections = [c for c in Entity.gsi2.query(CONNECTED_INDEX_KEY) if isinstance(c, QboConnection)]
    sqs = boto3.client("sqs")
    for connection in connections:
        message = InboundMessage(kind="pull", tenant_id=connection.tenant_id, realm_id=connection.realm_id,
                                 data_type=data_type)
        sqs.send_message(QueueUrl=get_settings().inbound_queue_url, MessageBody=message.model_dump_json())
    return {"data_type": data_type, "companies": len(connections)}


def handle_record(record: SQSRecord) -> None:
    message = InboundMessage.model_validate_json(record.body)
    logger.info("inbound QuickBooks change received (not applied: issue #5)",
                extra={"kind": message.kind, "realm_id": message.realm_id, "entity": message.entity,
                       "entity_id": message.entity_id, "data_type": message.data_type})
