"""The QuickBooks sync queue consumer: every outbound QuickBooks call goes through here.

One Lambda batch (≤ 10 SQS records) is handled by one SyncBatch:
1. `prepare` groups new-invoice creates of one tenant and sends them as one QuickBooks batch call
   (≤ 30 operations), when the realm's batch budget allows; the results become per-record outcomes.
2. Powertools' BatchProcessor then runs `handle` for each record: the prepared outcome, or the
   single-call path (ensure customer and items, create or sparse-update the invoice).

What happens to a message, by what QuickBooks answered:
- success, or a Permanent fault (recorded on the record: sync_status "error" + sync_error): consumed.
- Throttled: the message's visibility is set to Retry-After (else 60 QuickBooks seconds) + jitter and
  it is reported as a batch item failure, so it comes back later without failing hot.
- Transient: the same with exponential back-off by ApproximateReceiveCount. A redelivered create
  first looks the invoice up (PrivateNote marker / DocNumber), so a lost answer never makes a
  second invoice; the deterministic requestid covers the rest.
- NeedsReconnect / AuthorizationFailed: connection marked needs_reconnect, message kept (long
  visibility) until someone reconnects or it reaches the DLQ.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.observability import logger
from fieldbill.quickbooks import mapping, tokens
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.client import (
    BATCH_MAX_OPERATIONS,
    QboClient,
    batch_item_id,
    batch_request_id,
    quote,
    request_id,
)
from fieldbill.quickbooks.errors import (
    AuthExpired,
    AuthorizationFailed,
    DuplicateName,
    NeedsReconnect,
    Permanent,
    QboError,
    StaleObject,
    Throttled,
    Transient,
)
from fieldbill.settings import get_settings
from fieldbill.store.models import META, Contact, Entity, HistoryEntry, Invoice, Product, QboConnection
from fieldbill.workflows.messages import QboSyncMessage

ACTOR = "qbo_sync"
MAX_VISIBILITY_SECONDS = 43_200  # SQS maximum
TRANSIENT_BASE_QBO_SECONDS = 4.0
TRANSIENT_CAP_QBO_SECONDS = 900.0
RECONNECT_WAIT_QBO_SECONDS = 3600.0
STALE_RETRIES = 3
# Below this much Lambda time left, remaining records go back to the queue untouched.
MIN_REMAINING_MS = 8_000
LOG_KEYS = ("tenant_id", "realm_id", "run_id", "invoice_id", "entity_id", "message_id", "kind")

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """The record goes back to the queue; its visibility timeout is already set."""


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


# ---------------------------------------------------------------------------------- helpers
def _scale() -> float:
    """Real seconds per QuickBooks second."""
    return float(get_settings().qbo_seconds_per_minute) / 60.0


def _visibility(qbo_seconds: float, jitter: float = 0.2) -> int:
    real = qbo_seconds * _scale() * random.uniform(1.0, 1.0 + jitter)
    return max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(real)))


def transient_backoff_qbo_seconds(receive_count: int) -> float:
    return min(TRANSIENT_CAP_QBO_SECONDS, TRANSIENT_BASE_QBO_SECONDS * 2 ** max(0, receive_count - 1))


_VERSION_RE = re.compile(r"\bversion=(\d+)\b")
_DUPLICATE_ID_RE = re.compile(r"\bId=(\d+)")


def synced_version(invoice: Invoice) -> int | None:
    """The invoice version last synced (kept in the history entry of each sync)."""
    explicit = getattr(invoice, "qbo_synced_version", None)
    if explicit is not None:
        return int(explicit)
    for entry in reversed(invoice.history or []):
        if entry.actor == ACTOR and entry.to_state == "synced":
            match = _VERSION_RE.search(entry.reason or "")
            if match:
                return int(match.group(1))
    return None


def already_synced(invoice: Invoice) -> bool:
    if invoice.sync_status != "synced" or not invoice.qbo_id:
        return False
    done = synced_version(invoice)
    return done is not None and done >= int(invoice.version)


def _history(from_state: str | None, to_state: str, reason: str) -> HistoryEntry:
    return HistoryEntry(at=now_iso(), actor=ACTOR, from_state=from_state, to_state=to_state, reason=reason)


def _find(model: type[Any], pk: str) -> Any:
    try:
        record = Entity.get(pk, META, consistent_read=True)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, model) else None


def _mapping_permanent(exc: mapping.MappingError) -> Permanent:
    return Permanent("fieldbill.mapping", "cannot map the record to QuickBooks", str(exc), exc.element)


def _message_age_ms(record: SQSRecord) -> float | None:
    sent = record.attributes.sent_timestamp
    return max(0.0, time.time() * 1000 - int(sent)) if sent else None


# ---------------------------------------------------------------------------------- one batch
@dataclass
class _Tenant:
    connection: QboConnection
    client: QboClient
    settings: mapping.QboSettings
    customers: dict[str, str] = field(default_factory=dict)  # contact id -> QuickBooks id
    items: dict[str, str] = field(default_factory=dict)  # product id -> QuickBooks id


_income_accounts: dict[str, str] = {}  # realm -> an income account id (looked up once per process)


class SyncBatch:
    def __init__(self, context: Any = None, *, client_factory: Any = None) -> None:
        self.context = context
        self.client_factory = client_factory or (lambda tenant_id: QboClient(tenant_id))
        self.tenants: dict[str, _Tenant] = {}
        self.outcomes: dict[str, BaseException | None] = {}

    # ------------------------------------------------------------------ entry points
    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            self.prepare([SQSRecord(r) for r in event.get("Records", [])])
        except Exception:  # batching is an optimisation: every record still gets its own handling
            logger.exception("batch preparation failed; records are handled one by one")
        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=self.handle, processor=processor, context=self.context
        )

    def handle(self, record: SQSRecord) -> None:
        message = QboSyncMessage.model_validate_json(record.body)
        keys = {
            "tenant_id": message.tenant_id,
            "run_id": message.run_id,
            "entity_id": message.entity_id,
            "message_id": record.message_id,
            "kind": message.kind,
        }
        logger.append_keys(**keys)
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            if self._out_of_time():
                self._retry_later(record, 1, "Lambda time nearly spent")
            if record.message_id in self.outcomes:
                outcome = self.outcomes[record.message_id]
                if outcome is not None:
                    raise outcome
                self._done(message, record)
                return
            self._dispatch(message, receive_count)
            self._done(message, record)
        except RetryLater:
            raise
        except Throttled as exc:
            if exc.local:
                qmetrics.count("LimiterDeferrals", self._realm(message.tenant_id))
            self._retry_later(record, _visibility(exc.retry_after_seconds, jitter=0.5), "throttled")
        except (NeedsReconnect, AuthorizationFailed) as exc:
            if isinstance(exc, AuthorizationFailed):
                tokens.mark_needs_reconnect(message.tenant_id, "QuickBooks refused authorization (120)")
            self._retry_later(
                record,
                _visibility(RECONNECT_WAIT_QBO_SECONDS, jitter=0.1),
                "QuickBooks connection needs reconnect",
            )
        except (Transient, AuthExpired) as exc:
            qmetrics.count("Retries", self._realm(message.tenant_id))
            self._retry_later(
                record, _visibility(transient_backoff_qbo_seconds(receive_count)), f"transient: {exc}"
            )
        except Permanent as exc:
            self._record_permanent(message, exc)
        except mapping.MappingError as exc:
            self._record_permanent(message, _mapping_permanent(exc))
        except Exception as exc:
            logger.exception("unexpected error syncing to QuickBooks")
            qmetrics.count("Retries", self._realm(message.tenant_id))
            self._retry_later(
                record,
                _visibility(transient_backoff_qbo_seconds(receive_count)),
                f"unexpected: {type(exc).__name__}",
            )
        finally:
            logger.remove_keys(list(LOG_KEYS))

    # ------------------------------------------------------------------ plumbing
    def _out_of_time(self) -> bool:
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return callable(remaining) and int(remaining()) < MIN_REMAINING_MS

    def _retry_later(self, record: SQSRecord, seconds: int, why: str) -> None:
        queue_url = get_settings().qbo_sync_queue_url
        try:
            _sqs().change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=int(seconds)
            )
        except Exception:  # the queue's own visibility timeout still brings the message back
            logger.exception("could not change message visibility")
        logger.info("message returned to the queue", extra={"delay_seconds": seconds, "reason": why})
        raise RetryLater(why)

    def _done(self, message: QboSyncMessage, record: SQSRecord) -> None:
        if message.kind == "sync_invoice":
            age = _message_age_ms(record)
            if age is not None:
                qmetrics.latency_ms("SyncLatency", self._realm(message.tenant_id), age)

    def _realm(self, tenant_id: str) -> str | None:
        tenant = self.tenants.get(tenant_id)
        return tenant.connection.realm_id if tenant else None

    def tenant(self, tenant_id: str) -> _Tenant:
        found = self.tenants.get(tenant_id)
        if found is None:
            connection = tokens.get_connection(tenant_id)
            if connection is None or connection.status != "connected" or not connection.realm_id:
                raise NeedsReconnect(f"tenant {tenant_id} has no live QuickBooks connection")
            found = _Tenant(
                connection,
                self.client_factory(tenant_id),
                mapping.QboSettings.from_map(connection.settings.as_dict() if connection.settings else {}),
            )
            self.tenants[tenant_id] = found
        logger.append_keys(realm_id=found.connection.realm_id)
        return found

    def _dispatch(self, message: QboSyncMessage, receive_count: int) -> None:
        if message.kind == "sync_invoice":
            self.sync_invoice(message, receive_count)
        elif message.kind == "void_invoice":
            self.void_invoice(message)
        elif message.kind == "sync_contact":
            self.sync_contact(message)
        elif message.kind == "sync_product":
            self.sync_product(message)

    # ------------------------------------------------------------------ invoices
    def _load_invoice(self, message: QboSyncMessage) -> Invoice | None:
        logger.append_keys(invoice_id=message.entity_id)
        invoice = _find(Invoice, Invoice.key(message.tenant_id, message.entity_id))
        if invoice is None:
            logger.warning("invoice to sync not found; message dropped")
            return None
        if invoice.destination != "quickbooks":
            logger.info("invoice is not for QuickBooks; nothing to sync")
            return None
        return invoice

    def sync_invoice(self, message: QboSyncMessage, receive_count: int) -> None:
        invoice = self._load_invoice(message)
        if invoice is None or already_synced(invoice):
            return
        tenant = self.tenant(message.tenant_id)
        body = self.invoice_body(tenant, invoice)
        if invoice.qbo_id is None:
            found = None
            if receive_count > 1 or invoice.sync_status == "unknown":
                found = self.find_invoice(tenant, invoice, body)
            if found is not None:
                logger.info(
                    "invoice found in QuickBooks after an unknown outcome: not created again",
                    extra={"qbo_id": found.get("Id")},
                )
                result = found
            else:
                result = self.create_invoice(tenant, invoice, body)
        else:
            result = self.update_invoice(tenant, invoice, body)
        self.mark_synced(invoice, result, tenant)

    def invoice_body(self, tenant: _Tenant, invoice: Invoice) -> dict[str, Any]:
        customer = self.ensure_customer(tenant, invoice.tenant_id, invoice.contact_id)
        products = [ln.product_id for ln in invoice.lines if ln.product_id]
        items = self.ensure_items(tenant, invoice.tenant_id, products)
        return mapping.invoice_to_qbo(
            invoice, customer, items, tenant.settings, invoice_number=getattr(invoice, "number", None)
        )

    @staticmethod
    def create_request_id(invoice: Invoice) -> str:
        return request_id("invoice", invoice.tenant_id, invoice.id, int(invoice.version))

    def create_invoice(self, tenant: _Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return tenant.client.create("Invoice", body, self.create_request_id(invoice))
        except Transient as exc:
            if exc.maybe_committed:
                self._mark_unknown(invoice)
            raise

    def find_invoice(self, tenant: _Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any] | None:
        """Our invoice in QuickBooks, if a create whose answer was lost went through."""
        client = tenant.client
        if body.get("DocNumber"):
            rows = client.query("Invoice", f"DocNumber = {quote(str(body['DocNumber']))}")
        else:
            where = f"CustomerRef = {quote(body['CustomerRef']['value'])}"
            if body.get("TxnDate"):
                where += f" AND TxnDate = {quote(body['TxnDate'])}"
            rows = list(client.query_all("Invoice", where))
        return next((r for r in rows if mapping.has_marker(r, invoice.tenant_id, invoice.id)), None)

    def update_invoice(self, tenant: _Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any]:
        sync_token = invoice.qbo_sync_token
        if sync_token is None:
            sync_token = str(tenant.client.read("Invoice", str(invoice.qbo_id))["SyncToken"])
        for attempt in range(STALE_RETRIES + 1):
            rid = request_id(
                "invoice-update", invoice.tenant_id, invoice.id, int(invoice.version), sync_token
            )
            try:
                return tenant.client.update(
                    "Invoice", {**body, "Id": invoice.qbo_id, "SyncToken": sync_token}, rid
                )
            except StaleObject:
                if attempt == STALE_RETRIES:
                    raise
                sync_token = str(tenant.client.read("Invoice", str(invoice.qbo_id))["SyncToken"])
        raise AssertionError("unreachable")

    def _mark_unknown(self, invoice: Invoice) -> None:
        with contextlib.suppress(UpdateError):
            invoice.update(
                actions=[Invoice.sync_status.set("unknown"), Invoice.updated_at.set(now_iso())],
                condition=Invoice.qbo_id.does_not_exist(),
            )

    def mark_synced(self, invoice: Invoice, result: dict[str, Any], tenant: _Tenant) -> None:
        qbo_id = str(result["Id"])
        total = result.get("TotalAmt")
        common: list[Action] = [
            Invoice.qbo_id.set(qbo_id),
            Invoice.qbo_sync_token.set(str(result.get("SyncToken", "0"))),
            Invoice.updated_at.set(now_iso()),
        ]
        if result.get("DocNumber"):
            common.append(Invoice.qbo_doc_number.set(str(result["DocNumber"])))
        if total is not None:
            common.append(Invoice.qbo_total.set(Decimal(str(total))))
        synced: list[Action] = [
            Invoice.sync_status.set("synced"),
            Invoice.sync_error.remove(),
            Invoice.synced_at.set(now_iso()),
            Invoice.history.set(
                Invoice.history.append(
                    [
                        _history(
                            invoice.sync_status,
                            "synced",
                            f"QuickBooks Invoice {qbo_id} version={int(invoice.version)}",
                        )
                    ]
                )
            ),
        ]
        if invoice.run_id:
            synced += [
                Invoice.gsi2pk.set(Invoice.run_key(invoice.tenant_id, invoice.run_id)),
                Invoice.gsi2sk.set(Invoice.run_sort_key("synced", invoice.id)),
            ]
        try:
            invoice.update(actions=common + synced, condition=Invoice.version == invoice.version)
        except UpdateError:
            # Changed while we synced: keep the QuickBooks id (the next message updates, never
            # creates again) but not "synced", which would hide the newer version.
            invoice.update(actions=common)
            logger.info("invoice changed during sync; its newer version syncs on its own message")
            return
        realm = tenant.connection.realm_id
        qmetrics.count("InvoicesSynced", realm)
        if total is not None and Decimal(str(total)) != invoice.total:
            logger.info(
                "QuickBooks total differs from ours (tax)",
                extra={"qbo_total": str(total), "total": str(invoice.total)},
            )
        logger.info("invoice synced", extra={"qbo_id": qbo_id})

    def mark_error(self, invoice: Invoice, error: Permanent) -> None:
        actions: list[Action] = [
            Invoice.sync_status.set("error"),
            Invoice.sync_error.set(error.as_dict()),
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(
                Invoice.history.append(
                    [
                        _history(
                            invoice.sync_status,
                            "error",
                            f"QuickBooks {error.code}: {error.message} {error.element}".strip(),
                        )
                    ]
                )
            ),
        ]
        if invoice.run_id:
            actions += [
                Invoice.gsi2pk.set(Invoice.run_key(invoice.tenant_id, invoice.run_id)),
                Invoice.gsi2sk.set(Invoice.run_sort_key("error", invoice.id)),
            ]
        try:
            invoice.update(actions=actions, condition=Invoice.version == invoice.version)
        except UpdateError:
            logger.info("invoice changed; the error of its older version is not recorded")

    def void_invoice(self, message: QboSyncMessage) -> None:
        invoice = _find(Invoice, Invoice.key(message.tenant_id, message.entity_id))
        logger.append_keys(invoice_id=message.entity_id)
        if invoice is None or not invoice.qbo_id:
            logger.info("invoice never reached QuickBooks: nothing to void")
            return
        tenant = self.tenant(message.tenant_id)
        client = tenant.client
        for attempt in range(STALE_RETRIES + 1):
            current = client.read("Invoice", invoice.qbo_id)
            rid = request_id("void", invoice.tenant_id, invoice.id, current["SyncToken"])
            try:
                result = client.void("Invoice", invoice.qbo_id, str(current["SyncToken"]), rid)
                break
            except StaleObject:
                if attempt == STALE_RETRIES:
                    raise
        invoice.update(
            actions=[
                Invoice.qbo_sync_token.set(str(result.get("SyncToken", ""))),
                Invoice.qbo_total.set(Decimal(str(result.get("TotalAmt", "0")))),
                Invoice.updated_at.set(now_iso()),
                Invoice.history.set(
                    Invoice.history.append(
                        [
                            _history(
                                invoice.sync_status,
                                invoice.sync_status,
                                f"voided in QuickBooks (Invoice {invoice.qbo_id})",
                            )
                        ]
                    )
                ),
            ]
        )
        logger.info("invoice voided in QuickBooks", extra={"qbo_id": invoice.qbo_id})

    # ------------------------------------------------------------------ customers and items
    def ensure_customer(self, tenant: _Tenant, tenant_id: str, contact_id: str) -> str:
        if contact_id in tenant.customers:
            return tenant.customers[contact_id]
        contact = _find(Contact, Contact.key(tenant_id, contact_id))
        if contact is None:
            raise Permanent(
                "fieldbill.contact_missing",
                "the invoice's contact does not exist",
                f"contact {contact_id}",
                "CustomerRef",
            )
        if not contact.qbo_id:
            body = mapping.contact_to_qbo(contact.name, contact.email)
            found = self._find_by_name(tenant, "Customer", "DisplayName", body["DisplayName"])
            if found is None:
                try:
                    found = tenant.client.create(
                        "Customer", body, request_id("customer", tenant_id, contact_id)
                    )
                except DuplicateName as exc:
                    found = self._resolve_duplicate(
                        tenant, "Customer", "DisplayName", body["DisplayName"], exc
                    )
            contact.update(
                actions=[
                    Contact.qbo_id.set(str(found["Id"])),
                    Contact.qbo_sync_token.set(str(found.get("SyncToken", "0"))),
                    Contact.updated_at.set(now_iso()),
                ]
            )
        tenant.customers[contact_id] = str(contact.qbo_id)
        return str(contact.qbo_id)

    def ensure_items(self, tenant: _Tenant, tenant_id: str, product_ids: Iterable[str]) -> dict[str, str]:
        for product_id in dict.fromkeys(product_ids):
            if product_id not in tenant.items:
                tenant.items[product_id] = self.ensure_item(tenant, tenant_id, product_id)
        return tenant.items

    def ensure_item(self, tenant: _Tenant, tenant_id: str, product_id: str) -> str:
        product = _find(Product, Product.key(tenant_id, product_id))
        if product is None:
            raise Permanent(
                "fieldbill.product_missing",
                "an invoice line's product does not exist",
                f"product {product_id}",
                "Line.SalesItemLineDetail.ItemRef",
            )
        if product.qbo_id:
            return str(product.qbo_id)
        name = mapping.clean_name(product.name, mapping.ITEM_NAME_MAX)
        found = self._find_by_name(tenant, "Item", "Name", name)
        if found is None:
            income = (
                product.income_account_ref
                or tenant.settings.default_income_account
                or self._income_account(tenant)
            )
            body = mapping.product_to_qbo(
                product.name,
                product.kind,
                product.default_unit_price,
                income,
                product.expense_account_ref or tenant.settings.default_expense_account,
            )
            try:
                found = tenant.client.create("Item", body, request_id("item", tenant_id, product_id))
            except DuplicateName as exc:
                found = self._resolve_duplicate(tenant, "Item", "Name", name, exc)
        product.update(
            actions=[
                Product.qbo_id.set(str(found["Id"])),
                Product.qbo_sync_token.set(str(found.get("SyncToken", "0"))),
                Product.updated_at.set(now_iso()),
            ]
        )
        return str(found["Id"])

    def _resolve_duplicate(
        self, tenant: _Tenant, entity: str, field_name: str, name: str, error: DuplicateName
    ) -> dict[str, Any]:
        """6240: the name is taken. Use that record if it is a(n inactive) customer/item: found by
        name, else by the Id QuickBooks names in the fault detail (names that differ only in spacing)."""
        found = self._find_by_name(tenant, entity, field_name, name, include_inactive=True)
        if found is not None:
            return found
        match = _DUPLICATE_ID_RE.search(error.detail or "")
        if match:
            try:
                record = tenant.client.read(entity, match.group(1))
            except Permanent:
                record = None  # not of this entity: a vendor or an employee holds the name
            if record is not None:
                if record.get("Active") is False:
                    return self._reactivate(tenant, entity, record)
                return record
        raise error  # a person must rename one of them

    def _reactivate(self, tenant: _Tenant, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        """An inactive customer or item cannot be invoiced: make it active again."""
        rid = request_id("reactivate", entity, row["Id"], row["SyncToken"])
        body = {"Id": row["Id"], "SyncToken": row["SyncToken"], "Active": True}
        return tenant.client.update(entity, body, rid)

    def _find_by_name(
        self, tenant: _Tenant, entity: str, field_name: str, name: str, include_inactive: bool = False
    ) -> dict[str, Any] | None:
        rows = tenant.client.query(entity, f"{field_name} = {quote(name)}", max_results=10)
        if not rows and include_inactive:
            where = f"{field_name} = {quote(name)} AND Active = false"
            inactive = tenant.client.query(entity, where, max_results=10)
            if inactive:
                return self._reactivate(tenant, entity, inactive[0])
        return rows[0] if rows else None

    def _income_account(self, tenant: _Tenant) -> str:
        realm = str(tenant.connection.realm_id)
        if realm not in _income_accounts:
            rows = tenant.client.query("Account", "AccountType = 'Income'", max_results=10)
            if not rows:
                raise Permanent(
                    "fieldbill.no_income_account",
                    "the company has no income account",
                    "choose a default income account in the QuickBooks settings",
                    "IncomeAccountRef",
                )
            _income_accounts[realm] = str(rows[0]["Id"])
        return _income_accounts[realm]

    def sync_contact(self, message: QboSyncMessage) -> None:
        tenant = self.tenant(message.tenant_id)
        contact = _find(Contact, Contact.key(message.tenant_id, message.entity_id))
        if contact is None:
            return
        if not contact.qbo_id:
            self.ensure_customer(tenant, message.tenant_id, contact.id)
            return
        body = mapping.contact_to_qbo(contact.name, contact.email)
        result = self._sparse_update(
            tenant,
            "Customer",
            str(contact.qbo_id),
            contact.qbo_sync_token,
            body,
            ("customer-update", message.tenant_id, contact.id, contact.updated_at),
        )
        contact.update(actions=[Contact.qbo_sync_token.set(str(result.get("SyncToken", "0")))])

    def sync_product(self, message: QboSyncMessage) -> None:
        tenant = self.tenant(message.tenant_id)
        product = _find(Product, Product.key(message.tenant_id, message.entity_id))
        if product is None:
            return
        if not product.qbo_id:
            self.ensure_item(tenant, message.tenant_id, product.id)
            return
        body: dict[str, Any] = {"Name": mapping.clean_name(product.name, mapping.ITEM_NAME_MAX)}
        if product.default_unit_price is not None:
            body["UnitPrice"] = product.default_unit_price
        result = self._sparse_update(
            tenant,
            "Item",
            str(product.qbo_id),
            product.qbo_sync_token,
            body,
            ("item-update", message.tenant_id, product.id, product.updated_at),
        )
        product.update(actions=[Product.qbo_sync_token.set(str(result.get("SyncToken", "0")))])

    def _sparse_update(
        self,
        tenant: _Tenant,
        entity: str,
        qbo_id: str,
        sync_token: str | None,
        body: dict[str, Any],
        id_parts: tuple[Any, ...],
    ) -> dict[str, Any]:
        token = sync_token or str(tenant.client.read(entity, qbo_id)["SyncToken"])
        for attempt in range(STALE_RETRIES + 1):
            try:
                return tenant.client.update(
                    entity, {**body, "Id": qbo_id, "SyncToken": token}, request_id(*id_parts, token)
                )
            except StaleObject:
                if attempt == STALE_RETRIES:
                    raise
                token = str(tenant.client.read(entity, qbo_id)["SyncToken"])
        raise AssertionError("unreachable")

    def _record_permanent(self, message: QboSyncMessage, error: Permanent) -> None:
        qmetrics.count("PermanentErrors", self._realm(message.tenant_id))
        logger.warning(
            "QuickBooks refused the record; recorded, not retried", extra={"error": error.as_dict()}
        )
        if message.kind in ("sync_invoice", "void_invoice"):
            invoice = _find(Invoice, Invoice.key(message.tenant_id, message.entity_id))
            if invoice is not None:
                self.mark_error(invoice, error)

    # ------------------------------------------------------------------ batch creates
    def prepare(self, records: list[SQSRecord]) -> None:
        """Send the new invoices of one tenant as one QuickBooks batch call (≥ 2 of them)."""
        by_tenant: dict[str, list[tuple[SQSRecord, QboSyncMessage]]] = {}
        for record in records:
            try:
                message = QboSyncMessage.model_validate_json(record.body)
            except ValueError:
                continue
            if message.kind == "sync_invoice" and int(record.attributes.approximate_receive_count or 1) == 1:
                by_tenant.setdefault(message.tenant_id, []).append((record, message))
        for tenant_id, group in by_tenant.items():
            if len(group) >= 2:
                self._prepare_tenant(tenant_id, group)

    def _prepare_tenant(self, tenant_id: str, group: list[tuple[SQSRecord, QboSyncMessage]]) -> None:
        try:
            tenant = self.tenant(tenant_id)
        except QboError:
            return
        ready: list[tuple[SQSRecord, Invoice, dict[str, Any]]] = []
        for record, message in group:
            invoice = _find(Invoice, Invoice.key(tenant_id, message.entity_id))
            if (
                invoice is None
                or invoice.destination != "quickbooks"
                or invoice.qbo_id
                or invoice.sync_status == "unknown"
                or already_synced(invoice)
            ):
                continue
            try:
                ready.append((record, invoice, self.invoice_body(tenant, invoice)))
            except (QboError, mapping.MappingError):
                continue  # handled (and classified) on its own path
        if len(ready) < 2:
            return
        ready = ready[:BATCH_MAX_OPERATIONS]
        ids = {rec.message_id: self.create_request_id(inv) for rec, inv, _ in ready}
        operations = [
            {"bId": batch_item_id(ids[rec.message_id]), "operation": "create", "Invoice": body}
            for rec, _, body in ready
        ]
        try:
            results = tenant.client.batch(operations, batch_request_id(list(ids.values())))
        except Throttled as exc:
            if exc.local:
                return  # no batch budget now: the single-call path takes them
            for rec, _, _ in ready:
                self.outcomes[rec.message_id] = exc
            return
        except Transient as exc:
            for rec, inv, _ in ready:
                if exc.maybe_committed:
                    self._mark_unknown(inv)
                self.outcomes[rec.message_id] = exc
            return
        except QboError as exc:
            for rec, _, _ in ready:
                self.outcomes[rec.message_id] = exc
            return
        for rec, inv, _ in ready:
            result = results.get(batch_item_id(ids[rec.message_id]))
            if isinstance(result, dict):
                self.mark_synced(inv, result, tenant)
                self.outcomes[rec.message_id] = None
            elif isinstance(result, BaseException):
                self.outcomes[rec.message_id] = result
        logger.info("batch create sent", extra={"operations": len(operations), "tenant_id": tenant_id})


def handle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The QBO sync queue consumer (SQS, ReportBatchItemFailures)."""
    return SyncBatch(context).run(event)


def message_body(message: QboSyncMessage) -> str:
    return json.dumps(message.model_dump(exclude_none=True))
