"""QuickBooks' own send of an invoice (issue 13, when the tenant chooses it): what was asked of
QuickBooks and what it answered, on the invoice (`qbo_send`), and its delivery status through the
invoice_delivery machine. The invoice's own status is the invoice machine's (mark_sent)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from fieldbill.clock import now_iso
from fieldbill.domain.delivery import DELIVERY_MACHINE, DeliveryStatus
from fieldbill.domain.errors import Conflict
from fieldbill.store import common, transitions
from fieldbill.store import invoices as lifecycle
from fieldbill.store.models import Invoice


def _write(tenant_id: str, invoice_id: str, state: dict[str, Any], delivery: str | None, actor: str) -> None:
    for _attempt in range(3):
        record = lifecycle.get(tenant_id, invoice_id)
        current = record.delivery_status or DeliveryStatus.NOT_SENT.value
        extra = [Invoice.qbo_send.set(state)]
        reason = f"QuickBooks send to {state.get('to')}: {state['status']}"
        if (
            delivery
            and current != delivery
            and DELIVERY_MACHINE.can(DeliveryStatus(current), DeliveryStatus(delivery))
        ):
            decided = transitions.change(
                Invoice,
                "delivery_status",
                DELIVERY_MACHINE,
                invoice_id,
                current,
                delivery,
                actor=actor,
                reason=reason,
            )
            actions, condition = decided.actions, decided.condition
            if record.delivery_status is None:
                condition = Invoice.delivery_status.does_not_exist()
            actions = [*actions, *extra]
        else:
            actions = [*extra, Invoice.updated_at.set(now_iso())]
            condition = (
                Invoice.delivery_status.does_not_exist()
                if record.delivery_status is None
                else Invoice.delivery_status == record.delivery_status
            )
        try:
            record.update(actions=actions, condition=condition)
            return
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    raise Conflict(f"invoice {invoice_id!r} kept changing; its QuickBooks send is recorded on retry")


def queued(tenant_id: str, invoice_id: str, to: str, version: int, actor: str) -> None:
    _write(
        tenant_id,
        invoice_id,
        {"status": "queued", "to": to, "version": version, "at": now_iso()},
        None,
        actor,
    )


def sent(tenant_id: str, invoice_id: str, to: str, version: int, at: str, actor: str) -> None:
    state = {"status": "sent", "to": to, "version": version, "at": at}
    _write(tenant_id, invoice_id, state, DeliveryStatus.SENT.value, actor)


def failed(tenant_id: str, invoice_id: str, to: str, version: int, error: dict[str, Any], actor: str) -> None:
    state = {"status": "failed", "to": to, "version": version, "at": now_iso(), "error": error}
    _write(tenant_id, invoice_id, state, None, actor)
