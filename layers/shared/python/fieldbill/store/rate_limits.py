"""The QuickBooks limiter's items, per company (realm): request and batch counters per time slot,
concurrency leases, and the cool-downs after a 429. The policy (what to count, how long to wait)
lives in quickbooks/limiter.py; this module only reads and writes the items, each write
conditional so that every worker shares the limits without a lock.

| item           | pk                  | sk              | attributes                       |
|----------------|---------------------|-----------------|----------------------------------|
| request slot   | REALM#<realm>#RATE  | R#<slot>        | n (calls counted), ttl           |
| batch slot     | REALM#<realm>#RATE  | B#<slot>        | n, ttl                           |
| lease          | REALM#<realm>#RATE  | C#<index>       | lease_id, expires, ttl           |
| cool-down      | REALM#<realm>#RATE  | C#zz-cooldown   | expires, strikes, seconds, ttl   |
| spare cool-down| REALM#<realm>#RATE  | C#zz-spare      | expires, strikes, seconds, ttl   |
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

TTL_MARGIN_SECONDS = 3600


class RateKeys:
    """Key builders of the limiter's items (not domain entities: no model, no discriminator)."""

    @staticmethod
    def pk(realm_id: str) -> str:
        return f"REALM#{realm_id}#RATE"

    @staticmethod
    def request_slot(slot: int) -> str:
        return f"R#{slot:014d}"

    @staticmethod
    def batch_slot(slot: int) -> str:
        return f"B#{slot:014d}"

    @staticmethod
    def lease(index: int) -> str:
        return f"C#{index:03d}"

    @staticmethod
    def leases() -> tuple[str, str]:
        """The sort-key range of every lease and both cool-downs (one query reads them all)."""
        return "C#", "C#~"

    @staticmethod
    def cooldown() -> str:
        # Sorts after every lease and inside the lease query's range: read at no extra cost.
        return "C#zz-cooldown"

    @staticmethod
    def spare_cooldown() -> str:
        return "C#zz-spare"


@dataclass(frozen=True, slots=True)
class RateItem:
    sk: str
    n: int | None = None  # slots: calls counted
    expires: float | None = None  # leases and cool-downs: epoch seconds
    strikes: int | None = None  # cool-downs: consecutive 429s
    seconds: float | None = None  # cool-downs: its length in QuickBooks seconds
    lease_id: str | None = None


@lru_cache(maxsize=1)
def _ddb() -> Any:
    return boto3.client("dynamodb")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _item(raw: dict[str, Any]) -> RateItem:
    def num(name: str) -> str | None:
        value = raw.get(name)
        return value["N"] if value else None

    n, expires, strikes, seconds = num("n"), num("expires"), num("strikes"), num("seconds")
    return RateItem(
        sk=raw["sk"]["S"],
        n=int(n) if n is not None else None,
        expires=float(expires) if expires is not None else None,
        strikes=int(strikes) if strikes is not None else None,
        seconds=float(seconds) if seconds is not None else None,
        lease_id=raw["lease_id"]["S"] if "lease_id" in raw else None,
    )


class RateSlots:
    """The items of every realm in one table."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or _ddb()

    def _key(self, realm_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": RateKeys.pk(realm_id)}, "sk": {"S": sk}}

    def between(self, realm_id: str, low: str, high: str) -> list[RateItem]:
        """The realm's items with low <= sk <= high (consistent: every worker's latest count)."""
        out: list[RateItem] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": RateKeys.pk(realm_id)},
                ":lo": {"S": low},
                ":hi": {"S": high},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            out.extend(_item(raw) for raw in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, realm_id: str, sk: str) -> RateItem | None:
        found = self.client.get_item(TableName=self.table, Key=self._key(realm_id, sk), ConsistentRead=True)
        raw = found.get("Item")
        return _item(raw) if raw else None

    def take_lease(self, realm_id: str, sk: str, lease_id: str, expires: float, now: float) -> bool:
        """True when the lease was free (never taken, or expired by `now`) and is ours now."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(realm_id, sk),
                    "lease_id": {"S": lease_id},
                    "expires": {"N": repr(expires)},
                    "ttl": {"N": str(int(expires + TTL_MARGIN_SECONDS))},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires <= :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    def release_lease(self, realm_id: str, sk: str, lease_id: str) -> None:
        """Free our lease; one that expired and was taken over is left to its new holder."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._key(realm_id, sk),
                ConditionExpression="lease_id = :id",
                ExpressionAttributeValues={":id": {"S": lease_id}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def count(self, realm_id: str, sk: str, allowance: int, ttl: int) -> bool:
        """Count one call in slot `sk` if it holds fewer than `allowance`; False when it is full."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(realm_id, sk),
                UpdateExpression="ADD n :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(n) OR n < :allow",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":allow": {"N": str(allowance)},
                    ":ttl": {"N": str(ttl)},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    def extend_cooldown(self, realm_id: str, sk: str, until: float, strikes: int, qbo_seconds: float) -> bool:
        """Write a cool-down ending at `until` unless one ending later is in place (False then)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(realm_id, sk),
                    "expires": {"N": repr(until)},
                    "strikes": {"N": str(strikes)},
                    "seconds": {"N": repr(float(qbo_seconds))},
                    "ttl": {"N": str(int(until + TTL_MARGIN_SECONDS))},
                },
                ConditionExpression="attribute_not_exists(expires) OR expires < :until",
                ExpressionAttributeValues={":until": {"N": repr(until)}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True
