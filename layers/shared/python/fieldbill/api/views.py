"""Records to JSON for web clients: money and quantities as decimal strings, never floats."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pynamodb.attributes import MapAttribute

from fieldbill.domain import badges
from fieldbill.store.models import BillableItem, Entity, Invoice

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


def invoice_badge(record: Invoice) -> badges.BadgeView:
    error = record.sync_error.as_dict() if record.sync_error else None
    return badges.invoice_badge(record.destination, record.sync_status, error)


def invoice(record: Invoice) -> dict[str, Any]:
    return view(record) | invoice_badge(record).as_map()


def item(record: BillableItem, invoice_of_item: Invoice | None, default_destination: str) -> dict[str, Any]:
    badge = badges.item_badge(
        record.status,
        invoice_badge(invoice_of_item) if invoice_of_item is not None else None,
        record.destination or default_destination,
    )
    return view(record) | badge.as_map()
