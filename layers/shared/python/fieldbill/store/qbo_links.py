"""Contacts and products as the outbound sync sees them: the reads, and the link to their QuickBooks
customer or item (its id, its SyncToken, and the gsi2 entry webhooks and pulls find it by)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fieldbill.clock import now_iso
from fieldbill.store.invoice_sync import update_without_reading
from fieldbill.store.models import META, Contact, Entity, Product, qbo_ref_key


def _find(model: type[Any], pk: str) -> Any:
    try:
        record = Entity.get(pk, META, consistent_read=True)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, model) else None


def contact(tenant_id: str, contact_id: str) -> Contact | None:
    found: Contact | None = _find(Contact, Contact.key(tenant_id, contact_id))
    return found


def contacts(tenant_id: str, contact_ids: Iterable[str]) -> dict[str, Contact]:
    """contact id -> contact, for many at once (consistent BatchGetItem)."""
    keys = [(Contact.key(tenant_id, c), META) for c in dict.fromkeys(contact_ids)]
    if not keys:
        return {}
    return {r.id: r for r in Entity.batch_get(keys, consistent_read=True) if isinstance(r, Contact)}


def product(tenant_id: str, product_id: str) -> Product | None:
    found: Product | None = _find(Product, Product.key(tenant_id, product_id))
    return found


def link_contact(record: Contact, row: dict[str, Any]) -> None:
    """The contact is this QuickBooks customer from now on."""
    update_without_reading(
        record,
        [
            Contact.qbo_id.set(str(row["Id"])),
            Contact.qbo_sync_token.set(str(row.get("SyncToken", "0"))),
            # Webhooks and pulls find the contact by its QuickBooks id through this index.
            Contact.gsi2pk.set(qbo_ref_key(record.tenant_id, "Customer")),
            Contact.gsi2sk.set(str(row["Id"])),
            Contact.updated_at.set(now_iso()),
        ],
    )
    record.qbo_id = str(row["Id"])


def link_product(record: Product, row: dict[str, Any]) -> None:
    """The product is this QuickBooks item from now on."""
    record.update(
        actions=[
            Product.qbo_id.set(str(row["Id"])),
            Product.qbo_sync_token.set(str(row.get("SyncToken", "0"))),
            Product.gsi2pk.set(qbo_ref_key(record.tenant_id, "Item")),
            Product.gsi2sk.set(str(row["Id"])),
            Product.updated_at.set(now_iso()),
        ]
    )


def keep_contact_token(record: Contact, sync_token: str) -> None:
    """The SyncToken of the customer after our sparse update (the next update sends it)."""
    record.update(actions=[Contact.qbo_sync_token.set(sync_token)])


def keep_product_token(record: Product, sync_token: str) -> None:
    record.update(actions=[Product.qbo_sync_token.set(sync_token)])
