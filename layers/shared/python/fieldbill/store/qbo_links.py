"""Records linked to QuickBooks: contacts and products with their QuickBooks customer or item (id,
SyncToken and the gsi2 entry webhooks and pulls find them by), as the outbound sync links them
and the inbound flow applies QuickBooks' versions; and our invoices' balance and paid status from
QuickBooks.

Contacts and products are written through store.catalog (history, references) when QuickBooks
changes them; an invoice's status changes only through QUICKBOOKS_INVOICE_MACHINE
(store.transitions). Every write that applies a QuickBooks version is conditional on the
SyncToken read, so two appliers never interleave: the loser gets Conflict, reads again and
decides again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import UpdateError

from fieldbill.clock import now_iso
from fieldbill.domain import states
from fieldbill.domain.errors import Conflict
from fieldbill.domain.money import cents
from fieldbill.store import account_balances, catalog, common, transitions
from fieldbill.store.invoice_sync import update_without_reading
from fieldbill.store.models import META, Contact, Entity, Invoice, Product, qbo_ref_key

Linked = Contact | Product
WAITING_SYNC_STATUSES = ("pending", "unknown", "error")


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


def model_of(entity: str) -> type[Contact] | type[Product]:
    return Contact if entity == "Customer" else Product


# ------------------------------------------------------------------------------ contacts and products
def linked_by_qbo_id(tenant_id: str, entity: str) -> dict[str, Linked]:
    """All of the tenant's contacts (Customer) or products (Item) that carry a QuickBooks id."""
    model = model_of(entity)
    return {
        str(r.qbo_id): r
        for r in Entity.gsi1.query(model.list_key(tenant_id))
        if isinstance(r, model) and r.qbo_id
    }


def find_linked(tenant_id: str, entity: str, qbo_id: str) -> Linked | None:
    model = model_of(entity)
    for record in Entity.gsi2.query(qbo_ref_key(tenant_id, entity), Entity.gsi2sk == qbo_id):
        if isinstance(record, model):
            return record
    # Linked before the outbound sync wrote the index: search the list (the next update indexes it).
    for record in Entity.gsi1.query(model.list_key(tenant_id), filter_condition=model.qbo_id == qbo_id):
        if isinstance(record, model):
            return record
    return None


def find_unlinked_by_name(tenant_id: str, entity: str, name: str) -> Linked | None:
    model = model_of(entity)
    prefix = f"{name.lower()}#"
    for record in Entity.gsi1.query(model.list_key(tenant_id), Entity.gsi1sk.startswith(prefix)):
        if isinstance(record, model) and not record.qbo_id and record.name.lower() == name.lower():
            return record
    return None


def _link(tenant_id: str, entity: str, qbo_id: str, sync_token: str) -> dict[str, Any]:
    return {"qbo_id": qbo_id, "qbo_sync_token": sync_token, **index_fields(tenant_id, entity, qbo_id)}


def index_fields(tenant_id: str, entity: str, qbo_id: str) -> dict[str, str]:
    return {"gsi2pk": qbo_ref_key(tenant_id, entity), "gsi2sk": qbo_id}


def is_indexed(record: Linked, entity: str) -> bool:
    return (record.gsi2pk, record.gsi2sk) == (qbo_ref_key(record.tenant_id, entity), record.qbo_id)


def link_existing(
    record: Linked,
    entity: str,
    qbo_id: str,
    sync_token: str,
    changes: Mapping[str, Any],
    actor: str,
    reason: str,
) -> Linked:
    """Link a record of ours to a QuickBooks one; Conflict when someone linked it meanwhile."""
    model = type(record)
    link = _link(record.tenant_id, entity, qbo_id, sync_token)
    return catalog.update(
        record, {**changes, **link}, actor, condition=model.qbo_id.does_not_exist(), reason=reason
    )


def create_linked(
    tenant_id: str,
    entity: str,
    qbo_id: str,
    sync_token: str,
    values: Mapping[str, Any],
    actor: str,
    reason: str,
) -> Linked:
    """A record made from a QuickBooks one (id `qbo-<id>`); Conflict when it exists already."""
    data = {k: v for k, v in values.items() if v is not None}
    record = catalog.new_named(
        model_of(entity), tenant_id, f"qbo-{qbo_id}", {**data, **_link(tenant_id, entity, qbo_id, sync_token)}
    )
    return catalog.create(record, actor, reason=reason)


def update_linked(record: Linked, changes: Mapping[str, Any], actor: str, reason: str) -> Linked:
    """Apply a QuickBooks version onto a linked record, if nobody applied another since it was read."""
    model = type(record)
    held = record.qbo_sync_token
    condition = model.qbo_sync_token.does_not_exist() if held is None else model.qbo_sync_token == held
    return catalog.update(
        record, catalog.named_changes(record, changes), actor, condition=condition, reason=reason
    )


def deactivate(record: Linked, actor: str, reason: str) -> Linked:
    return catalog.update(record, {"active": False}, actor, reason=reason)


# ------------------------------------------------------------------------------ invoices
def invoice(tenant_id: str, invoice_id: str) -> Invoice | None:
    return common.find(Invoice, Invoice.key(tenant_id, invoice_id))


def apply_invoice_balance(
    record: Invoice,
    *,
    balance: Decimal | None,
    total: Decimal | None,
    sync_token: str | None,
    status: str,
    actor: str,
    reason: str,
) -> None:
    """Store QuickBooks' balance (and total, SyncToken) and the status it implies, in one write
    conditional on the SyncToken read. A status change goes through QUICKBOOKS_INVOICE_MACHINE."""
    extra: list[Any] = []
    # QuickBooks' JSON numbers carry no trailing zeros (45.0): money is kept in cents, as ours is.
    balance = None if balance is None else cents(balance)
    total = None if total is None else cents(total)
    if balance is not None:
        extra.append(Invoice.balance.set(balance))
        # Paid from any side (here or in QuickBooks): what the balance says is no longer owed.
        credited = Decimal(record.amount_credited or 0)
        extra.append(Invoice.amount_paid.set(max(Decimal(0), Decimal(record.total) - credited - balance)))
    if total is not None:
        extra.append(Invoice.qbo_total.set(total))
    if sync_token is not None and sync_token != record.qbo_sync_token:
        extra.append(Invoice.qbo_sync_token.set(sync_token))
    held = record.qbo_sync_token
    unchanged = Invoice.qbo_sync_token.does_not_exist() if held is None else Invoice.qbo_sync_token == held
    # --- recurring billing (issue 16): a balance QuickBooks reports moves the contact's account
    # balance in the same transaction.
    owed = account_balances.owed_delta(
        record,
        status,
        balance if balance is not None else (record.balance if record.balance is not None else record.total),
    )
    if owed != 0:
        if status != record.status:
            decided = transitions.change(
                Invoice,
                "status",
                states.QUICKBOOKS_INVOICE_MACHINE,
                record.id,
                str(record.status),
                status,
                actor=actor,
                reason=reason,
                extra=extra,
            )
            actions, condition = decided.actions, decided.condition & unchanged
        else:
            actions = [
                *extra,
                Invoice.updated_at.set(now_iso()),
                Invoice.history.set(
                    Invoice.history.append(
                        [common.history_entry(actor, record.status, record.status, reason)]
                    )
                ),
            ]
            condition = unchanged
        account_balances.write_invoice_with_balance(record, actions, condition, owed)
        return
    if status != record.status:
        transitions.apply(
            record,
            "status",
            states.QUICKBOOKS_INVOICE_MACHINE,
            status,
            actor=actor,
            reason=reason,
            extra=extra,
            condition=unchanged,
        )
        return
    _update_with_history(record, extra, actor, reason, unchanged)


def _update_with_history(record: Invoice, extra: list[Any], actor: str, reason: str, condition: Any) -> None:
    """A change of QuickBooks-owned fields, recorded in the history with the status unchanged."""
    actions = [
        *extra,
        Invoice.updated_at.set(now_iso()),
        Invoice.history.set(
            Invoice.history.append([common.history_entry(actor, record.status, record.status, reason)])
        ),
    ]
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if common.conditional_failed(exc):
            raise Conflict(f"invoice {record.id!r} changed meanwhile; read it again") from None
        raise


def note_invoice_deleted(tenant_id: str, qbo_id: str, actor: str, reason: str) -> str | None:
    """Record on our invoice that QuickBooks deleted its copy (for a person to decide); its id."""
    for record in Entity.gsi1.query(Invoice.list_key(tenant_id), filter_condition=Invoice.qbo_id == qbo_id):
        if isinstance(record, Invoice):
            _update_with_history(record, [], actor, reason, Entity.pk.exists())
            return record.id
    return None


def invoices_waiting_for_sync(tenant_id: str) -> list[Invoice]:
    """Invoices whose sync is pending, unknown or failed (a reconnect may resume them)."""
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id),
        filter_condition=Invoice.sync_status.is_in(*WAITING_SYNC_STATUSES) | (Invoice.dirty == True),  # noqa: E712
    )
    return [r for r in query if isinstance(r, Invoice)]


# ------------------------------------------------------------------------------ no drift (issue 15 item 5)
# A contact or product changed here carries `qbo_dirty_since` (the change's stamp), written in the
# same write as the change; the sync clears it once QuickBooks took that very change (conditional
# on the stamp: a newer change keeps it dirty for its own push). A reconnect pushes every dirty one.
#
# The conflict rule, when QuickBooks holds a newer version of a record that is dirty here: OURS wins
# for the fields the product owns (they are kept and pushed over QuickBooks' copy), THEIRS for the
# others (taken). Each such conflict is written into the record's history.
OWNED_HERE: Mapping[str, tuple[str, ...]] = {
    "Customer": ("name", "email", "phone", "address"),  # phone, address: issue 17
    "Item": ("name", "default_unit_price", "kind", "income_account_ref", "expense_account_ref"),
}


def marked_dirty(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` of a create or change plus the dirty mark, to be written in the same write."""
    return {**values, "qbo_dirty_since": now_iso()}


def clear_dirty(record: Linked, stamp: str | None) -> bool:
    """QuickBooks took the change marked `stamp`: clear the mark unless a newer change replaced it."""
    if stamp is None:
        return False
    model = type(record)
    try:
        record.update(actions=[model.qbo_dirty_since.remove()], condition=model.qbo_dirty_since == stamp)
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return False
        raise
    return True


def dirty_records(tenant_id: str) -> list[tuple[str, str]]:
    """(QuickBooks entity, id) of the tenant's contacts ("Customer") and products ("Item") changed
    here and not yet in QuickBooks (a reconnect pushes them). Reads each list once with a filter:
    reconnects are rare."""
    found: list[tuple[str, str]] = []
    for entity, model in (("Customer", Contact), ("Item", Product)):
        query = Entity.gsi1.query(model.list_key(tenant_id), filter_condition=model.qbo_dirty_since.exists())
        found += [(entity, r.id) for r in query if isinstance(r, model)]
    return found


def resolve_conflict(
    entity: str, record: Linked, changes: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """QuickBooks' newer `changes` for a record dirty here: those of fields owned here are dropped
    (ours wins, pushed next); the names dropped, for the history."""
    if not getattr(record, "qbo_dirty_since", None):
        return changes, []
    owned = OWNED_HERE.get(entity, ())
    kept = sorted(k for k in changes if k in owned)
    return {k: v for k, v in changes.items() if k not in owned}, kept
