"""The inbound consumer: splits webhook deliveries into events, applies events and pulls.

| message        | what happens                                                                   |
|----------------|--------------------------------------------------------------------------------|
| delivery       | the raw webhook body, split into one `entity_changed` message per handled event |
| entity_changed | claimed with a lease, the entity re-read from QuickBooks and applied, then      |
|                | marked applied (store/inbound_events.py): a crash mid-apply is applied again     |
| pull           | one data type of one company read by CDC or query and applied (pulls.py)        |

Waiting for the per-company limiter (or a QuickBooks 429) is not a failure: the record is
acknowledged and a fresh copy (handbacks + 1) is sent with the wait as its delay, so waiting never
counts as a receive and never brings work nearer the dead-letter queue (as the outbound consumer).
Only after MAX_HANDBACKS waits does the record fail and count as a receive: something is stuck.
"""

from __future__ import annotations

import contextlib
import math
import random
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.observability import logger
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks import tokens
from fieldbill.quickbooks.errors import AuthorizationFailed, NeedsReconnect, Permanent, Throttled
from fieldbill.settings import get_settings
from fieldbill.store import inbound_events, qbo_pulls
from fieldbill.workflows import queues
from fieldbill.workflows.inbound import pulls, webhooks
from fieldbill.workflows.messages import InboundMessage

MAX_DELAY_SECONDS = 900  # SQS maximum DelaySeconds: a longer wait is waited in several copies
MAX_HANDBACKS = 100  # then waits count as receives (towards the DLQ): something is stuck


class EventBusy(RuntimeError):
    """Another worker holds a live claim on the event: this delivery comes back later."""


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


def delay_seconds(qbo_seconds: float) -> int:
    """A limiter wait (QuickBooks seconds) as the real delay of the copy that waits it."""
    real = qbo_seconds * float(get_settings().qbo_seconds_per_minute) / 60.0 * random.uniform(1.0, 1.1)
    return max(1, min(MAX_DELAY_SECONDS, math.ceil(real)))


def event_id_of(message: InboundMessage) -> str:
    return (
        message.event_id or f"{message.realm_id}:{message.entity}:{message.entity_id}:{message.last_updated}"
    )


class InboundBatch:
    """One invocation's records: handled one by one, waiting copies sent before returning."""

    def __init__(self, context: Any = None) -> None:
        self.context = context
        self._handbacks: list[tuple[SQSRecord, InboundMessage, int]] = []  # (record, copy, delay)

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        # One processor per invocation: invocations sharing a process never mix their results.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
            event=event, record_handler=self.handle, processor=processor, context=self.context
        )
        unsent = self._flush_handbacks()
        if unsent:
            response.setdefault("batchItemFailures", []).extend({"itemIdentifier": m} for m in unsent)
        return response

    def handle(self, record: SQSRecord) -> None:
        message = InboundMessage.model_validate_json(record.body)
        try:
            if message.kind == "delivery":
                split_delivery(message)
            elif message.kind == "pull":
                handle_pull(message)
            elif message.kind == "reconcile":
                handle_reconcile(message)
            else:
                handle_event(message)
        except Throttled as exc:
            if message.handbacks >= MAX_HANDBACKS:
                raise
            if exc.local:
                qmetrics.count("LimiterDeferrals", message.realm_id)
            # Nothing was lost: the same work waits its turn in a fresh copy.
            copy = message.model_copy(update={"handbacks": message.handbacks + 1})
            self._handbacks.append((record, copy, delay_seconds(exc.retry_after_seconds)))

    def _flush_handbacks(self) -> list[str]:
        """Send the waiting copies (their originals are then deleted as done). Returns the message
        ids whose copy SQS did not take: those stay failed and come back, so nothing is dropped."""
        pending, self._handbacks = self._handbacks, []
        failed = queues.send_delayed(
            get_settings().inbound_queue_url, [(copy, seconds) for _, copy, seconds in pending], _sqs()
        )
        unsent = [record.message_id for i, (record, _, _) in enumerate(pending) if i in failed]
        if pending:
            logger.info("inbound messages handed back to wait their turn", extra={"count": len(pending)})
        return unsent


def consume(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The InboundFunction's handler body."""
    return InboundBatch(context).run(event)


# ------------------------------------------------------------------------------ deliveries
def split_delivery(message: InboundMessage) -> None:
    """One message per handled event. Sent again if this fails part-way: the marks dedupe."""
    events = webhooks.delivery_events(message)
    queues.send(get_settings().inbound_queue_url, events, client=_sqs())
    logger.info("webhook delivery split into events", extra={"events": len(events)})


# ------------------------------------------------------------------------------ pulls
def handle_pull(message: InboundMessage) -> None:
    tenant_id, data_type = str(message.tenant_id), str(message.data_type)
    try:
        pulls.pull(tenant_id, data_type)
    except Throttled:
        raise  # waits in a fresh copy (InboundBatch.handle)
    except (NeedsReconnect, AuthorizationFailed) as exc:
        # Nothing to retry until someone reconnects; the next pull after that catches up.
        if isinstance(exc, AuthorizationFailed):
            tokens.mark_needs_reconnect(tenant_id, f"QuickBooks refused authorization: {exc}")
        qbo_pulls.record_error(tenant_id, f"pull:{data_type}", exc)
        logger.warning("QuickBooks pull skipped: connection needs reconnect", extra={"tenant_id": tenant_id})
    except Permanent as exc:
        qbo_pulls.record_error(tenant_id, f"pull:{data_type}", exc)
        logger.warning("QuickBooks pull refused", extra={"tenant_id": tenant_id, "code": exc.code})
    except Exception as exc:  # transient, anything else: the message comes back
        with contextlib.suppress(Exception):
            qbo_pulls.record_error(tenant_id, f"pull:{data_type}", exc)
        raise


# ------------------------------------------------------------------------------ reconciliation
def handle_reconcile(message: InboundMessage) -> None:
    """A reconciliation report (issue 15): throttled reads wait in a fresh copy like any pull; a
    company that needs reconnecting or refuses ends the operation failed, saying why."""
    from datetime import date

    from fieldbill.store import reconciliation
    from fieldbill.workflows.inbound import reconcile

    tenant_id, operation_id = str(message.tenant_id), str(message.operation_id)
    try:
        reconcile.run(
            tenant_id,
            operation_id,
            date.fromisoformat(str(message.date_from)),
            date.fromisoformat(str(message.date_to)),
            "quickbooks_reconcile",
        )
    except Throttled:
        raise
    except (NeedsReconnect, AuthorizationFailed, Permanent) as exc:
        error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        reconciliation.fail(tenant_id, operation_id, error, "quickbooks_reconcile")


# ------------------------------------------------------------------------------ events
def apply_message(tenant_id: str, message: InboundMessage) -> Any:
    return pulls.apply_event(tenant_id, str(message.entity), str(message.entity_id), message.operation)


def handle_event(message: InboundMessage) -> None:
    realm_id = str(message.realm_id or "")
    tenant_id = tokens.tenant_for_realm(realm_id) if realm_id else None
    if tenant_id is None:
        logger.info(
            "QuickBooks event for a company connected to nobody: ignored", extra={"realm_id": realm_id}
        )
        return
    event_id = event_id_of(message)
    claimed = inbound_events.claim(event_id, realm_id, tenant_id)
    if claimed == "applied":
        qmetrics.count("WebhookDuplicates", realm_id)
        logger.info(
            "QuickBooks event already applied: ignored",
            extra={"realm_id": realm_id, "entity": message.entity},
        )
        return
    if claimed == "busy":
        raise EventBusy(f"event {event_id} is being applied by another worker")
    source = f"event:{message.entity}"
    try:
        result = apply_message(tenant_id, message)
    except Throttled:
        inbound_events.release(event_id)
        raise  # waits in a fresh copy (InboundBatch.handle)
    except (NeedsReconnect, AuthorizationFailed) as exc:
        inbound_events.release(event_id)
        if isinstance(exc, AuthorizationFailed):
            tokens.mark_needs_reconnect(tenant_id, f"QuickBooks refused authorization: {exc}")
        qbo_pulls.record_error(tenant_id, source, exc)
        return  # a reconnect pulls again (and the backfill reads invoices); nothing to apply before
    except Permanent as exc:
        qbo_pulls.record_error(tenant_id, source, exc)
        inbound_events.mark_applied(event_id)  # QuickBooks refuses it for good: done, not retried
        return
    except Exception as exc:
        inbound_events.release(event_id)
        with contextlib.suppress(Exception):
            qbo_pulls.record_error(tenant_id, source, exc)
        raise
    inbound_events.mark_applied(event_id)
    logger.info(
        "QuickBooks event applied",
        extra={
            "tenant_id": tenant_id,
            "entity": message.entity,
            "operation": message.operation,
            "counts": result.as_map(),
        },
    )
