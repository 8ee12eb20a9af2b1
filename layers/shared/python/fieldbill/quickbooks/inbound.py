"""QuickBooks -> here: pull changes (CDC or query), re-read notified entities, apply them locally.

Data types and what they become here:

| data type     | QuickBooks            | here                                          |
|---------------|-----------------------|-----------------------------------------------|
| customers     | Customer              | Contact (qbo_id, name, email, balance, active) |
| items         | Item Inventory/NonInv | Product kind inventory / non_inventory        |
| service_types | Item Service          | Product kind service                          |

Incremental pulls: each company keeps one watermark per data type (QboConnection.watermarks):
the QuickBooks server time of the last successful pull, minus an overlap. Within the 30-day
change-data-capture window a pull asks `GET /cdc?entities=…&changedSince=<watermark>`; on the first
pull, beyond the window, when CDC refuses the date, or when a CDC answer may have been cut at its
1000-object cap, it falls back to a full query (active and inactive records).

Applying is idempotent and order-proof: a record is matched by its QuickBooks id; an incoming
version older than the one we hold (SyncToken) is ignored; at the same SyncToken only the fields
QuickBooks owns (balance) are refreshed, so a local edit on its way out is not overwritten by the
copy it is replacing. Webhook events carry no data: the entity is re-read from QuickBooks, so an
event that arrives late applies the current state, never a stale one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from fieldbill.clock import now_iso
from fieldbill.domain import states
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import InvoiceStatus
from fieldbill.observability import logger
from fieldbill.quickbooks import mapping, tokens
from fieldbill.quickbooks.client import QboClient, quote
from fieldbill.quickbooks.errors import NeedsReconnect, Permanent
from fieldbill.settings import get_settings
from fieldbill.store import catalog, common
from fieldbill.store.models import (
    META,
    Contact,
    Entity,
    InboundEvent,
    Invoice,
    Product,
    QboConnection,
    qbo_ref_key,
)

ACTOR = "quickbooks_inbound"
DATA_TYPES: dict[str, str] = {"customers": "Customer", "items": "Item", "service_types": "Item"}
ITEM_TYPES: dict[str, tuple[str, ...]] = {
    "items": ("Inventory", "NonInventory"),
    "service_types": ("Service",),
}
PRODUCT_KINDS = {"Service": "service", "Inventory": "inventory", "NonInventory": "non_inventory"}
CDC_WINDOW_DAYS = 30
CDC_SAFE_DAYS = 29  # beyond this a full query is used (the window is counted by QuickBooks' clock)
CDC_MAX_OBJECTS = 1000  # a CDC answer this long may have been cut: re-read everything instead
OVERLAP = timedelta(minutes=5)  # re-read this much before the watermark (applying twice is a no-op)
QUERY_PAGE = 1000
MAX_LAST_ERRORS = 10
EVENT_TTL_SECONDS = 7 * 24 * 3600  # Intuit retries a delivery for up to ~1 day
INACTIVE_SUFFIX = " (deleted)"  # QuickBooks renames an inactive customer/item to free the name


ref_key = qbo_ref_key


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


# ------------------------------------------------------------------------------ QuickBooks reads
def _get(client: QboClient, path: str, params: dict[str, str]) -> dict[str, Any]:
    """A GET whose whole answer we need (CDC, and the server `time` of a query)."""
    return client._call("GET", path, params=params)


def _parse_time(text: str) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def _watermark(server_time: str) -> str:
    return (_parse_time(server_time) - OVERLAP).isoformat(timespec="seconds")


def _cdc(client: QboClient, entity: str, since: str) -> tuple[list[dict[str, Any]], str] | None:
    """Changed and deleted records since `since`, or None when CDC cannot answer completely."""
    try:
        answer = _get(client, "cdc", {"entities": entity, "changedSince": since})
    except Permanent as exc:  # changedSince beyond the window (or refused): a full query instead
        logger.info("CDC refused; falling back to a query", extra={"code": exc.code, "entity": entity})
        return None
    rows: list[dict[str, Any]] = []
    for cdc in answer.get("CDCResponse", []):
        for response in cdc.get("QueryResponse", []):
            rows += [dict(r) for r in response.get(entity, [])]
    if len(rows) >= CDC_MAX_OBJECTS:
        return None
    return rows, str(answer.get("time") or "")


def _query_pages(client: QboClient, entity: str, where: str) -> Iterator[tuple[list[dict[str, Any]], str]]:
    start = 1
    while True:
        text = f"select * from {entity} where {where} startposition {start} maxresults {QUERY_PAGE}"
        answer = _get(client, "query", {"query": text})
        rows = [dict(r) for r in answer.get("QueryResponse", {}).get(entity, [])]
        yield rows, str(answer.get("time") or "")
        if len(rows) < QUERY_PAGE:
            return
        start += QUERY_PAGE


def _full(client: QboClient, data_type: str) -> tuple[list[dict[str, Any]], str]:
    """Every record of the data type, active and inactive, and the server time of the first read."""
    entity = DATA_TYPES[data_type]
    types = ITEM_TYPES.get(data_type)
    type_filter = f" AND Type IN ({', '.join(quote(t) for t in types)})" if types else ""
    rows: list[dict[str, Any]] = []
    first_time = ""
    for active in ("true", "false"):
        for page, server_time in _query_pages(client, entity, f"Active = {active}{type_filter}"):
            first_time = first_time or server_time
            rows += page
    return rows, first_time


def _cdc_fresh(mark: dict[str, Any]) -> bool:
    """Is the watermark inside the CDC window? Judged by our clock, scaled like QuickBooks' clock."""
    pulled_at = mark.get("pulled_at_epoch")
    if not mark.get("changed_since") or pulled_at is None:
        return False
    qbo_seconds = (time.time() - float(pulled_at)) * 60.0 / float(get_settings().qbo_seconds_per_minute)
    return qbo_seconds < CDC_SAFE_DAYS * 86400


# ------------------------------------------------------------------------------ pulls
def pull(tenant_id: str, data_type: str, client: QboClient | None = None) -> Applied:
    """One incremental pull of a data type for one company; records the watermark on success."""
    if data_type not in DATA_TYPES:
        raise ValueError(f"unknown data type {data_type!r}")
    connection = tokens.get_connection(tenant_id)
    if connection is None or connection.status != "connected":
        raise NeedsReconnect(f"tenant {tenant_id} has no live QuickBooks connection")
    client = client or QboClient(tenant_id)
    entity = DATA_TYPES[data_type]
    marks = connection.watermarks.as_dict() if connection.watermarks else {}
    mark = dict(marks.get(data_type) or {})
    got = _cdc(client, entity, str(mark["changed_since"])) if _cdc_fresh(mark) else None
    mode = "cdc"
    if got is None:
        mode = "query"
        got = _full(client, data_type)
    rows, server_time = got
    applier = Applier(tenant_id, client)
    result = applier.apply_rows(entity, rows, data_type=data_type)
    result.mode = mode
    record_success(tenant_id, data_type, _watermark(server_time) if server_time else None, result)
    logger.info(
        "QuickBooks pull applied",
        extra={"tenant_id": tenant_id, "data_type": data_type, "counts": result.as_map()},
    )
    return result


def apply_event(tenant_id: str, entity: str, entity_id: str, operation: str | None) -> Applied:
    """A webhook event: re-read the entity now and apply what QuickBooks holds (not the event)."""
    client = QboClient(tenant_id)
    return Applier(tenant_id, client).apply_event(entity, entity_id, operation or "Update")


# ------------------------------------------------------------------------------ connection records
def record_success(tenant_id: str, data_type: str, changed_since: str | None, result: Applied) -> None:
    record = tokens.get_connection(tenant_id)
    if record is None:
        return
    marks = record.watermarks.as_dict() if record.watermarks else {}
    previous = dict(marks.get(data_type) or {})
    entry: dict[str, Any] = {
        "last_success_at": now_iso(),
        "mode": result.mode,
        "changed_since": changed_since or previous.get("changed_since"),
        "pulled_at_epoch": int(time.time()) if changed_since else previous.get("pulled_at_epoch"),
        "counts": result.as_map(),
    }
    # Only this data type's entry is written: pulls of other types may run at the same time.
    record.update(actions=[QboConnection.watermarks[data_type].set(entry)])  # type: ignore[index]


def record_error(tenant_id: str, source: str, error: BaseException) -> None:
    """Keep the last MAX_LAST_ERRORS inbound errors on the connection (shown by the status route)."""
    record = tokens.get_connection(tenant_id)
    if record is None:
        return
    entry = {
        "at": now_iso(),
        "source": source,
        "error": type(error).__name__,
        "code": str(getattr(error, "code", "") or ""),
        "message": str(error)[:500],
    }
    kept = [e.as_dict() if hasattr(e, "as_dict") else dict(e) for e in (record.last_errors or [])]
    kept = [*kept, entry][-MAX_LAST_ERRORS:]
    record.update(actions=[QboConnection.last_errors.set(kept)])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ webhook dedupe
def claim_event(event_id: str, realm_id: str | None, tenant_id: str | None) -> bool:
    """True for the first delivery of an event; False when it was applied (or is being applied)."""
    mark = InboundEvent(
        pk=InboundEvent.key(event_id),
        sk=META,
        tenant_id=tenant_id or "-",
        id=event_id,
        realm_id=realm_id,
        created_at=now_iso(),
        ttl=int(time.time()) + EVENT_TTL_SECONDS,
    )
    try:
        mark.save(condition=Entity.pk.does_not_exist())
    except PutError as exc:
        if common.conditional_failed(exc):
            return False
        raise
    return True


def release_event(event_id: str) -> None:
    """The event could not be applied: let its redelivery try again."""
    try:
        Entity(pk=InboundEvent.key(event_id), sk=META, tenant_id="-", id=event_id).delete()
    except (DeleteError, DoesNotExist):
        logger.warning("could not release an inbound event mark", extra={"event_id": event_id})


def event_applied(event_id: str) -> bool:
    try:
        Entity.get(InboundEvent.key(event_id), META, consistent_read=True)
    except DoesNotExist:
        return False
    return True


# ------------------------------------------------------------------------------ applying
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
        self._by_qbo: dict[str, dict[str, Entity]] | None = None

    # ------------------------------------------------------------------ lookups
    def _model(self, entity: str) -> type[Contact] | type[Product]:
        return Contact if entity == "Customer" else Product

    def _preload(self, entity: str) -> dict[str, Entity]:
        """All of the tenant's contacts/products by QuickBooks id (one pass, for pulls)."""
        model = self._model(entity)
        found: dict[str, Entity] = {}
        for record in Entity.gsi1.query(model.list_key(self.tenant_id)):  # type: ignore[attr-defined]
            if isinstance(record, model) and record.qbo_id:
                found[str(record.qbo_id)] = record
        return found

    def find(self, entity: str, qbo_id: str) -> Contact | Product | None:
        model = self._model(entity)
        if self._by_qbo is not None and entity in self._by_qbo:
            hit = self._by_qbo[entity].get(qbo_id)
            return hit if isinstance(hit, model) else None
        for record in Entity.gsi2.query(ref_key(self.tenant_id, entity), Entity.gsi2sk == qbo_id):
            if isinstance(record, model):
                return record
        # Linked before the outbound sync wrote the index: search, then index it.
        query = Entity.gsi1.query(
            model.list_key(self.tenant_id),  # type: ignore[attr-defined]
            filter_condition=model.qbo_id == qbo_id,
        )
        for record in query:
            if isinstance(record, model):
                return record
        return None

    def find_unlinked_by_name(self, entity: str, name: str) -> Contact | Product | None:
        model = self._model(entity)
        prefix = f"{name.lower()}#"
        for record in Entity.gsi1.query(
            model.list_key(self.tenant_id),  # type: ignore[attr-defined]
            Entity.gsi1sk.startswith(prefix),
        ):
            if isinstance(record, model) and not record.qbo_id and record.name.lower() == name.lower():
                return record
        return None

    # ------------------------------------------------------------------ entry points
    def apply_rows(
        self, entity: str, rows: Iterable[dict[str, Any]], data_type: str | None = None
    ) -> Applied:
        result = Applied(mode="pull")
        rows = list(rows)
        if len(rows) > 20:
            self._by_qbo = {entity: self._preload(entity)}
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

    def apply_event(self, entity: str, entity_id: str, operation: str) -> Applied:
        result = Applied(mode="event")
        result.seen = 1
        if entity in ("Customer", "Item"):
            if operation in ("Delete",):
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
            self.invoice(self.client.read("Invoice", entity_id), result)
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
        for _attempt in range(3):
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
        qbo_id = str(row["Id"])
        model = self._model(entity)
        link = {
            "qbo_id": qbo_id,
            "qbo_sync_token": str(row.get("SyncToken", "0")),
            "gsi2pk": ref_key(self.tenant_id, entity),
            "gsi2sk": qbo_id,
        }
        same_name = self.find_unlinked_by_name(entity, values["name"])
        if same_name is not None:
            changes = {k: v for k, v in values.items() if k != "name"}
            try:
                catalog.update(
                    same_name,
                    {**changes, **link},
                    ACTOR,
                    condition=model.qbo_id.does_not_exist(),
                    reason=f"linked to QuickBooks {entity} {qbo_id} (same name)",
                )
            except Conflict:
                return False
            result.linked += 1
            return True
        record_id = f"qbo-{qbo_id}"
        data = {k: v for k, v in values.items() if v is not None}
        record = catalog.new_named(model, self.tenant_id, record_id, {**data, **link})
        try:
            catalog.create(record, ACTOR, reason=f"created from QuickBooks {entity} {qbo_id}")
        except Conflict:
            return False
        if self._by_qbo is not None:
            self._by_qbo.setdefault(entity, {})[qbo_id] = record
        result.created += 1
        return True

    def update(
        self,
        entity: str,
        record: Contact | Product,
        row: dict[str, Any],
        values: dict[str, Any],
        result: Applied,
    ) -> None:
        incoming, held = _token(row.get("SyncToken")), _token(record.qbo_sync_token)
        if incoming < held:
            result.unchanged += 1  # an older version than the one applied: out of order
            return
        if incoming == held:
            values = {k: v for k, v in values.items() if k in self._owned_by_qbo(entity)}
        changes: dict[str, Any] = {k: v for k, v in values.items() if getattr(record, k) != v}
        index = {"gsi2pk": ref_key(self.tenant_id, entity), "gsi2sk": str(row["Id"])}
        if record.gsi2pk != index["gsi2pk"] or record.gsi2sk != index["gsi2sk"]:
            changes.update(index)
        if incoming > held:
            changes["qbo_sync_token"] = str(incoming)
        if not changes:
            result.unchanged += 1
            return
        model = type(record)
        was_active = bool(getattr(record, "active", True))
        fields = sorted(k for k in changes if not k.startswith("gsi") and k != "qbo_sync_token")
        reason = f"changed in QuickBooks ({entity} {row['Id']}, SyncToken {incoming})"
        if fields:
            reason += ": " + ", ".join(fields)
        condition = (
            model.qbo_sync_token.does_not_exist()
            if record.qbo_sync_token is None
            else model.qbo_sync_token == record.qbo_sync_token
        )
        catalog.update(
            record, catalog.named_changes(record, changes), ACTOR, condition=condition, reason=reason
        )
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
        catalog.update(
            record,
            {"active": False},
            ACTOR,
            reason=f"{entity} {qbo_id} deleted or merged away in QuickBooks",
        )
        result.deactivated += 1

    # ------------------------------------------------------------------ invoices and payments
    def _our_invoice(self, row: dict[str, Any]) -> Invoice | None:
        note = str(row.get("PrivateNote") or "")
        marker = mapping.invoice_marker(self.tenant_id, "")
        start = note.find(marker)
        if start < 0:
            return None
        invoice_id = note[start + len(marker) :].split()[0] if note[start + len(marker) :] else ""
        if not invoice_id:
            return None
        found = common.find(Invoice, Invoice.key(self.tenant_id, invoice_id))
        if found is None or (found.qbo_id and str(found.qbo_id) != str(row["Id"])):
            return None
        return found

    def invoice(self, row: dict[str, Any], result: Applied) -> None:
        """Balance (and paid when it reaches 0) from QuickBooks' current copy of our invoice."""
        for _attempt in range(3):
            ours = self._our_invoice(row)
            if ours is None:
                result.skipped += 1  # not one of ours (made in QuickBooks), or another tenant's
                return
            try:
                self._apply_invoice(ours, row, result)
                return
            except UpdateError as exc:
                if not common.conditional_failed(exc):
                    raise
        raise Conflict(f"invoice {row.get('Id')} kept changing while it was applied")

    def _apply_invoice(self, ours: Invoice, row: dict[str, Any], result: Applied) -> None:
        incoming, held = _token(row.get("SyncToken")), _token(ours.qbo_sync_token)
        if incoming < held:
            result.unchanged += 1
            return
        balance = _dec(row.get("Balance"))
        total = _dec(row.get("TotalAmt"))
        status = str(states.status_from_quickbooks_balance(InvoiceStatus(ours.status), balance, total))
        if balance == ours.balance and status == ours.status and incoming == held:
            result.unchanged += 1
            return
        actions: list[Any] = [Invoice.updated_at.set(now_iso())]
        if balance is not None:
            actions.append(Invoice.balance.set(balance))
        if incoming > held:
            actions.append(Invoice.qbo_sync_token.set(str(incoming)))
        if total is not None:
            actions.append(Invoice.qbo_total.set(total))
        reason = f"QuickBooks Invoice {row['Id']}: balance {balance}"
        if status != ours.status:
            actions.append(Invoice.status.set(status))
        actions.append(
            Invoice.history.set(
                Invoice.history.append([common.history_entry(ACTOR, ours.status, status, reason)])
            )
        )
        condition = (
            Invoice.qbo_sync_token.does_not_exist()
            if ours.qbo_sync_token is None
            else Invoice.qbo_sync_token == ours.qbo_sync_token
        )
        ours.update(actions=actions, condition=condition)
        result.updated += 1

    def invoice_gone(self, qbo_id: str, why: str, result: Applied) -> None:
        """Deleted in QuickBooks: recorded on our invoice for a person to decide (never silent)."""
        for record in Entity.gsi1.query(
            Invoice.list_key(self.tenant_id), filter_condition=Invoice.qbo_id == qbo_id
        ):
            if isinstance(record, Invoice):
                record.update(
                    actions=[
                        Invoice.updated_at.set(now_iso()),
                        Invoice.history.set(
                            Invoice.history.append(
                                [
                                    common.history_entry(
                                        ACTOR, record.status, record.status, f"Invoice {qbo_id} {why}"
                                    )
                                ]
                            )
                        ),
                    ]
                )
                result.updated += 1
                logger.warning("our invoice was deleted in QuickBooks", extra={"invoice_id": record.id})
                return
        result.skipped += 1

    def payment(self, payment_id: str, result: Applied) -> None:
        """A payment changes the balance of the invoices it pays, and of its customer."""
        try:
            payment = self.client.read("Payment", payment_id)
        except Permanent:
            result.skipped += 1  # deleted: the invoices' own events (and the next pull) carry it
            return
        invoice_ids: list[str] = []
        for line in payment.get("Line") or []:
            for linked in line.get("LinkedTxn") or []:
                if linked.get("TxnType") == "Invoice" and linked.get("TxnId"):
                    invoice_ids.append(str(linked["TxnId"]))
        for invoice_id in dict.fromkeys(invoice_ids):
            self.invoice(self.client.read("Invoice", invoice_id), result)
        customer = (payment.get("CustomerRef") or {}).get("value")
        if customer:
            row = self.client.read("Customer", str(customer))
            if self.find("Customer", str(customer)) is not None:
                self.upsert("Customer", row, result)
