"""Pulls: read what changed in QuickBooks since the data type's watermark and apply it here.

A scheduled pull (workflows/inbound/schedules.py), a manual sync (POST /quickbooks/sync/…), the
first pulls after a connect and the hourly invoice backfill all run `pull`. The watermark is
recorded only after everything read was applied, so a pull that fails part-way reads the same
changes again next time (applying twice is a no-op).
"""

from __future__ import annotations

import time
from typing import Any

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.observability import logger
from fieldbill.quickbooks import cdc, tokens
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.errors import NeedsReconnect
from fieldbill.settings import get_settings
from fieldbill.store import qbo_pulls
from fieldbill.workflows.inbound.applier import Applied, Applier
from fieldbill.workflows.inbound.schedules import send_pulls
from fieldbill.workflows.messages import InboundMessage


def pull(tenant_id: str, data_type: str, client: QboClient | None = None) -> Applied:
    """One incremental pull of a data type for one company; records the watermark on success."""
    if data_type not in cdc.ENTITIES:
        raise ValueError(f"unknown data type {data_type!r}")
    connection = tokens.get_connection(tenant_id)
    if connection is None or connection.status != "connected":
        raise NeedsReconnect(f"tenant {tenant_id} has no live QuickBooks connection")
    client = client or QboClient(tenant_id)
    marks = qbo_pulls.watermarks(tenant_id)
    mark = dict(marks.get(data_type) or {})
    changes = cdc.read_changes(client, data_type, mark, float(get_settings().qbo_seconds_per_minute))
    result = Applier(tenant_id, client).apply_changes(changes.rows, data_type)
    result.mode = changes.mode
    changed_since = cdc.watermark(changes.server_time) if changes.server_time else None
    qbo_pulls.record_pull(
        tenant_id,
        data_type,
        {
            "last_success_at": now_iso(),
            "mode": result.mode,
            "changed_since": changed_since or mark.get("changed_since"),
            "pulled_at_epoch": int(time.time()) if changed_since else mark.get("pulled_at_epoch"),
            "counts": result.as_map(),
        },
    )
    logger.info(
        "QuickBooks pull applied",
        extra={"tenant_id": tenant_id, "data_type": data_type, "counts": result.as_map()},
    )
    return result


def apply_event(tenant_id: str, entity: str, entity_id: str, operation: str | None) -> Applied:
    """A webhook event: re-read the entity now and apply what QuickBooks holds (not the event)."""
    return Applier(tenant_id, QboClient(tenant_id)).apply_event(entity, entity_id, operation or "Update")


def request_pull(tenant_id: str, data_type: str) -> dict[str, Any]:
    """A manual sync of one data type (the HTTP API answers 202)."""
    if data_type not in cdc.DATA_TYPES:
        raise ValidationError("data_type", f"must be one of {', '.join(cdc.DATA_TYPES)}")
    connection = tokens.get_connection(tenant_id)
    if connection is None or connection.status != "connected":
        status = connection.status if connection else "disconnected"
        raise Conflict(f"QuickBooks is {status}: connect it first")
    send_pulls(
        [InboundMessage(kind="pull", tenant_id=tenant_id, realm_id=connection.realm_id, data_type=data_type)]
    )
    return {"data_type": data_type, "status": "queued", "realm_id": connection.realm_id}
