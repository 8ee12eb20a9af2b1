"""Applying QuickBooks records here: contacts, products, and our invoices' balances.

Idempotent and order-proof: a record is matched by its QuickBooks id; an incoming version older
than the one we hold (SyncToken) is ignored; at the same SyncToken only the fields QuickBooks owns
(balance) are refreshed, so a local edit on its way out is not overwritten by the copy it replaces.
Webhook events carry no data: the entity is re-read from QuickBooks, so an event that arrives late
applies the current state, never a stale one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fieldbill.domain import states
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import InvoiceStatus
from fieldbill.domain.money import cents
from fieldbill.observability import logger
from fieldbill.quickbooks import mapping
from fieldbill.quickbooks.cdc import ENTITIES, ITEM_TYPES
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.errors import Permanent
from fieldbill.store import credit_memos, qbo_links
from fieldbill.store import invoices as lifecycle
from fieldbill.store.qbo_links import Linked

ACTOR = "quickbooks_inbound"
PRODUCT_KINDS = {"Service": "service", "Inventory": "inventory", "NonInventory": "non_inventory"}
INACTIVE_SUFFIX = " (deleted)"  # QuickBooks renames an inactive customer/item to free the name
PRELOAD_AT = 20  # rows from which a pull reads all linked records at once instead of one by one
ATTEMPTS = 3


@dataclass
class Applied:
    """Counts of one pull or event."""

    mode: str = "event"
    seen: int = 0
    created: int = 0
    updated: int = 0
    linked: int = 0
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0
    details: list[str] = field(default_factory=list)

    def as_map(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seen": self.seen,
            "created": self.created,
            "updated": self.updated,
            "linked": self.linked,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
        }


def _linked(row: dict[str, Any], txn_type: str) -> list[str]:
    """The ids of the transactions of a type QuickBooks lists as linked to an entity (an
    Invoice lists the Payments that pay it)."""
    return [
        str(t["TxnId"]) for t in row.get("LinkedTxn") or [] if t.get("TxnType") == txn_type and t.get("TxnId")
    ]


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _token(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return -1


def _clean(name: str, active: bool) -> str:
    if not active and name.endswith(INACTIVE_SUFFIX):
        return name[: -len(INACTIVE_SUFFIX)]
    return name


class Applier:
    """Applies QuickBooks records of one tenant's company to local records."""

    def __init__(self, tenant_id: str, client: QboClient) -> None:
        self.tenant_id = tenant_id
        self.client = client
        self._by_qbo: dict[str, dict[str, Linked]] | None = None

    # ------------------------------------------------------------------ lookups
    def find(self, entity: str, qbo_id: str) -> Linked | None:
        model = qbo_links.model_of(entity)
        if self._by_qbo is not None and entity in self._by_qbo:
            hit = self._by_qbo[entity].get(qbo_id)
            return hit if isinstance(hit, model) else None
        return qbo_links.find_linked(self.tenant_id, entity, qbo_id)

    # ------------------------------------------------------------------ entry points
    def apply_rows(
        self, entity: str, rows: Iterable[dict[str, Any]], data_type: str | None = None
    ) -> Applied:
        result = Applied(mode="pull")
        rows = list(rows)
        if entity in ("Invoice", "Payment"):
            self._apply_transactions(entity, rows, result)
            return result
        if len(rows) > PRELOAD_AT:
            self._by_qbo = {entity: qbo_links.linked_by_qbo_id(self.tenant_id, entity)}
        types = ITEM_TYPES.get(data_type or "")
        for row in rows:
            result.seen += 1
            if row.get("status") == "Deleted":
                self.deleted(entity, str(row["Id"]), result)
            elif entity == "Item" and types is not None and row.get("Type") not in types:
                result.skipped += 1  # the other item data type's pull applies it
            else:
                self.upsert(entity, row, result)
        return result

    def apply_changes(self, rows: dict[str, list[dict[str, Any]]], data_type: str) -> Applied:
        """One pull's rows: invoices first, then the invoices that payments name and no row carried."""
        result = Applied(mode="pull")
        if data_type != "invoices":
            entity = ENTITIES[data_type][0]
            return self.apply_rows(entity, rows.get(entity, []), data_type=data_type)
        invoices = rows.get("Invoice", [])
        self._apply_transactions("Invoice", invoices, result)
        carried = {str(r.get("Id")) for r in invoices}
        for payment in rows.get("Payment", []):
            result.seen += 1
            for invoice_id in self._paid_invoices(payment):
                if invoice_id not in carried:
                    carried.add(invoice_id)
                    self.invoice(self.client.read("Invoice", invoice_id), result)
        return result

    def _apply_transactions(self, entity: str, rows: list[dict[str, Any]], result: Applied) -> None:
        for row in rows:
            result.seen += 1
            if entity != "Invoice":
                result.skipped += 1
            elif row.get("status") == "Deleted":
                self.invoice_gone(str(row["Id"]), "deleted in QuickBooks", result)
            else:
                self.invoice(row, result)

    def apply_event(self, entity: str, entity_id: str, operation: str) -> Applied:
        result = Applied(mode="event", seen=1)
        if entity in ("Customer", "Item"):
            if operation == "Delete":
                self.deleted(entity, entity_id, result)
                return result
            try:
                row = self.client.read(entity, entity_id)
            except Permanent as exc:  # gone (deleted or merged away) since the event
                logger.info("notified entity no longer readable", extra={"entity": entity, "code": exc.code})
                self.deleted(entity, entity_id, result)
                return result
            if row.get("status") == "Deleted":
                self.deleted(entity, entity_id, result)
            elif entity == "Item" and row.get("Type") not in PRODUCT_KINDS:
                result.skipped += 1
            else:
                self.upsert(entity, row, result)
        elif entity == "Invoice":
            if operation == "Delete":
                self.invoice_gone(entity_id, "deleted in QuickBooks", result)
                return result
            # A new invoice in QuickBooks raises its customer's balance there even when it is
            # exactly our copy (nothing to take): read the customer then, not on every event.
            self.invoice(self.client.read("Invoice", entity_id), result, created=operation == "Create")
        elif entity == "Payment":
            self.payment(entity_id, result)
        else:
            result.skipped += 1
        return result

    # ------------------------------------------------------------------ customers and items
    def _fields(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        active = row.get("Active", True) is not False
        if entity == "Customer":
            email = (row.get("PrimaryEmailAddr") or {}).get("Address")
            return {
                "name": _clean(str(row.get("DisplayName") or row.get("FullyQualifiedName") or ""), active),
                "email": email or None,
                "active": active,
                "balance": _dec(row.get("Balance")) or Decimal("0"),
                # issue 17: as contact_to_qbo sends them, so our own round trip is no change
                "phone": mapping.phone_from_qbo(row.get("PrimaryPhone")),
                "address": mapping.address_from_qbo(row.get("BillAddr")),
            }
        values: dict[str, Any] = {
            "name": _clean(str(row.get("Name") or ""), active),
            "kind": PRODUCT_KINDS.get(str(row.get("Type")), "service"),
            "active": active,
            "default_unit_price": _dec(row.get("UnitPrice")),
        }
        income = (row.get("IncomeAccountRef") or {}).get("value")
        expense = (row.get("ExpenseAccountRef") or {}).get("value")
        if income:
            values["income_account_ref"] = str(income)
        if expense:
            values["expense_account_ref"] = str(expense)
        return values

    @staticmethod
    def _owned_by_qbo(entity: str) -> tuple[str, ...]:
        """Fields only QuickBooks changes: refreshed even when the SyncToken did not move."""
        return ("balance",) if entity == "Customer" else ()

    def upsert(self, entity: str, row: dict[str, Any], result: Applied) -> None:
        qbo_id = str(row["Id"])
        values = self._fields(entity, row)
        if not values["name"]:
            result.skipped += 1
            return
        for _attempt in range(ATTEMPTS):
            record = self.find(entity, qbo_id)
            if record is None:
                if not values["active"]:
                    result.skipped += 1  # never linked and inactive there: nothing to do here
                    return
                if self.link_or_create(entity, row, values, result):
                    return
                continue  # created concurrently: apply onto it
            try:
                self.update(entity, record, row, values, result)
                return
            except Conflict:
                self._by_qbo = None  # changed meanwhile: re-read and compare again
        raise Conflict(f"{entity} {qbo_id} kept changing while it was applied")

    def link_or_create(
        self, entity: str, row: dict[str, Any], values: dict[str, Any], result: Applied
    ) -> bool:
        qbo_id, token = str(row["Id"]), str(row.get("SyncToken", "0"))
        same_name = qbo_links.find_unlinked_by_name(self.tenant_id, entity, values["name"])
        try:
            if same_name is not None:
                # What QuickBooks has none of does not erase ours (our phone and address, issue
                # 17): a contact changed here is pushed to the customer after the link.
                changes = {k: v for k, v in values.items() if k != "name" and v is not None}
                reason = f"linked to QuickBooks {entity} {qbo_id} (same name)"
                qbo_links.link_existing(same_name, entity, qbo_id, token, changes, ACTOR, reason)
                result.linked += 1
                return True
            reason = f"created from QuickBooks {entity} {qbo_id}"
            record = qbo_links.create_linked(self.tenant_id, entity, qbo_id, token, values, ACTOR, reason)
        except Conflict:
            return False
        if self._by_qbo is not None:
            self._by_qbo.setdefault(entity, {})[qbo_id] = record
        result.created += 1
        return True

    def update(
        self, entity: str, record: Linked, row: dict[str, Any], values: dict[str, Any], result: Applied
    ) -> None:
        incoming, held = _token(row.get("SyncToken")), _token(record.qbo_sync_token)
        if incoming < held:
            result.unchanged += 1  # an older version than the one applied: out of order
            return
        if incoming == held:
            values = {k: v for k, v in values.items() if k in self._owned_by_qbo(entity)}
        changes: dict[str, Any] = {k: v for k, v in values.items() if getattr(record, k) != v}
        # Changed here too and not pushed yet: ours wins for the fields we own (issue 15).
        changes, kept = qbo_links.resolve_conflict(entity, record, changes)
        if not qbo_links.is_indexed(record, entity):
            changes.update(qbo_links.index_fields(self.tenant_id, entity, str(row["Id"])))
        if incoming > held:
            changes["qbo_sync_token"] = str(incoming)
        if not changes:
            result.unchanged += 1
            return
        was_active = bool(getattr(record, "active", True))
        fields = sorted(k for k in changes if not k.startswith("gsi") and k != "qbo_sync_token")
        reason = f"changed in QuickBooks ({entity} {row['Id']}, SyncToken {incoming})"
        if fields:
            reason += ": " + ", ".join(fields)
        if kept:
            reason += (
                f"; conflict: changed here too, ours kept for {', '.join(kept)}"
                " (fieldbill owns them; pushed to QuickBooks next), theirs taken for the rest"
            )
        qbo_links.update_linked(record, changes, ACTOR, reason)
        if was_active and values.get("active") is False:
            result.deactivated += 1
        elif fields:
            result.updated += 1
        else:
            result.unchanged += 1

    def deleted(self, entity: str, qbo_id: str, result: Applied) -> None:
        """Deleted, or merged into another record: ours becomes inactive and keeps its history."""
        record = self.find(entity, qbo_id)
        if record is None or not getattr(record, "active", True):
            result.unchanged += 1
            return
        qbo_links.deactivate(record, ACTOR, f"{entity} {qbo_id} deleted or merged away in QuickBooks")
        result.deactivated += 1

    # ------------------------------------------------------------------ invoices and payments
    def _our_invoice_id(self, row: dict[str, Any]) -> str | None:
        note = str(row.get("PrivateNote") or "")
        marker = mapping.invoice_marker(self.tenant_id, "")
        start = note.find(marker)
        if start < 0:
            return None
        rest = note[start + len(marker) :]
        return rest.split()[0] if rest.strip() else None

    def invoice(
        self, row: dict[str, Any], result: Applied, refresh_customer: bool = True, created: bool = False
    ) -> None:
        """Balance (and paid when it reaches 0) from QuickBooks' current copy of our invoice; its
        customer's balance is read again when ours changed or the invoice is new there
        (QuickBooks sends no event when only a customer's balance changes)."""
        invoice_id = self._our_invoice_id(row)
        for _attempt in range(ATTEMPTS):
            ours = qbo_links.invoice(self.tenant_id, invoice_id) if invoice_id else None
            if ours is None or (ours.qbo_id and str(ours.qbo_id) != str(row["Id"])):
                result.skipped += 1  # not one of ours (made in QuickBooks), or another tenant's
                return
            incoming, held = _token(row.get("SyncToken")), _token(ours.qbo_sync_token)
            if incoming < held:
                result.unchanged += 1
                return
            balance, total = _dec(row.get("Balance")), _dec(row.get("TotalAmt"))
            if balance is not None and total is not None and total != Decimal(ours.total):
                # QuickBooks holds another version than ours (an edit on its way, or one it refused):
                # what it says is paid (or credited) there is what applies to ours (wt-credit).
                balance = Decimal(ours.total) - (total - balance)
            if balance is not None:
                # Payments recorded here and not in QuickBooks yet are not in its balance either.
                waiting = sum((p.amount for p in ours.payments or [] if not p.qbo_id), Decimal(0))
                # ... nor credit applied here whose applying Payment is not there yet (wt-credit)
                waiting += credit_memos.waiting_credit(ours)
                # ... and credit removed here that QuickBooks still applies is owed again (wt-life)
                waiting -= credit_memos.removal_waiting(ours)
                # ... and so are payments removed here whose Payment QuickBooks still holds
                waiting -= lifecycle.payment_removal_waiting(ours, _linked(row, "Payment"))
                # in cents, as every balance of ours (QuickBooks may answer 160.0)
                balance = cents(max(Decimal(0), balance - waiting))
            status = str(states.status_from_quickbooks_balance(InvoiceStatus(ours.status), balance, total))
            if balance == ours.balance and status == ours.status and incoming == held:
                result.unchanged += 1
                if created and refresh_customer:
                    self._refresh_customer(row, result)
                return
            try:
                qbo_links.apply_invoice_balance(
                    ours,
                    balance=balance,
                    total=total,
                    sync_token=str(incoming) if incoming > held else None,
                    status=status,
                    actor=ACTOR,
                    reason=f"QuickBooks Invoice {row['Id']}: balance {balance}",
                )
            except Conflict:
                continue  # changed meanwhile: read it again and decide again
            result.updated += 1
            if refresh_customer:
                self._refresh_customer(row, result)
            return
        raise Conflict(f"invoice {row.get('Id')} kept changing while it was applied")

    def _refresh_customer(self, row: dict[str, Any], result: Applied) -> None:
        customer = (row.get("CustomerRef") or {}).get("value")
        if customer and self.find("Customer", str(customer)) is not None:
            self.upsert("Customer", self.client.read("Customer", str(customer)), result)

    def invoice_gone(self, qbo_id: str, why: str, result: Applied) -> None:
        """Deleted in QuickBooks: recorded on our invoice for a person to decide (never silent)."""
        invoice_id = qbo_links.note_invoice_deleted(self.tenant_id, qbo_id, ACTOR, f"Invoice {qbo_id} {why}")
        if invoice_id is None:
            result.skipped += 1
            return
        result.updated += 1
        logger.warning("our invoice was deleted in QuickBooks", extra={"invoice_id": invoice_id})

    @staticmethod
    def _paid_invoices(payment: dict[str, Any]) -> list[str]:
        ids = [
            str(linked["TxnId"])
            for line in payment.get("Line") or []
            for linked in line.get("LinkedTxn") or []
            if linked.get("TxnType") == "Invoice" and linked.get("TxnId")
        ]
        return list(dict.fromkeys(ids))

    def payment(self, payment_id: str, result: Applied) -> None:
        """A payment changes the balance of the invoices it pays, and of its customer."""
        try:
            payment = self.client.read("Payment", payment_id)
        except Permanent:
            result.skipped += 1  # deleted: the invoices' own events (and the backfill) carry it
            return
        for invoice_id in self._paid_invoices(payment):
            self.invoice(self.client.read("Invoice", invoice_id), result, refresh_customer=False)
        self._refresh_customer(payment, result)
