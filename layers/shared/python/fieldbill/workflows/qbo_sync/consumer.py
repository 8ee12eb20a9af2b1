"""The QuickBooks sync queue consumer: every outbound QuickBooks call goes through here.

One Lambda batch of SQS records is handled by one SyncBatch (docs/sync.md):
1. batch.prepare sends the new invoices of each tenant as QuickBooks batch calls; the results
   become per-record outcomes.
2. Powertools' BatchProcessor then runs `handle` for each record: the prepared outcome, or the
   single-call path (invoices, references).
3. requeue sends what goes back to the queue before the invocation returns.

What happens to a message, by what QuickBooks answered:
- success, or a Permanent fault (recorded on the record: sync_status "error" + sync_error): consumed.
- Throttled (our limiter has no budget, or QuickBooks answered 429; nothing of the call was done):
  the wait is Retry-After, else the realm's cool-down, else the limiter's own estimate, + jitter;
  the message is handed back (a delayed copy; requeue.py).
- Transient: visibility set to a back-off growing by half per receive (backoff.py) and the record
  reported as a batch item failure. A redelivered create first looks the invoice up (PrivateNote
  marker / DocNumber), so a lost answer never makes a second invoice; the requestid covers the rest.
- NeedsReconnect / AuthorizationFailed: connection marked needs_reconnect; the message is parked.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.observability import logger
from fieldbill.quickbooks import mapping, tokens
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.errors import (
    AuthExpired,
    AuthorizationFailed,
    NeedsReconnect,
    Permanent,
    Throttled,
    Transient,
)
from fieldbill.settings import get_settings
from fieldbill.store import invoice_sync
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import backoff, batch, credit_memos, invoices, payments, references, sends
from fieldbill.workflows.qbo_sync.requeue import (
    Requeue,
    RetryLater,
    claim_owner,
    maybe_sent_before,
    receive_count,
)
from fieldbill.workflows.qbo_sync.tenants import Tenants

# Below this much Lambda time left, remaining records go back to the queue untouched.
MIN_REMAINING_MS = 8_000
LOG_KEYS = ("tenant_id", "realm_id", "run_id", "invoice_id", "entity_id", "message_id", "kind")


def handle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The QBO sync queue consumer (SQS, ReportBatchItemFailures)."""
    return SyncBatch(context).run(event)


def _visibility(qbo_seconds: float, jitter: float = backoff.DEFAULT_JITTER) -> int:
    return backoff.visibility_seconds(qbo_seconds, get_settings().qbo_seconds_per_minute, jitter)


def _mapping_permanent(exc: mapping.MappingError) -> Permanent:
    return Permanent("fieldbill.mapping", "cannot map the record to QuickBooks", str(exc), exc.element)


def _message_age_ms(record: SQSRecord, message: QboSyncMessage) -> float | None:
    sent = message.queued_at_ms or record.attributes.sent_timestamp
    return max(0.0, time.time() * 1000 - int(sent)) if sent else None


class SyncBatch:
    """One invocation's records: prepared together, handled one by one, returned together."""

    def __init__(self, context: Any = None, *, client_factory: Any = None) -> None:
        self.context = context
        self.tenants = Tenants(client_factory)
        self.prepared = batch.Prepared()
        self.requeue = Requeue()

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            self.prepared = batch.prepare(
                [SQSRecord(r) for r in event.get("Records", [])], self.tenants, self.out_of_time
            )
        except Exception:  # batching is an optimisation: every record still gets its own handling
            logger.exception("batch preparation failed; records are handled one by one")
        try:
            # A processor holds one batch's results: one per invocation, so invocations that share
            # a process (the local runtime runs a mapping's consumers as threads) never mix them.
            processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
                event=event, record_handler=self.handle, processor=processor, context=self.context
            )
            unsent = self.requeue.flush_handbacks()
            if unsent:
                response.setdefault("batchItemFailures", []).extend({"itemIdentifier": m} for m in unsent)
            return response
        finally:
            self.requeue.flush_visibility()
            self.requeue.note_parked()

    def out_of_time(self) -> bool:
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return callable(remaining) and int(remaining()) < MIN_REMAINING_MS

    def handle(self, record: SQSRecord) -> None:
        message = QboSyncMessage.model_validate_json(record.body)
        logger.append_keys(
            tenant_id=message.tenant_id,
            run_id=message.run_id,
            entity_id=message.entity_id,
            message_id=record.message_id,
            kind=message.kind,
        )
        receives = receive_count(record)
        batch_wait = self.prepared.spare.get(record.message_id)
        realm = self.tenants.realm
        try:
            if self.out_of_time():
                self.requeue.retry_later(record, 1, "Lambda time nearly spent")
            if record.message_id in self.prepared.outcomes:
                outcome = self.prepared.outcomes[record.message_id]
                if outcome is not None:
                    raise outcome
                self._done(message, record)
                return
            budget = contextlib.nullcontext()
            if batch_wait is not None:
                budget = self.tenants.get(message.tenant_id).client.spare_budget()  # type: ignore[assignment]
            with budget:
                self._dispatch(message, maybe_sent_before(record, message), claim_owner(record))
            self._done(message, record)
        except RetryLater:
            raise
        except Throttled as exc:
            if batch_wait is not None and batch_wait.retry_after_seconds < exc.retry_after_seconds:
                exc = batch_wait  # no spare request now: wait for the batch slot, which comes sooner
            if exc.local:
                qmetrics.count("LimiterDeferrals", realm(message.tenant_id))
            seconds = _visibility(exc.retry_after_seconds, jitter=backoff.throttle_jitter(exc.local))
            if backoff.hands_back(seconds, message.handbacks):
                self.requeue.hand_back(record, message, seconds)  # nothing reached QuickBooks
                return
            self.requeue.retry_later(record, seconds, "throttled")
        except (NeedsReconnect, AuthorizationFailed) as exc:
            if isinstance(exc, AuthorizationFailed):
                tokens.mark_needs_reconnect(message.tenant_id, f"QuickBooks refused authorization: {exc}")
            seconds = _visibility(
                backoff.reconnect_wait_qbo_seconds(receives), jitter=backoff.RECONNECT_JITTER
            )
            self.requeue.park(message.tenant_id, record, seconds)
        except (Transient, AuthExpired) as exc:
            qmetrics.count("Retries", realm(message.tenant_id))
            seconds = _visibility(backoff.transient_backoff_qbo_seconds(receives))
            self.requeue.retry_later(record, seconds, f"transient: {exc}")
        except Permanent as exc:
            self._record_permanent(message, exc)
        except mapping.MappingError as exc:
            self._record_permanent(message, _mapping_permanent(exc))
        except Exception as exc:
            logger.exception("unexpected error syncing to QuickBooks")
            qmetrics.count("Retries", realm(message.tenant_id))
            seconds = _visibility(backoff.transient_backoff_qbo_seconds(receives))
            self.requeue.retry_later(record, seconds, f"unexpected: {type(exc).__name__}")
        finally:
            logger.remove_keys(list(LOG_KEYS))

    def _dispatch(self, message: QboSyncMessage, maybe_sent: bool, owner: str) -> None:
        tenant_id, entity_id = message.tenant_id, message.entity_id
        if message.kind == "sync_invoice":
            logger.append_keys(invoice_id=entity_id)
            invoice = self.prepared.take_invoice(tenant_id, entity_id) or invoice_sync.load(
                tenant_id, entity_id
            )
            if invoices.for_quickbooks(invoice) and invoice is not None:
                if not invoices.already_synced(invoice):
                    invoices.sync_invoice(self.tenants.get(tenant_id), invoice, maybe_sent, owner)
                else:
                    invoices.after_sync(invoice)  # a redelivery after the sync was recorded
        elif message.kind == "void_invoice":
            logger.append_keys(invoice_id=entity_id)
            invoice = invoice_sync.load(tenant_id, entity_id)
            if invoice is None or not invoice.qbo_id:
                logger.info("invoice never reached QuickBooks: nothing to void")
                return
            if invoice.status != "void":
                logger.warning("invoice is not void here: QuickBooks' copy is left as it is")
                return
            invoices.void_invoice(self.tenants.get(tenant_id), invoice)
        elif message.kind == "sync_payment":
            invoice = invoice_sync.load(tenant_id, entity_id)
            payments.push_payment(self.tenants.get(tenant_id), invoice, str(message.ref))
        elif message.kind == "delete_payment":
            payments.delete_payment(self.tenants.get(tenant_id), tenant_id, str(message.ref))
        elif message.kind == "sync_credit_memo":
            invoice = invoice_sync.load(tenant_id, entity_id)
            credit_memos.push_credit_memo(self.tenants.get(tenant_id), invoice, str(message.ref), maybe_sent)
        elif message.kind == "remove_credit_memo":  # wt-life
            invoice = invoice_sync.load(tenant_id, entity_id)
            credit_memos.push_removal(self.tenants.get(tenant_id), invoice, str(message.ref))
        elif message.kind == "send_invoice":
            invoice = invoice_sync.load(tenant_id, entity_id)
            sends.push_send(self.tenants.get(tenant_id), invoice, str(message.ref), message.version)
        elif message.kind == "sync_contact":
            references.sync_contact(self.tenants.get(tenant_id), entity_id)
        elif message.kind == "sync_product":
            references.sync_product(self.tenants.get(tenant_id), entity_id)

    def _done(self, message: QboSyncMessage, record: SQSRecord) -> None:
        if message.kind == "sync_invoice":
            age = _message_age_ms(record, message)
            if age is not None:
                qmetrics.latency_ms("SyncLatency", self.tenants.realm(message.tenant_id), age)

    def _record_permanent(self, message: QboSyncMessage, error: Permanent) -> None:
        qmetrics.count("PermanentErrors", self.tenants.realm(message.tenant_id))
        logger.warning(
            "QuickBooks refused the record; recorded, not retried", extra={"error": error.as_dict()}
        )
        if message.kind in ("sync_invoice", "void_invoice"):
            invoices.record_permanent(message.tenant_id, message.entity_id, error)
        elif message.kind == "sync_payment":
            payments.record_permanent(message.tenant_id, message.entity_id, str(message.ref), error)
        elif message.kind == "sync_credit_memo":
            credit_memos.record_permanent(message.tenant_id, message.entity_id, str(message.ref), error)
        elif message.kind == "remove_credit_memo":  # wt-life
            credit_memos.record_removal_permanent(
                message.tenant_id, message.entity_id, str(message.ref), error
            )
        elif message.kind == "send_invoice":
            sends.record_permanent(
                message.tenant_id, message.entity_id, str(message.ref), message.version, error
            )
        else:
            # A customer or item push has no record of its own to carry the error: the
            # connection's status resource shows it.
            from fieldbill.store import qbo_pulls  # only on this rare path: keeps the cold start small

            with contextlib.suppress(Exception):
                qbo_pulls.record_error(message.tenant_id, f"push:{message.kind}", error)
