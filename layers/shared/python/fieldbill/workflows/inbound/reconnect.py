"""After the OAuth callback: company name, first pulls, and on a reconnect to the same company
every invoice that waited for the connection is queued again (`resume_sync`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldbill.observability import logger
from fieldbill.quickbooks import cdc, tokens
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.errors import QboError
from fieldbill.store import qbo_links
from fieldbill.workflows.inbound.schedules import send_pulls
from fieldbill.workflows.messages import InboundMessage, QboSyncMessage
from fieldbill.workflows.qbo_sync import enqueue, requeue

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice

ACTOR = "quickbooks_inbound"
# Sync errors a reconnect (or completed settings) can fix: QuickBooks auth codes (3200, 120, the
# 1-499 range) and ours.
AUTH_ERROR_CODES = {"3200", "120", "100"}  # AuthenticationFailed, AuthorizationFailure, permission
RESUMABLE_ERROR_PREFIXES = ("fieldbill.settings", "fieldbill.not_connected")


def after_connect(connected: tokens.Connected) -> dict[str, Any]:
    """After the OAuth callback: company name, first pulls, and resume waiting work."""
    try:
        info = QboClient(connected.tenant_id).read("CompanyInfo", connected.realm_id)
        tokens.record_company_name(connected.tenant_id, info.get("CompanyName"))
    except QboError as exc:  # the name is a nicety: the connection stands without it
        logger.warning("could not read CompanyInfo", extra={"error": type(exc).__name__})
    requeued = resume_sync(connected.tenant_id, "reconnected") if connected.resumed else 0
    pushed = push_dirty(connected.tenant_id) if connected.resumed else 0
    if connected.resumed:
        # Messages parked while the company needed reconnecting (voids, contacts, products too)
        # become visible now instead of after their parking time.
        requeue.resume_parked(connected.tenant_id)
    send_pulls(
        [
            InboundMessage(
                kind="pull", tenant_id=connected.tenant_id, realm_id=connected.realm_id, data_type=d
            )
            for d in cdc.DATA_TYPES
        ]
    )
    return {"requeued_invoices": requeued, "pushed_records": pushed}


def push_dirty(tenant_id: str) -> int:
    """Every contact and product changed here while QuickBooks could not take it goes now
    (issue 15: nothing drifts; their messages may have been skipped while disconnected)."""
    dirty = qbo_links.dirty_records(tenant_id)
    enqueue.send(
        [
            QboSyncMessage(
                kind="sync_contact" if entity == "Customer" else "sync_product",
                tenant_id=tenant_id,
                entity_id=record_id,
            )  # type: ignore[arg-type]
            for entity, record_id in dirty
        ]
    )
    logger.info("dirty records pushed after reconnect", extra={"tenant_id": tenant_id, "records": len(dirty)})
    return len(dirty)


def resumable(invoice: Invoice) -> bool:
    if invoice.destination != "quickbooks":
        return False
    if invoice.sync_status in ("pending", "unknown") or getattr(invoice, "dirty", None):
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
    waiting = [r for r in qbo_links.invoices_waiting_for_sync(tenant_id) if resumable(r)]
    if waiting:
        enqueue.enqueue_invoices(waiting, f"{ACTOR}:{why}")
    logger.info(
        "QuickBooks sync resumed", extra={"tenant_id": tenant_id, "invoices": len(waiting), "why": why}
    )
    return len(waiting)
