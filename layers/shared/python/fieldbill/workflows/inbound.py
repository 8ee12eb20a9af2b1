"""QuickBooks -> here: scheduled and manual pulls, webhook events, and resuming after a reconnect.

- ScheduledPullFunction (EventBridge: customers every 2 h on the hour, items hourly at :30,
  service types on the 1st) calls `schedule_pulls`: one pull message per connected company.
- POST /quickbooks/sync/{data_type} calls `request_pull` for the caller's company.
- WebhookFunction queues one message per event (workflows/webhooks.py).
- InboundFunction calls `handle_record` for each message: a pull runs quickbooks.inbound.pull; an
  event is claimed once (conditional put, TTL) and applied by re-reading the entity.
- The OAuth callback calls `after_connect`: company name, a first pull, and on a reconnect to the
  same company every invoice that waited for the connection is queued again (`resume_sync`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.observability import logger
from fieldbill.quickbooks import inbound, tokens
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.errors import AuthorizationFailed, NeedsReconnect, Permanent, QboError
from fieldbill.store.models import Entity, Invoice
from fieldbill.workflows import sync_queue
from fieldbill.workflows.messages import PULL_DATA_TYPES, InboundMessage
from fieldbill.workflows.schedules import send_pulls

CONNECTED_INDEX_KEY = tokens.CONNECTED_INDEX_KEY
DATA_TYPES = PULL_DATA_TYPES
ACTOR = "quickbooks_inbound"
# Sync errors a reconnect (or completed settings) can fix: QuickBooks auth codes (3200, 120, the
# 1-499 range) and ours.
AUTH_ERROR_CODES = {"3200", "120", "100"}  # AuthenticationFailed, AuthorizationFailure, permission
RESUMABLE_ERROR_PREFIXES = ("fieldbill.settings", "fieldbill.not_connected")


def request_pull(tenant_id: str, data_type: str) -> dict[str, Any]:
    """A manual sync of one data type (the HTTP API answers 202)."""
    if data_type not in DATA_TYPES:
        raise ValidationError("data_type", f"must be one of {', '.join(DATA_TYPES)}")
    connection = tokens.get_connection(tenant_id)
    if connection is None or connection.status != "connected":
        status = connection.status if connection else "disconnected"
        raise Conflict(f"QuickBooks is {status}: connect it first")
    send_pulls(
        [InboundMessage(kind="pull", tenant_id=tenant_id, realm_id=connection.realm_id, data_type=data_type)]
    )
    return {"data_type": data_type, "status": "queued", "realm_id": connection.realm_id}


# ------------------------------------------------------------------------------ the consumer
def handle_record(record: SQSRecord) -> None:
    message = InboundMessage.model_validate_json(record.body)
    if message.kind == "pull":
        handle_pull(message)
    else:
        handle_event(message)


def handle_pull(message: InboundMessage) -> None:
    tenant_id, data_type = str(message.tenant_id), str(message.data_type)
    try:
        inbound.pull(tenant_id, data_type)
    except (NeedsReconnect, AuthorizationFailed) as exc:
        # Nothing to retry until someone reconnects; the next pull after that catches up.
        if isinstance(exc, AuthorizationFailed):
            tokens.mark_needs_reconnect(tenant_id, "QuickBooks refused authorization (120)")
        inbound.record_error(tenant_id, f"pull:{data_type}", exc)
        logger.warning("QuickBooks pull skipped: connection needs reconnect", extra={"tenant_id": tenant_id})
    except Permanent as exc:
        inbound.record_error(tenant_id, f"pull:{data_type}", exc)
        logger.warning("QuickBooks pull refused", extra={"tenant_id": tenant_id, "code": exc.code})
    except Exception as exc:  # throttled, transient, anything else: the message comes back
        with contextlib.suppress(Exception):
            inbound.record_error(tenant_id, f"pull:{data_type}", exc)
        raise


def event_id_of(message: InboundMessage) -> str:
    return (
        message.event_id or f"{message.realm_id}:{message.entity}:{message.entity_id}:{message.last_updated}"
    )


def handle_event(message: InboundMessage) -> None:
    realm_id = str(message.realm_id or "")
    tenant_id = tokens.tenant_for_realm(realm_id) if realm_id else None
    if tenant_id is None:
        logger.info(
            "QuickBooks event for a company connected to nobody: ignored", extra={"realm_id": realm_id}
        )
        return
    event_id = event_id_of(message)
    if not inbound.claim_event(event_id, realm_id, tenant_id):
        qmetrics.count("WebhookDuplicates", realm_id)
        logger.info(
            "QuickBooks event already applied: ignored",
            extra={"realm_id": realm_id, "entity": message.entity},
        )
        return
    try:
        result = inbound.apply_event(
            tenant_id, str(message.entity), str(message.entity_id), message.operation
        )
    except (NeedsReconnect, AuthorizationFailed) as exc:
        inbound.release_event(event_id)
        if isinstance(exc, AuthorizationFailed):
            tokens.mark_needs_reconnect(tenant_id, "QuickBooks refused authorization (120)")
        inbound.record_error(tenant_id, f"event:{message.entity}", exc)
        return  # a reconnect pulls again; the event cannot be applied before
    except Permanent as exc:
        inbound.record_error(tenant_id, f"event:{message.entity}", exc)
        return
    except Exception as exc:
        inbound.release_event(event_id)
        with contextlib.suppress(Exception):
            inbound.record_error(tenant_id, f"event:{message.entity}", exc)
        raise
    logger.info(
        "QuickBooks event applied",
        extra={
            "tenant_id": tenant_id,
            "entity": message.entity,
            "operation": message.operation,
            "counts": result.as_map(),
        },
    )


# ------------------------------------------------------------------------------ connect and resume
def after_connect(connected: tokens.Connected) -> dict[str, Any]:
    """After the OAuth callback: company name, first pulls, and resume waiting work."""
    from fieldbill.quickbooks.client import QboClient

    try:
        info = QboClient(connected.tenant_id).read("CompanyInfo", connected.realm_id)
        tokens.record_company_name(connected.tenant_id, info.get("CompanyName"))
    except QboError as exc:  # the name is a nicety: the connection stands without it
        logger.warning("could not read CompanyInfo", extra={"error": type(exc).__name__})
    requeued = resume_sync(connected.tenant_id, "reconnected") if connected.resumed else 0
    if connected.resumed:
        # Messages parked while the company needed reconnecting (voids, contacts, products too)
        # become visible now instead of after their parking time.
        from fieldbill.workflows import qbo_sync

        qbo_sync.resume_parked(connected.tenant_id)
    send_pulls(
        [
            InboundMessage(
                kind="pull", tenant_id=connected.tenant_id, realm_id=connected.realm_id, data_type=d
            )
            for d in DATA_TYPES
        ]
    )
    return {"requeued_invoices": requeued}


def resumable(invoice: Invoice) -> bool:
    if invoice.destination != "quickbooks":
        return False
    if invoice.sync_status in ("pending", "unknown"):
        return True
    if invoice.sync_status != "error":
        return False
    code = str((invoice.sync_error.as_dict() if invoice.sync_error else {}).get("code", ""))
    if code in AUTH_ERROR_CODES or (code.isdigit() and 0 < int(code) < 500):
        return True
    return code.startswith(RESUMABLE_ERROR_PREFIXES)


def resume_sync(tenant_id: str, why: str) -> int:
    """Queue again every invoice of the tenant that waited for the connection (or the settings):
    pending and unknown ones (their messages may sit in the queue for an hour or have reached the
    DLQ) and those whose error a reconnect fixes. A message for an invoice already synced is
    dropped by the consumer, so queuing twice is harmless."""
    query = Entity.gsi1.query(
        Invoice.list_key(tenant_id), filter_condition=Invoice.sync_status.is_in("pending", "unknown", "error")
    )
    waiting = [r for r in query if isinstance(r, Invoice) and resumable(r)]
    if waiting:
        sync_queue.enqueue_invoices(waiting, f"{ACTOR}:{why}")
    logger.info(
        "QuickBooks sync resumed", extra={"tenant_id": tenant_id, "invoices": len(waiting), "why": why}
    )
    return len(waiting)
