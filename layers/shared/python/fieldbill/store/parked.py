"""Parked QuickBooks sync messages: the receipt handle of each message kept in flight while its
company must reconnect, so a reconnect can make it visible at once (pk T#<tenant>#QBOPARKED,
sk the message id, expiring on its own a while after the message would have come back anyway)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3

from fieldbill.settings import get_settings
from fieldbill.store.models import tenant_prefix

WRITE_BATCH = 25  # BatchWriteItem maximum
UNPROCESSED_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    tenant_id: str
    message_id: str
    receipt_handle: str
    expires_at: int  # epoch seconds (the item's TTL)


def parked_key(tenant_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#QBOPARKED"


@lru_cache(maxsize=1)
def _ddb() -> Any:
    return boto3.client("dynamodb")


def park(messages: Iterable[ParkedMessage]) -> None:
    """Note the handles, 25 per request (unprocessed ones retried a few times: a note is a shortcut,
    a message whose note is lost still comes back after its parking time)."""
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": parked_key(m.tenant_id)},
                    "sk": {"S": m.message_id},
                    "receipt_handle": {"S": m.receipt_handle},
                    "ttl": {"N": str(int(m.expires_at))},
                }
            }
        }
        for m in messages
    ]
    table = get_settings().table_name
    for start in range(0, len(items), WRITE_BATCH):
        request: dict[str, Any] = {table: items[start : start + WRITE_BATCH]}
        for _ in range(UNPROCESSED_ROUNDS):
            answer = _ddb().batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                break


def parked(tenant_id: str) -> list[ParkedMessage]:
    """Every parked message of the tenant (consistent: a note just written is seen)."""
    kwargs: dict[str, Any] = {
        "TableName": get_settings().table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": parked_key(tenant_id)}},
        "ConsistentRead": True,
    }
    found: list[ParkedMessage] = []
    while True:
        page = _ddb().query(**kwargs)
        found += [
            ParkedMessage(
                tenant_id=tenant_id,
                message_id=item["sk"]["S"],
                receipt_handle=item["receipt_handle"]["S"],
                expires_at=int(item.get("ttl", {}).get("N", "0")),
            )
            for item in page.get("Items", [])
        ]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def forget(message: ParkedMessage) -> None:
    _ddb().delete_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": parked_key(message.tenant_id)}, "sk": {"S": message.message_id}},
    )
