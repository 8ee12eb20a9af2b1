"""Access functions every entity shares: get by key, create once, list a page, page cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict, NotFound, ValidationError
from fieldbill.store.models import META, Entity, HistoryEntry, tenant_prefix

E = TypeVar("E", bound=Entity)

BATCH_GET_MAX = 100


def conditional_failed(exc: Exception) -> bool:
    """True when a write was refused by its condition (for a transaction: by any item's condition)."""
    cause = getattr(exc, "cause_response_code", None) or ""
    if cause == "TransactionCanceledException":
        reasons = getattr(exc, "cancellation_reasons", None) or []
        return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
    return "ConditionalCheckFailed" in str(cause) or "ConditionalCheckFailed" in str(exc)


def transaction_conflict(exc: Exception) -> bool:
    """True when DynamoDB cancelled a transaction because another one touched the same item."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "TransactionConflict" for r in reasons)


def get(model: type[E], pk: str, sk: str = META, entity: str | None = None) -> E:
    """The record at (pk, sk) if it is of `model`'s type, else NotFound (never another entity)."""
    try:
        record = Entity.get(pk, sk)
    except DoesNotExist:
        raise NotFound(entity or model.__name__, pk.rsplit("#", 1)[-1]) from None
    if not isinstance(record, model):
        raise NotFound(entity or model.__name__, pk.rsplit("#", 1)[-1])
    return record


def find(model: type[E], pk: str, sk: str = META) -> E | None:
    try:
        record = Entity.get(pk, sk)
    except DoesNotExist:
        return None
    return record if isinstance(record, model) else None


def batch_get(model: type[E], keys: Iterable[tuple[str, str]]) -> dict[str, E]:
    """Records by pk, 100 keys per request."""
    unique = list(dict.fromkeys(keys))
    found: dict[str, E] = {}
    for start in range(0, len(unique), BATCH_GET_MAX):
        for record in Entity.batch_get(unique[start : start + BATCH_GET_MAX]):
            if isinstance(record, model):
                found[record.pk] = record
    return found


def create(record: Entity, actor: str, reason: str = "created") -> Entity:
    """Write a new record once: a second create with the same key is a Conflict, never an overwrite."""
    stamp = now_iso()
    record.created_at = record.created_at or stamp
    record.updated_at = stamp
    status = getattr(record, "status", None)
    record.history = [
        HistoryEntry(at=stamp, actor=actor, from_state=None, to_state=str(status or "created"), reason=reason)
    ]
    try:
        record.save(condition=Entity.pk.does_not_exist())
    except PutError as exc:
        if conditional_failed(exc):
            raise Conflict(f"{type(record).__name__} {record.id!r} already exists") from None
        raise
    return record


def history_entry(actor: str, from_state: str | None, to_state: str, reason: str | None) -> HistoryEntry:
    return HistoryEntry(at=now_iso(), actor=actor, from_state=from_state, to_state=to_state, reason=reason)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise ValidationError("cursor", "not a cursor this API returned") from None
    if not isinstance(value, dict):
        raise ValidationError("cursor", "not a cursor this API returned")
    return value


def page(query: Any, limit: int) -> tuple[list[Any], str | None]:
    """Drain one page of a PynamoDB result iterator: up to `limit` records and the next cursor."""
    items = list(query)
    return items[:limit], encode_cursor(query.last_evaluated_key)


def list_by_gsi1(
    model: type[E],
    gsi1pk: str,
    limit: int,
    cursor: str | None,
    prefix: str | None = None,
    filter_condition: Any = None,
) -> tuple[list[E], str | None]:
    range_condition = Entity.gsi1sk.startswith(prefix) if prefix else None
    query = Entity.gsi1.query(
        gsi1pk,
        range_condition,
        filter_condition=filter_condition,
        limit=limit,
        last_evaluated_key=decode_cursor(cursor),
    )
    records, next_cursor = page(query, limit)
    return [r for r in records if isinstance(r, model)], next_cursor


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def connection() -> Connection:
    """The connection PynamoDB models use (transactions need one)."""
    return Entity._get_connection().connection


# ---------------------------------------------------------------------------- tombstones and idempotency
def deleted_key(tenant_id: str) -> str:
    """The partition where a deleted record leaves its tombstone (its history plus the deletion)."""
    return f"{tenant_prefix(tenant_id)}#DELETED"


def deleted_sort_key(entity: str, record_id: str, stamp: str) -> str:
    return f"{entity}#{record_id}#{stamp}"


def idempotency_key(tenant_id: str) -> str:
    """The partition holding a tenant's Idempotency-Key records (written by Powertools idempotency)."""
    return f"{tenant_prefix(tenant_id)}#IDEMPOTENCY"


def checked_cursor(cursor: str | None, **partition: str) -> str | None:
    """The cursor if it was returned by a query of this very partition (tenant and index), else a 422."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    for attr, expected in partition.items():
        value = key.get(attr)
        if not isinstance(value, dict) or value.get("S") != expected:
            raise ValidationError("cursor", "not a cursor this API returned for this list")
    return cursor


def cursor_after_gsi1(record: Entity) -> str | None:
    """A cursor that resumes a gsi1 query right after `record` (a page cut short on purpose)."""
    return encode_cursor(
        {
            "pk": {"S": record.pk},
            "sk": {"S": record.sk},
            "gsi1pk": {"S": record.gsi1pk or ""},
            "gsi1sk": {"S": record.gsi1sk or ""},
        }
    )
