"""The QuickBooks sync queue consumer: every outbound QuickBooks call goes through here.

One Lambda batch of SQS records is handled by one SyncBatch (docs/sync.md):
1. `prepare` takes the new-invoice creates of each tenant: loads them in one read, links their
   customers and items (one name query for all missing customers), looks up the ones whose earlier
   attempt may have reached QuickBooks, and sends the rest as QuickBooks batch calls of ≤ 30
   operations. The results become per-record outcomes.
2. Powertools' BatchProcessor then runs `handle` for each record: the prepared outcome, or the
   single-call path (ensure customer and items, create or sparse-update the invoice).
3. Records going back to the queue get their new visibility in one call per 10 records.

What happens to a message, by what QuickBooks answered:
- success, or a Permanent fault (recorded on the record: sync_status "error" + sync_error): consumed.
- Throttled (our limiter has no budget, or QuickBooks answered 429; nothing of the call was done):
  the wait is Retry-After, else the realm's cool-down (5 s doubling to 60 s while 429s follow each
  other), else the limiter's own estimate, + jitter. The message is handed back: a copy is sent with
  that delay and the original consumed, so waiting its turn neither counts as a receive (towards
  the DLQ, the transient back-off, the look-up of a redelivery) nor fails hot. The copy carries the
  doubt of the original (`attempted`). If SQS refuses the copy, the original stays, with the wait
  as its visibility.
- Transient: visibility set to a back-off growing by half per receive (transient_backoff_qbo_seconds)
  and the record reported as a batch item failure.
  A redelivered create first looks the invoice up (PrivateNote marker / DocNumber), so a lost
  answer never makes a second invoice; the deterministic requestid covers the rest.
- NeedsReconnect / AuthorizationFailed: connection marked needs_reconnect; the message is parked:
  kept in flight with a visibility that doubles from one QuickBooks minute to an hour, its receipt
  handle noted so `resume_parked` (called after a reconnect) makes it visible again at once.
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
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

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
from fieldbill.quickbooks.limiter import DEFAULT_MAX_WAIT_SECONDS
from fieldbill.settings import get_settings
from fieldbill.store import common as store_common
from fieldbill.store.models import (
    META,
    Contact,
    Entity,
    HistoryEntry,
    Invoice,
    Product,
    QboConnection,
    qbo_ref_key,
)
from fieldbill.workflows.messages import QboSyncMessage

ACTOR = "qbo_sync"
MAX_VISIBILITY_SECONDS = 43_200  # SQS maximum
MAX_DELAY_SECONDS = 900  # SQS maximum DelaySeconds: a longer wait keeps the message, as a visibility
MAX_HANDBACKS = 100  # then waits count as receives (towards the DLQ): something is stuck
TRANSIENT_BASE_QBO_SECONDS = 4.0
TRANSIENT_CAP_QBO_SECONDS = 900.0
TRANSIENT_GROWTH = 1.5
RECONNECT_WAIT_QBO_SECONDS = 3600.0
RECONNECT_FIRST_QBO_SECONDS = 60.0
STALE_RETRIES = 3
# The error code of work refused until the settings are saved (inbound.RESUMABLE_ERROR_PREFIXES).
SETTINGS_INCOMPLETE = "fieldbill.settings_incomplete"
# Below this much Lambda time left, remaining records go back to the queue untouched.
MIN_REMAINING_MS = 8_000
LOG_KEYS = ("tenant_id", "realm_id", "run_id", "invoice_id", "entity_id", "message_id", "kind")

SQS_BATCH = 10
QUERY_IN_MAX = 30  # values in one IN (...) of a QuickBooks query


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
    """4 s growing by half each receive (4, 6, 9, 13.5 … 15 min). Receives also count deferrals by
    the limiter, so doubling would punish a message for waiting its turn; 25 receives still span
    more than three hours of a QuickBooks outage before the DLQ."""
    exponent = max(0, receive_count - 1)
    if exponent > 20:
        return TRANSIENT_CAP_QBO_SECONDS
    return min(TRANSIENT_CAP_QBO_SECONDS, TRANSIENT_BASE_QBO_SECONDS * TRANSIENT_GROWTH**exponent)


def reconnect_wait_qbo_seconds(receive_count: int) -> float:
    """A parked message looks again after 1, 2, 4 … 60 QuickBooks minutes (resume_parked: at once)."""
    return min(RECONNECT_WAIT_QBO_SECONDS, RECONNECT_FIRST_QBO_SECONDS * 2 ** max(0, receive_count - 1))


def batch_wait_seconds() -> float:
    """Real seconds a consumer may wait for a batch slot before giving its records back to the queue:
    about three batch intervals (40 batches a minute: 4.5 s in production), 2 to 10 s."""
    settings = get_settings()
    interval = float(settings.qbo_seconds_per_minute) / max(1, int(settings.qbo_batches_per_minute))
    return min(10.0, max(2.0, 3 * interval))


def _write(record: Any, actions: list[Action], condition: Any = None) -> None:
    """UpdateItem without reading the item back (Model.update asks for ALL_NEW: a needless read)."""
    hash_key, range_key = record._get_hash_range_key_serialized_values()
    record._get_connection().update_item(hash_key, range_key=range_key, actions=actions, condition=condition)


def _batch_get(model: type[Any], keys: Iterable[str]) -> dict[str, Any]:
    """pk -> record of `model`, one BatchGetItem per 100 keys (consistent reads)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    found = Entity.batch_get([(k, META) for k in wanted], consistent_read=True)
    return {r.pk: r for r in found if isinstance(r, model)}


def parked_key(tenant_id: str) -> str:
    return f"T#{tenant_id}#QBOPARKED"


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


def _message_age_ms(record: SQSRecord, message: QboSyncMessage) -> float | None:
    sent = message.queued_at_ms or record.attributes.sent_timestamp
    return max(0.0, time.time() * 1000 - int(sent)) if sent else None


def _receive_count(record: SQSRecord) -> int:
    return int(record.attributes.approximate_receive_count or 1)


def maybe_sent_before(record: SQSRecord, message: QboSyncMessage) -> bool:
    """An earlier delivery of this work may have reached QuickBooks (the function may have died
    after sending): an invoice is then looked up before it is created."""
    return message.attempted or _receive_count(record) > 1


def handback_copy(record: SQSRecord, message: QboSyncMessage) -> QboSyncMessage:
    """The message that replaces one made to wait: the same work, a fresh receive count, and the
    doubt (and first queue time) of the one it replaces."""
    sent = record.attributes.sent_timestamp
    return message.model_copy(
        update={
            "attempted": maybe_sent_before(record, message),
            "handbacks": message.handbacks + 1,
            "queued_at_ms": message.queued_at_ms or (int(sent) if sent else None),
        }
    )


# ---------------------------------------------------------------------------------- one batch
@dataclass
class _Tenant:
    connection: QboConnection
    client: QboClient
    settings: mapping.QboSettings
    customers: dict[str, str] = field(default_factory=dict)  # contact id -> QuickBooks id
    items: dict[str, str] = field(default_factory=dict)  # product id -> QuickBooks id


class SyncBatch:
    def __init__(self, context: Any = None, *, client_factory: Any = None) -> None:
        self.context = context
        self.client_factory = client_factory or (lambda tenant_id: QboClient(tenant_id))
        self.tenants: dict[str, _Tenant] = {}
        self.outcomes: dict[str, BaseException | None] = {}
        self.invoices: dict[str, Invoice] = {}  # pk -> invoice loaded by prepare
        self._visibility: list[tuple[str, int]] = []  # (receipt handle, seconds) to set before returning
        self._parked: list[tuple[str, str, str, int]] = []  # (tenant, message id, receipt handle, seconds)
        self._handbacks: list[tuple[SQSRecord, QboSyncMessage, int]] = []  # (record, copy, delay seconds)
        # Records sent one by one on spare requests while no batch slot is free: message id -> the
        # wait for a batch slot (what they wait at most if the spare requests run out too).
        self.spare: dict[str, Throttled] = {}

    # ------------------------------------------------------------------ entry points
    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            self.prepare([SQSRecord(r) for r in event.get("Records", [])])
        except Exception:  # batching is an optimisation: every record still gets its own handling
            logger.exception("batch preparation failed; records are handled one by one")
        try:
            # A processor holds one batch's results: one per invocation, so invocations that share
            # a process (the local runtime runs a mapping's consumers as threads) never mix them.
            processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
                event=event, record_handler=self.handle, processor=processor, context=self.context
            )
            unsent = self._flush_handbacks()
            if unsent:
                response.setdefault("batchItemFailures", []).extend({"itemIdentifier": m} for m in unsent)
            return response
        finally:
            self._flush_visibility()
            self._note_parked()

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
        receive_count = _receive_count(record)
        batch_wait = self.spare.get(record.message_id)
        try:
            if self._out_of_time():
                self._retry_later(record, 1, "Lambda time nearly spent")
            if record.message_id in self.outcomes:
                outcome = self.outcomes[record.message_id]
                if outcome is not None:
                    raise outcome
                self._done(message, record)
                return
            budget = contextlib.nullcontext()
            if batch_wait is not None:
                budget = self.tenant(message.tenant_id).client.spare_budget()  # type: ignore[assignment]
            with budget:
                self._dispatch(message, maybe_sent_before(record, message))
            self._done(message, record)
        except RetryLater:
            raise
        except Throttled as exc:
            if batch_wait is not None and batch_wait.retry_after_seconds < exc.retry_after_seconds:
                exc = batch_wait  # no spare request now: wait for the batch slot, which comes sooner
            if exc.local:
                qmetrics.count("LimiterDeferrals", self._realm(message.tenant_id))
            # Our limiter knows when its budget frees (little jitter); a QuickBooks 429 spreads more.
            jitter = 0.1 if exc.local else 0.5
            seconds = _visibility(exc.retry_after_seconds, jitter=jitter)
            if seconds <= MAX_DELAY_SECONDS and message.handbacks < MAX_HANDBACKS:
                # Nothing of this call reached QuickBooks: the work waits in a fresh copy.
                self._handbacks.append((record, handback_copy(record, message), seconds))
                return
            self._retry_later(record, seconds, "throttled")
        except (NeedsReconnect, AuthorizationFailed) as exc:
            if isinstance(exc, AuthorizationFailed):
                tokens.mark_needs_reconnect(message.tenant_id, "QuickBooks refused authorization (120)")
            seconds = _visibility(reconnect_wait_qbo_seconds(receive_count), jitter=0.1)
            self._parked.append((message.tenant_id, record.message_id, record.receipt_handle, seconds))
            self._retry_later(record, seconds, "QuickBooks connection needs reconnect")
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
        """Report the record as failed; its visibility is set before the invocation returns."""
        self._visibility.append((record.receipt_handle, int(seconds)))
        logger.info("message returned to the queue", extra={"delay_seconds": seconds, "reason": why})
        raise RetryLater(why)

    def _flush_visibility(self) -> None:
        pending, self._visibility = self._visibility, []
        if not pending:
            return
        queue_url = get_settings().qbo_sync_queue_url
        for start in range(0, len(pending), SQS_BATCH):
            chunk = pending[start : start + SQS_BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, (handle, seconds) in enumerate(chunk)
            ]
            try:
                answer = _sqs().change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
                if answer.get("Failed"):
                    logger.warning("visibility not changed", extra={"failed": answer["Failed"]})
            except Exception:  # the queue's own visibility timeout still brings the messages back
                logger.exception("could not change message visibility")

    def _flush_handbacks(self) -> list[str]:
        """Send the copies of the records made to wait (their originals are then deleted as done).
        Returns the message ids whose copy SQS did not take: those stay failed, with their wait as
        visibility, so nothing is dropped."""
        pending, self._handbacks = self._handbacks, []
        if not pending:
            return []
        queue_url = get_settings().qbo_sync_queue_url
        unsent: list[str] = []
        for start in range(0, len(pending), SQS_BATCH):
            chunk = pending[start : start + SQS_BATCH]
            entries = [
                {"Id": str(i), "MessageBody": copy.model_dump_json(), "DelaySeconds": seconds}
                for i, (_, copy, seconds) in enumerate(chunk)
            ]
            try:
                answer = _sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
                failed = {int(f["Id"]) for f in answer.get("Failed", [])}
            except Exception:
                logger.exception("could not hand back throttled messages; they wait in place")
                failed = set(range(len(chunk)))
            for i, (record, _, seconds) in enumerate(chunk):
                if i in failed:
                    unsent.append(record.message_id)
                    self._visibility.append((record.receipt_handle, seconds))
        logger.info("messages handed back to wait their turn", extra={"count": len(pending) - len(unsent)})
        return unsent

    def _note_parked(self) -> None:
        """Remember the receipt handles of parked messages: resume_parked makes them visible."""
        parked, self._parked = self._parked, []
        if not parked:
            return
        table = get_settings().table_name
        now = time.time()
        try:
            with _ParkedWriter(table) as put:
                for tenant_id, message_id, handle, seconds in parked:
                    put(tenant_id, message_id, handle, int(now + seconds + 3600))
        except Exception:  # resume is a shortcut: the message still comes back on its own
            logger.exception("parked messages not recorded")

    def _done(self, message: QboSyncMessage, record: SQSRecord) -> None:
        if message.kind == "sync_invoice":
            age = _message_age_ms(record, message)
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
            missing = tokens.missing_settings(connection.settings)
            if missing:
                # The setup guide: nothing syncs before both default accounts are chosen. Saving
                # them queues again every invoice refused here (inbound.resume_sync).
                raise Permanent(
                    SETTINGS_INCOMPLETE,
                    "QuickBooks settings are incomplete: nothing is synced until they are saved",
                    f"choose {', '.join(missing)} (PUT /quickbooks/settings)",
                    missing[0],
                )
            found = _Tenant(
                connection,
                self.client_factory(tenant_id),
                mapping.QboSettings.from_map(connection.settings.as_dict() if connection.settings else {}),
            )
            self.tenants[tenant_id] = found
        logger.append_keys(realm_id=found.connection.realm_id)
        return found

    def _dispatch(self, message: QboSyncMessage, maybe_sent: bool) -> None:
        if message.kind == "sync_invoice":
            self.sync_invoice(message, maybe_sent)
        elif message.kind == "void_invoice":
            self.void_invoice(message)
        elif message.kind == "sync_contact":
            self.sync_contact(message)
        elif message.kind == "sync_product":
            self.sync_product(message)

    # ------------------------------------------------------------------ invoices
    def _load_invoice(self, message: QboSyncMessage) -> Invoice | None:
        logger.append_keys(invoice_id=message.entity_id)
        key = Invoice.key(message.tenant_id, message.entity_id)
        invoice = self.invoices.pop(key, None) or _find(Invoice, key)
        if invoice is None:
            logger.warning("invoice to sync not found; message dropped")
            return None
        if invoice.destination != "quickbooks":
            logger.info("invoice is not for QuickBooks; nothing to sync")
            return None
        return invoice

    def sync_invoice(self, message: QboSyncMessage, maybe_sent: bool) -> None:
        invoice = self._load_invoice(message)
        if invoice is None or already_synced(invoice):
            return
        tenant = self.tenant(message.tenant_id)
        body = self.invoice_body(tenant, invoice)
        if invoice.qbo_id is None:
            found = None
            if maybe_sent or invoice.sync_status == "unknown":
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
        """The create may have reached QuickBooks: whoever handles the invoice next looks it up first."""
        with contextlib.suppress(UpdateError):
            _write(
                invoice,
                [Invoice.sync_status.set("unknown"), Invoice.updated_at.set(now_iso())],
                condition=Invoice.qbo_id.does_not_exist(),
            )
            invoice.sync_status = "unknown"

    def _synced_actions(self, invoice: Invoice, result: dict[str, Any]) -> tuple[list[Action], list[Action]]:
        """(what QuickBooks answered, always kept; what makes the invoice "synced", only if unchanged)."""
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
            Invoice.qbo_synced_version.set(int(invoice.version)),
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
        return common, synced

    def mark_synced(self, invoice: Invoice, result: dict[str, Any], tenant: _Tenant) -> None:
        common, synced = self._synced_actions(invoice, result)
        try:
            _write(invoice, common + synced, condition=Invoice.version == invoice.version)
        except UpdateError:
            # Changed while we synced: keep the QuickBooks id (the next message updates, never
            # creates again) but not "synced", which would hide the newer version.
            _write(invoice, common)
            logger.info("invoice changed during sync; its newer version syncs on its own message")
            return
        qmetrics.count("InvoicesSynced", tenant.connection.realm_id)
        self._log_synced(invoice, result)

    def mark_synced_many(self, settled: list[tuple[Invoice, dict[str, Any]]], tenant: _Tenant) -> None:
        """The invoices of one QuickBooks batch call in one transaction (one round trip instead of
        one per invoice). All or nothing: if any of them changed meanwhile (or another write held
        one), nothing was written and each is recorded on its own, with its own condition."""
        if len(settled) < 2:
            for invoice, result in settled:
                self.mark_synced(invoice, result, tenant)
            return
        try:
            with TransactWrite(connection=store_common.connection()) as tx:
                for invoice, result in settled:
                    common, synced = self._synced_actions(invoice, result)
                    tx.update(invoice, common + synced, condition=Invoice.version == invoice.version)
        except TransactWriteError:
            for invoice, result in settled:
                self.mark_synced(invoice, result, tenant)
            return
        qmetrics.count("InvoicesSynced", tenant.connection.realm_id, len(settled))
        for invoice, result in settled:
            self._log_synced(invoice, result)

    @staticmethod
    def _log_synced(invoice: Invoice, result: dict[str, Any]) -> None:
        total = result.get("TotalAmt")
        if total is not None and Decimal(str(total)) != invoice.total:
            logger.info(
                "QuickBooks total differs from ours (tax)",
                extra={"invoice_id": invoice.id, "qbo_total": str(total), "total": str(invoice.total)},
            )
        logger.info("invoice synced", extra={"invoice_id": invoice.id, "qbo_id": str(result["Id"])})

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
            _write(invoice, actions, condition=Invoice.version == invoice.version)
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
    def ensure_customer(
        self,
        tenant: _Tenant,
        tenant_id: str,
        contact_id: str,
        *,
        contact: Contact | None = None,
        known_absent: bool = False,
    ) -> str:
        """The QuickBooks customer of a contact: linked, found by name, or created (known_absent: a
        name query just found nothing, so go straight to the create)."""
        if contact_id in tenant.customers:
            return tenant.customers[contact_id]
        contact = contact or _find(Contact, Contact.key(tenant_id, contact_id))
        if contact is None:
            raise Permanent(
                "fieldbill.contact_missing",
                "the invoice's contact does not exist",
                f"contact {contact_id}",
                "CustomerRef",
            )
        if not contact.qbo_id:
            body = mapping.contact_to_qbo(contact.name, contact.email)
            found = None
            if not known_absent:
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
            self._link_contact(tenant, contact, found)
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
            # Settings are complete (tenant() checks): an item's own account overrides the default.
            income = product.income_account_ref or tenant.settings.default_income_account
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
                Product.gsi2pk.set(qbo_ref_key(tenant_id, "Item")),
                Product.gsi2sk.set(str(found["Id"])),
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
        else:
            # A customer or item push has no record of its own to carry the error: the
            # connection's status resource shows it.
            from fieldbill.store import qbo_pulls

            with contextlib.suppress(Exception):
                qbo_pulls.record_error(message.tenant_id, f"push:{message.kind}", error)

    # ------------------------------------------------------------------ batch creates
    def prepare(self, records: list[SQSRecord]) -> None:
        """Send the new invoices of each tenant as QuickBooks batch calls (≥ 2 of them)."""
        by_tenant: dict[str, list[tuple[SQSRecord, QboSyncMessage]]] = {}
        for record in records:
            try:
                message = QboSyncMessage.model_validate_json(record.body)
            except ValueError:
                continue
            if message.kind == "sync_invoice":
                by_tenant.setdefault(message.tenant_id, []).append((record, message))
        for tenant_id, group in by_tenant.items():
            if len(group) >= 2:
                try:
                    self._prepare_tenant(tenant_id, group)
                except Exception:  # an optimisation: what is left is handled record by record
                    logger.exception("batch preparation failed", extra={"tenant_id": tenant_id})

    def _prepare_tenant(self, tenant_id: str, group: list[tuple[SQSRecord, QboSyncMessage]]) -> None:
        try:
            tenant = self.tenant(tenant_id)
        except QboError:
            return  # each record meets the same error on its own path (parked, retried)
        client = tenant.client
        if client.use_limiter and tenant.connection.realm_id:
            # No batch slot for a while (the realm's minute is spent, or it cools down after a 429):
            # give the records back now rather than load and map them first.
            realm = str(tenant.connection.realm_id)
            wait = client.limiter.estimate(realm, batch=True)
            if wait > batch_wait_seconds():
                deferred = Throttled(client.limiter.to_qbo_seconds(wait), local=True, message="no batch slot")
                # The minute's batches are spent, its requests mostly not: while a spare request is
                # at hand (a short wait is slept in the call), the records are created one by one in
                # their own handling. Else they wait for the batch slot (waiting for spare requests
                # instead was measured: hundreds of hand-backs a second for a few singles).
                if client.limiter.estimate(realm, spare=True) < DEFAULT_MAX_WAIT_SECONDS:
                    self.spare.update((record.message_id, deferred) for record, _ in group)
                    # one read for all of them (the single path takes its invoice from here)
                    self.invoices.update(
                        _batch_get(Invoice, (Invoice.key(tenant_id, m.entity_id) for _, m in group))
                    )
                else:
                    self.outcomes.update((record.message_id, deferred) for record, _ in group)
                return
        loaded = _batch_get(Invoice, (Invoice.key(tenant_id, m.entity_id) for _, m in group))
        self.invoices.update(loaded)
        candidates: list[tuple[SQSRecord, Invoice]] = []
        maybe_sent = {record.message_id for record, message in group if maybe_sent_before(record, message)}
        seen: set[str] = set()
        for record, message in group:
            invoice = loaded.get(Invoice.key(tenant_id, message.entity_id))
            if (
                invoice is None
                or invoice.id in seen  # the same invoice twice in one batch: the second waits its turn
                or invoice.destination != "quickbooks"
                or invoice.qbo_id
                or already_synced(invoice)
            ):
                continue
            seen.add(invoice.id)
            candidates.append((record, invoice))
        if len(candidates) < 2:
            return
        # Every candidate gets an outcome here: a failure on the way is that record's failure (retried
        # with its class's delay), not a reason to redo the same work one record at a time.
        try:
            failed = self.ensure_customers(tenant, tenant_id, [inv.contact_id for _, inv in candidates])
        except QboError as exc:  # the name look-up itself failed: nothing to build on
            for record, invoice in candidates:
                self._set_outcome(record, invoice, exc)
            return
        ready: list[tuple[SQSRecord, Invoice, dict[str, Any]]] = []
        for record, invoice in candidates:
            try:
                if invoice.contact_id in failed:
                    raise failed[invoice.contact_id]
                ready.append((record, invoice, self.invoice_body(tenant, invoice)))
            except (QboError, mapping.MappingError) as exc:
                self._set_outcome(record, invoice, exc)
        # An earlier attempt may have reached QuickBooks (answer lost, or the function died): look
        # those up first, all at once, so a lost answer never becomes a second invoice.
        doubtful = [
            (rec, inv, body)
            for rec, inv, body in ready
            if inv.sync_status == "unknown" or rec.message_id in maybe_sent
        ]
        if doubtful:
            try:
                found = self.find_invoices(tenant, [(inv, body) for _, inv, body in doubtful])
            except QboError as exc:
                for rec, inv, _ in doubtful:
                    self._set_outcome(rec, inv, exc)
                ready = [r for r in ready if r[0].message_id not in self.outcomes]
                found = {}
            for rec, inv, _ in doubtful:
                row = found.get(inv.id)
                if row is not None:
                    logger.info(
                        "invoice found in QuickBooks after an unknown outcome: not created again",
                        extra={"invoice_id": inv.id, "qbo_id": row.get("Id")},
                    )
                    self._settle(rec, inv, row, tenant)
            ready = [r for r in ready if r[0].message_id not in self.outcomes]
        for start in range(0, len(ready), BATCH_MAX_OPERATIONS):
            chunk = ready[start : start + BATCH_MAX_OPERATIONS]
            if len(chunk) < 2:
                break  # a lone invoice takes the single-call path (no batch slot for one invoice)
            if self._out_of_time():
                break
            self._send_batch(tenant, chunk)

    def _send_batch(
        self, tenant: _Tenant, ready: list[tuple[SQSRecord, Invoice, dict[str, Any]]], *, retry: bool = True
    ) -> None:
        """One QuickBooks batch call. A transient failure or a QuickBooks 429 is retried once here
        (after a look-up if the batch may have been committed): a fault of one call then costs
        seconds, not a trip through the queue for 30 records."""
        ids = {rec.message_id: self.create_request_id(inv) for rec, inv, _ in ready}
        operations = [
            {"bId": batch_item_id(ids[rec.message_id]), "operation": "create", "Invoice": body}
            for rec, _, body in ready
        ]
        try:
            results = tenant.client.batch(
                operations, batch_request_id(list(ids.values())), max_wait=batch_wait_seconds()
            )
        except (Transient, Throttled) as exc:
            doubtful = isinstance(exc, Transient) and exc.maybe_committed
            if doubtful:
                for _, inv, _ in ready:
                    self._mark_unknown(inv)
            logger.warning("batch create failed", extra={"operations": len(operations), "error": str(exc)})
            local = isinstance(exc, Throttled) and exc.local
            if retry and not local and not self._out_of_time():
                if isinstance(exc, Transient):  # a 5xx or a drop is mostly momentary: a short pause
                    time.sleep(random.uniform(0.5, 1.0) * _scale())
                # (after a 429 the limiter waits out the realm's cool-down, or defers the records)
                self._retry_batch(tenant, ready, doubtful)
                return
            for rec, inv, _ in ready:
                self._set_outcome(rec, inv, exc)
            return
        except QboError as exc:  # auth, a whole-batch fault
            for rec, inv, _ in ready:
                self._set_outcome(rec, inv, exc)
            logger.info("batch create not sent", extra={"operations": len(operations), "error": str(exc)})
            return
        settled: list[tuple[SQSRecord, Invoice, dict[str, Any]]] = []
        for rec, inv, _ in ready:
            result = results.get(batch_item_id(ids[rec.message_id]))
            if isinstance(result, dict):
                settled.append((rec, inv, result))
            elif isinstance(result, BaseException):
                self._set_outcome(rec, inv, result)  # that operation's own fault; the others stand
            # no answer for the item: the single-call path looks it up (requestid, marker) and retries
        try:
            self.mark_synced_many([(inv, result) for _, inv, result in settled], tenant)
        except Exception as exc:
            # Created in QuickBooks but not recorded here: the records come back, and as a redelivery
            # they look their invoices up first (never created twice).
            logger.exception("batch created in QuickBooks but not recorded; records retried")
            for rec, inv, _ in settled:
                self._set_outcome(rec, inv, Transient(f"created, not recorded: {type(exc).__name__}"))
        else:
            for rec, inv, _ in settled:
                self._set_outcome(rec, inv, None)
        logger.info(
            "batch create sent",
            extra={"operations": len(operations), "tenant_id": tenant.connection.tenant_id},
        )

    def _retry_batch(
        self, tenant: _Tenant, ready: list[tuple[SQSRecord, Invoice, dict[str, Any]]], doubtful: bool
    ) -> None:
        if doubtful:  # the first call may have created them: look up, resend only the others
            try:
                found = self.find_invoices(tenant, [(inv, body) for _, inv, body in ready])
            except QboError as exc:
                for rec, inv, _ in ready:
                    self._set_outcome(rec, inv, exc)
                return
            for rec, inv, _ in ready:
                if inv.id in found:
                    self._settle(rec, inv, found[inv.id], tenant)
            ready = [r for r in ready if r[0].message_id not in self.outcomes]
        if len(ready) >= 2:
            self._send_batch(tenant, ready, retry=False)
        # a single one left takes the single-call path (it is `unknown` if in doubt: looked up first)

    def _settle(self, record: SQSRecord, invoice: Invoice, result: dict[str, Any], tenant: _Tenant) -> None:
        self.mark_synced(invoice, result, tenant)
        self._set_outcome(record, invoice, None)

    def _set_outcome(self, record: SQSRecord, invoice: Invoice, outcome: BaseException | None) -> None:
        self.outcomes[record.message_id] = outcome
        self.invoices.pop(invoice.pk, None)

    def ensure_customers(
        self, tenant: _Tenant, tenant_id: str, contact_ids: Iterable[str]
    ) -> dict[str, QboError | mapping.MappingError]:
        """Link many contacts at once: one read for the contacts, one name query per 30 missing ones
        (existing customers are linked, never created twice); the rest are created ≤ 30 per batch
        call when a batch slot is free at once, else one by one. (A batch slot could carry 30
        invoices, but 200 single creates spend 200 calls, each a chance of a 429 that stops the
        realm: measured, batch creates win with faults and tie without; docs/sync.md §4.)
        Returns the contacts whose customer could not be had, with why."""
        wanted = [c for c in dict.fromkeys(contact_ids) if c not in tenant.customers]
        contacts = _batch_get(Contact, (Contact.key(tenant_id, c) for c in wanted))
        missing: dict[str, Contact] = {}
        for contact in contacts.values():
            if contact.qbo_id:
                tenant.customers[contact.id] = str(contact.qbo_id)
            else:
                missing[mapping.contact_to_qbo(contact.name)["DisplayName"].casefold()] = contact
        names = list(missing)
        for start in range(0, len(names), QUERY_IN_MAX):
            chunk = [missing[n] for n in names[start : start + QUERY_IN_MAX]]
            values = ", ".join(quote(mapping.contact_to_qbo(c.name)["DisplayName"]) for c in chunk)
            for row in tenant.client.query("Customer", f"DisplayName IN ({values})", max_results=1000):
                contact = missing.pop(str(row.get("DisplayName", "")).casefold(), None)
                if contact is not None:
                    self._link_contact(tenant, contact, row)
        failed: dict[str, QboError | mapping.MappingError] = {}
        if len(missing) >= 2:
            self._create_customers(tenant, tenant_id, list(missing.values()), failed)
        for contact in missing.values():
            if contact.id in tenant.customers or contact.id in failed:
                continue
            try:
                self.ensure_customer(tenant, tenant_id, contact.id, contact=contact, known_absent=True)
            except (QboError, mapping.MappingError) as exc:
                failed[contact.id] = exc
                if isinstance(exc, Throttled | NeedsReconnect | AuthorizationFailed):
                    break  # the realm is cooling down or gone: the others would fail the same way
        for contact in missing.values():
            if contact.id not in tenant.customers and contact.id not in failed and failed:
                failed[contact.id] = next(iter(failed.values()))
        return failed

    def _create_customers(
        self,
        tenant: _Tenant,
        tenant_id: str,
        contacts: list[Contact],
        failed: dict[str, QboError | mapping.MappingError],
    ) -> None:
        """Customers a name query just did not find, created ≤ 30 per QuickBooks batch call: one
        request (of the realm's 500 a minute) for 30 customers instead of 30. Each create carries the
        requestid the single-call path would use, and a create that went through unseen is found by
        the next attempt's name query (or answers 6240): never a second customer. A 6240 here (the
        name exists with other spacing) resolves as on the single path. With no batch slot free at
        once, the single-call path creates them instead."""
        for start in range(0, len(contacts), BATCH_MAX_OPERATIONS):
            chunk = contacts[start : start + BATCH_MAX_OPERATIONS]
            bodies, ids = {}, {}
            for contact in chunk:
                try:
                    bodies[contact.id] = mapping.contact_to_qbo(contact.name, contact.email)
                except mapping.MappingError as exc:
                    failed[contact.id] = exc
                    continue
                ids[contact.id] = request_id("customer", tenant_id, contact.id)
            if len(ids) < 2:
                return  # one left: the single-call path
            operations = [
                {"bId": batch_item_id(rid), "operation": "create", "Customer": bodies[cid]}
                for cid, rid in ids.items()
            ]
            try:
                # Batch slots are what invoices need most: no free one now, and the single calls
                # (counted only against requests per minute) go instead.
                results = tenant.client.batch(operations, batch_request_id(list(ids.values())), max_wait=0.0)
            except QboError as exc:
                if isinstance(exc, Throttled) and exc.local:
                    return  # no batch slot at once: the single-call path creates them
                # The whole call failed: these contacts (and the rest) wait for the records' retry.
                for contact in contacts[start:]:
                    failed.setdefault(contact.id, exc)
                return
            for contact in chunk:
                if contact.id not in ids:
                    continue
                result = results.get(batch_item_id(ids[contact.id]))
                try:
                    if isinstance(result, DuplicateName):
                        name = bodies[contact.id]["DisplayName"]
                        result = self._resolve_duplicate(tenant, "Customer", "DisplayName", name, result)
                    if isinstance(result, dict):
                        self._link_contact(tenant, contact, result)
                    elif isinstance(result, QboError):
                        failed[contact.id] = result
                    # no answer for it: the single-call path tries it on its own
                except QboError as exc:
                    failed[contact.id] = exc

    def _link_contact(self, tenant: _Tenant, contact: Contact, row: dict[str, Any]) -> None:
        _write(
            contact,
            [
                Contact.qbo_id.set(str(row["Id"])),
                Contact.qbo_sync_token.set(str(row.get("SyncToken", "0"))),
                # Webhooks and pulls find the contact by its QuickBooks id through this index.
                Contact.gsi2pk.set(qbo_ref_key(contact.tenant_id, "Customer")),
                Contact.gsi2sk.set(str(row["Id"])),
                Contact.updated_at.set(now_iso()),
            ],
        )
        contact.qbo_id = str(row["Id"])
        tenant.customers[contact.id] = str(row["Id"])

    def find_invoices(
        self, tenant: _Tenant, invoices: list[tuple[Invoice, dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        """Invoice id -> our invoice in QuickBooks, for many at once: one query per 30 customers and
        date (or per 30 document numbers), matched by the PrivateNote marker."""
        found: dict[str, dict[str, Any]] = {}
        groups: dict[tuple[str, str], list[tuple[Invoice, dict[str, Any]]]] = {}
        for invoice, body in invoices:
            if body.get("DocNumber"):
                groups.setdefault(("DocNumber", ""), []).append((invoice, body))
            else:
                groups.setdefault(("CustomerRef", str(body.get("TxnDate") or "")), []).append((invoice, body))
        for (field_name, txn_date), members in groups.items():
            if field_name == "DocNumber":
                values = list(dict.fromkeys(str(b["DocNumber"]) for _, b in members))
            else:
                values = list(dict.fromkeys(str(b["CustomerRef"]["value"]) for _, b in members))
            for start in range(0, len(values), QUERY_IN_MAX):
                where = (
                    f"{field_name} IN ({', '.join(quote(v) for v in values[start : start + QUERY_IN_MAX])})"
                )
                if txn_date:
                    where += f" AND TxnDate = {quote(txn_date)}"
                for row in tenant.client.query_all("Invoice", where):
                    for invoice, _ in members:
                        if invoice.id not in found and mapping.has_marker(row, invoice.tenant_id, invoice.id):
                            found[invoice.id] = row
        return found


class _ParkedWriter:
    """Batch puts of parked-message receipt handles (pk T#<tenant>#QBOPARKED, sk message id)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.items: list[dict[str, Any]] = []

    def __enter__(self) -> Any:
        def put(tenant_id: str, message_id: str, handle: str, ttl: int) -> None:
            self.items.append(
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": parked_key(tenant_id)},
                            "sk": {"S": message_id},
                            "receipt_handle": {"S": handle},
                            "ttl": {"N": str(ttl)},
                        }
                    }
                }
            )

        return put

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            return
        ddb = _ddb()
        for start in range(0, len(self.items), 25):
            request = {self.table: self.items[start : start + 25]}
            for _ in range(5):
                answer = ddb.batch_write_item(RequestItems=request)
                request = answer.get("UnprocessedItems") or {}
                if not request:
                    break


@lru_cache(maxsize=1)
def _ddb() -> Any:
    return boto3.client("dynamodb")


def resume_parked(tenant_id: str) -> int:
    """After a reconnect: make the tenant's parked messages visible now (instead of after their
    parking time). Returns how many were resumed. Stale handles (a message received again since)
    are skipped: that message is being handled already."""
    settings = get_settings()
    ddb, sqs = _ddb(), _sqs()
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": settings.table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": parked_key(tenant_id)}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    resumed = 0
    for start in range(0, len(items), SQS_BATCH):
        chunk = items[start : start + SQS_BATCH]
        entries = [
            {"Id": str(i), "ReceiptHandle": it["receipt_handle"]["S"], "VisibilityTimeout": 0}
            for i, it in enumerate(chunk)
        ]
        try:
            answer = sqs.change_message_visibility_batch(
                QueueUrl=settings.qbo_sync_queue_url, Entries=entries
            )
            resumed += len(answer.get("Successful", []))
        except Exception:
            logger.exception("could not resume parked messages")
        for it in chunk:
            ddb.delete_item(TableName=settings.table_name, Key={"pk": it["pk"], "sk": it["sk"]})
    logger.info("parked QuickBooks messages resumed", extra={"tenant_id": tenant_id, "resumed": resumed})
    return resumed


def handle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The QBO sync queue consumer (SQS, ReportBatchItemFailures)."""
    return SyncBatch(context).run(event)


def message_body(message: QboSyncMessage) -> str:
    return json.dumps(message.model_dump(exclude_none=True))
