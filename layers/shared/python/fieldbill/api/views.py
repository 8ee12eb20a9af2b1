"""Records to JSON for web clients: money and quantities as decimal strings, never floats."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pynamodb.attributes import MapAttribute

from fieldbill.store.models import Entity

_HIDDEN = {
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "type",
    "ttl",
    "tenant_id",
    "history",
    "cursor",
    "ref_count",
    "access_token_enc",
    "refresh_token_enc",
    "oauth_state",
    "refresh_lease_until",
}


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, MapAttribute):
        return {k: plain(v) for k, v in value.as_dict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


def view(record: Entity, hide: set[str] | None = None) -> dict[str, Any]:
    hidden = _HIDDEN | (hide or set())
    out = {name: plain(getattr(record, name)) for name in record.get_attributes() if name not in hidden}
    return out


def history(record: Entity) -> list[dict[str, Any]]:
    return [
        {"at": h.at, "actor": h.actor, "from": h.from_state, "to": h.to_state, "reason": h.reason}
        for h in record.history or []
    ]


def page(records: Sequence[Entity], cursor: str | None) -> dict[str, Any]:
    return {"items": [view(r) for r in records], "next_cursor": cursor}
