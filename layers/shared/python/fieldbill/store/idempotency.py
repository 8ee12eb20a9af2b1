"""Where Idempotency-Key records live: the tenant's own partition of the single table.

Powertools' idempotency utility reads and writes them; this module only tells it where (the
table, the partition, the TTL attribute), so the table stays behind store/.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from fieldbill.settings import get_settings
from fieldbill.store import common


@lru_cache(maxsize=1)
def _client() -> Any:
    return boto3.client("dynamodb")


def persistence(tenant_id: str) -> DynamoDBPersistenceLayer:
    """One layer per request (the partition is the tenant's); the boto3 client is shared."""
    return DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=common.idempotency_key(tenant_id),
        expiry_attr="ttl",
        boto3_client=_client(),
    )
