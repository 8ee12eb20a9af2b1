"""EventBridge schedules: one pull message per connected company.

Kept apart from the consumer (which applies what a pull brings) so the scheduled function imports
neither the QuickBooks client nor OAuth: its cold start is a DynamoDB query and a send.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import qbo_pulls, reconciliation
from fieldbill.workflows import queues
from fieldbill.workflows.messages import PULL_DATA_TYPES, InboundMessage

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import QboConnection


def connected_companies() -> list[QboConnection]:
    return qbo_pulls.connected_companies()


def send_pulls(messages: list[InboundMessage]) -> None:
    queues.send(get_settings().inbound_queue_url, messages)


RECONCILE = "reconcile"
RECONCILE_DAYS = 31  # the scheduled reconciliation checks the invoices of the last month


def schedule_reconcile(today: date | None = None) -> dict[str, Any]:
    """One reconciliation per connected company (issue 15): an operation holding its report, and
    its message on the inbound queue (its QuickBooks reads share the company's limiter)."""
    today = today or date.today()
    since = today - timedelta(days=RECONCILE_DAYS)
    connections = connected_companies()
    messages = []
    operations: dict[str, str] = {}
    for c in connections:
        operation = reconciliation.create(c.tenant_id, since, today, "schedule")
        operations[c.tenant_id] = operation.id
        messages.append(
            InboundMessage(
                kind="reconcile",
                tenant_id=c.tenant_id,
                realm_id=c.realm_id,
                operation_id=operation.id,
                date_from=since.isoformat(),
                date_to=today.isoformat(),
            )
        )
    send_pulls(messages)
    logger.info("scheduled reconciliations queued", extra={"companies": len(connections)})
    return {"data_type": RECONCILE, "companies": len(connections), "operations": operations}


def schedule_pulls(data_type: str) -> dict[str, Any]:
    """One pull message per connected company for this data type."""
    if data_type == RECONCILE:
        return schedule_reconcile()
    if data_type not in PULL_DATA_TYPES:
        raise ValueError(f"unknown data type {data_type!r}")
    connections = connected_companies()
    send_pulls(
        [
            InboundMessage(kind="pull", tenant_id=c.tenant_id, realm_id=c.realm_id, data_type=data_type)
            for c in connections
        ]
    )
    logger.info(
        "scheduled QuickBooks pulls queued", extra={"data_type": data_type, "companies": len(connections)}
    )
    return {"data_type": data_type, "companies": len(connections)}
