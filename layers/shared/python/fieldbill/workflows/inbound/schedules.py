"""EventBridge schedules: one pull message per connected company.

Kept apart from the consumer (which applies what a pull brings) so the scheduled function imports
neither the QuickBooks client nor OAuth: its cold start is a DynamoDB query and a send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import qbo_pulls
from fieldbill.workflows import queues
from fieldbill.workflows.messages import PULL_DATA_TYPES, InboundMessage

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import QboConnection


def connected_companies() -> list[QboConnection]:
    return qbo_pulls.connected_companies()


def send_pulls(messages: list[InboundMessage]) -> None:
    queues.send(get_settings().inbound_queue_url, messages)


def schedule_pulls(data_type: str) -> dict[str, Any]:
    """One pull message per connected company for this data type."""
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
