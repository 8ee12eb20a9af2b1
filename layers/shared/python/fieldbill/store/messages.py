"""Sent invoice emails and the invoices' delivery status (docs/email.md).

A send claims its message first (a conditional put of the deterministic key), then calls SES,
then marks the message sent and the invoice's delivery status in ONE transaction. A claim is a
lease: if the sender dies between the SES call and the mark, the outcome is unknown, and only
after the lease may a retry send again (SES has no idempotency token; see
docs/decisions/0005-email-delivery.md). A refused send is marked failed, and may be retried.
SES events move the message (and the invoice, when it is the invoice's latest message) through
the machines of domain/delivery.py; a repeated or late event changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain.delivery import (
    DELIVERY_MACHINE,
    MESSAGE_MACHINE,
    DeliveryStatus,
    MessageStatus,
    display_number,
)
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound
from fieldbill.store import common, transitions
from fieldbill.store.models import META, Contact, Entity, Invoice, QboConnection, SentMessage

# Longer than any SES call of the API function (30 s timeout): a claim is never taken over while
# its call may still run.
LEASE_SECONDS = 120

Claim = Literal["claimed", "done", "busy"]
E = TypeVar("E", bound=Entity)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceForMail:
    """What an invoice email says, read in one place."""

    id: str
    number: str
    version: int
    status: str
    total: Decimal
    currency: str
    due_date: str | None
    customer: str | None
    billing_email: str | None
    delivery_status: str
    delivery_message_id: str | None
    balance_forward: Decimal | None = None  # issue 16: a period invoice's previous balance


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    id: str
    tenant_id: str
    invoice_id: str
    invoice_version: int
    recipient: str
    subject: str
    status: str
    ses_message_id: str | None
    last_error: dict[str, Any] | None
    last_event: dict[str, Any] | None
    history: list[dict[str, Any]]


def _message(record: SentMessage) -> Message:
    return Message(
        id=record.id,
        tenant_id=record.tenant_id,
        invoice_id=record.invoice_id,
        invoice_version=int(record.invoice_version),
        recipient=record.recipient,
        subject=record.subject,
        status=record.status,
        ses_message_id=record.ses_message_id,
        last_error=record.last_error.as_dict() if record.last_error is not None else None,
        last_event=record.last_event.as_dict() if record.last_event is not None else None,
        history=[
            {"at": h.at, "actor": h.actor, "from": h.from_state, "to": h.to_state, "reason": h.reason}
            for h in record.history
        ],
    )


# ---------------------------------------------------------------------------- reads
def _current(model: type[E], pk: str, entity: str) -> E:
    """A strongly consistent read: what a claim or a mark decides from must be the latest write
    (an eventually consistent read right after a claim may not see it yet)."""
    try:
        record = Entity.get(pk, META, consistent_read=True)
    except DoesNotExist:
        raise NotFound(entity, pk.rsplit("#", 1)[-1]) from None
    if not isinstance(record, model):
        raise NotFound(entity, pk.rsplit("#", 1)[-1])
    return record


def invoice_for_mail(tenant_id: str, invoice_id: str) -> InvoiceForMail:
    # Consistent: an invoice edited a moment ago is sent as its new version (a new message).
    invoice = _current(Invoice, Invoice.key(tenant_id, invoice_id), "invoice")
    contact = common.find(Contact, Contact.key(tenant_id, invoice.contact_id))
    return InvoiceForMail(
        id=invoice.id,
        number=display_number(invoice.number, invoice.qbo_doc_number, invoice.id),
        version=int(invoice.version or 1),
        status=invoice.status,
        total=invoice.total,
        currency=invoice.currency,
        due_date=invoice.due_date,
        customer=contact.name if contact is not None else None,
        # The invoice's own billing email, else its customer's address (QuickBooks' BillEmail
        # defaults the same way).
        billing_email=invoice.billing_email or (contact.email if contact is not None else None),
        delivery_status=invoice.delivery_status or DeliveryStatus.NOT_SENT.value,
        delivery_message_id=invoice.delivery_message_id,
        balance_forward=invoice.balance_forward,
    )


def company_name(tenant_id: str) -> str | None:
    """The tenant's company name as QuickBooks knows it (None before a connection)."""
    connection = common.find(QboConnection, QboConnection.key(tenant_id))
    return connection.company_name if connection is not None else None


def get_message(tenant_id: str, message_id: str) -> Message:
    return _message(common.get(SentMessage, SentMessage.key(tenant_id, message_id), entity="message"))


def find_by_ses_id(ses_message_id: str) -> SentMessage | None:
    found = list(SentMessage.gsi1.query(SentMessage.ses_key(ses_message_id), limit=1))
    return next((r for r in found if isinstance(r, SentMessage)), None)


# ---------------------------------------------------------------------------- a send
def claim(
    tenant_id: str,
    message_id: str,
    *,
    invoice_id: str,
    version: int,
    recipient: str,
    sender: str,
    subject: str,
    actor: str,
) -> tuple[Claim, Message]:
    """`claimed`: send it now; `done`: SES accepted it before (do not send again); `busy`: another
    send of it holds a live lease (its outcome is not known yet)."""
    lease = int(time.time()) + LEASE_SECONDS
    record = SentMessage(
        pk=SentMessage.key(tenant_id, message_id),
        sk=META,
        tenant_id=tenant_id,
        id=message_id,
        invoice_id=invoice_id,
        invoice_version=version,
        recipient=recipient,
        sender=sender,
        subject=subject,
        status=MessageStatus.SENDING.value,
        lease_until=lease,
    )
    try:
        common.create(record, actor, reason=f"invoice {invoice_id} v{version} to {recipient}")
        return "claimed", _message(record)
    except Conflict:
        pass
    existing = _current(SentMessage, record.pk, "message")
    try:
        if existing.status == MessageStatus.FAILED:
            transitions.apply(
                existing,
                "status",
                MESSAGE_MACHINE,
                MessageStatus.SENDING,
                actor=actor,
                reason="sent again after a failure",
                extra=[SentMessage.lease_until.set(lease)],
            )
            return "claimed", _message(existing)
        if existing.status == MessageStatus.SENDING:
            if (existing.lease_until or 0) >= time.time():
                return "busy", _message(existing)
            _take_over(existing, lease, actor)
            return "claimed", _message(existing)
    except Conflict:
        return "busy", _message(_current(SentMessage, record.pk, "message"))
    return "done", _message(existing)


def _take_over(record: SentMessage, lease: int, actor: str) -> None:
    """A lease that ran out: its sender died mid-send. Not a status change (still sending)."""
    reason = "lease expired: the earlier call's outcome is unknown; sending again"
    try:
        record.update(
            actions=[
                SentMessage.lease_until.set(lease),
                SentMessage.updated_at.set(now_iso()),
                SentMessage.history.set(
                    SentMessage.history.append([common.history_entry(actor, "sending", "sending", reason)])
                ),
            ],
            condition=(SentMessage.status == MessageStatus.SENDING.value)
            & (SentMessage.lease_until == record.lease_until),
        )
    except UpdateError as exc:
        if common.conditional_failed(exc):
            raise Conflict(f"message {record.id!r} was taken over meanwhile") from None
        raise


def mark_sent(tenant_id: str, message_id: str, ses_message_id: str, *, actor: str) -> str:
    """SES accepted the message: the message is sent and its invoice's delivery status says so,
    in one transaction. Answers the invoice's delivery status."""
    record = _current(SentMessage, SentMessage.key(tenant_id, message_id), "message")
    invoice = _current(Invoice, Invoice.key(tenant_id, record.invoice_id), "invoice")
    stamp = now_iso()
    message_change = transitions.change(
        SentMessage,
        "status",
        MESSAGE_MACHINE,
        message_id,
        record.status,
        MessageStatus.SENT,
        actor=actor,
        reason=f"SES accepted it as {ses_message_id}",
        extra=[
            SentMessage.ses_message_id.set(ses_message_id),
            SentMessage.gsi1pk.set(SentMessage.ses_key(ses_message_id)),
            SentMessage.gsi1sk.set(META),
            SentMessage.sent_at.set(stamp),
            SentMessage.lease_until.remove(),
        ],
    )
    invoice_actions, invoice_condition = _delivery_sent(invoice, message_id, record.recipient, actor)
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(record, actions=message_change.actions, condition=message_change.condition)
            tx.update(invoice, actions=invoice_actions, condition=invoice_condition)
    except TransactWriteError as exc:
        if common.conditional_failed(exc) or common.transaction_conflict(exc):
            raise Conflict(f"message {message_id!r} or its invoice changed meanwhile; read again") from None
        raise
    return DeliveryStatus.SENT.value


def _delivery_sent(invoice: Invoice, message_id: str, recipient: str, actor: str) -> tuple[list[Action], Any]:
    """The invoice's part of a send: its latest message is this one, its delivery status sent."""
    current = invoice.delivery_status or DeliveryStatus.NOT_SENT.value
    pointer = Invoice.delivery_message_id.set(message_id)
    reason = f"emailed to {recipient} (message {message_id})"
    unchanged = (
        Invoice.delivery_status.does_not_exist()
        if invoice.delivery_status is None
        else Invoice.delivery_status == invoice.delivery_status
    )
    if current == DeliveryStatus.SENT:
        # Another message while the last is still on its way: the status stays, the pointer moves.
        history = Invoice.history.set(
            Invoice.history.append([common.history_entry(actor, current, current, reason)])
        )
        return [pointer, history, Invoice.updated_at.set(now_iso())], unchanged
    decided = transitions.change(
        Invoice,
        "delivery_status",
        DELIVERY_MACHINE,
        invoice.id,
        current,
        DeliveryStatus.SENT,
        actor=actor,
        reason=reason,
        extra=[pointer],
    )
    return decided.actions, unchanged


def mark_failed(tenant_id: str, message_id: str, code: str, detail: str, *, actor: str) -> None:
    """SES refused the message: recorded, and the claim released (a retry may send it again)."""
    record = _current(SentMessage, SentMessage.key(tenant_id, message_id), "message")
    transitions.apply(
        record,
        "status",
        MESSAGE_MACHINE,
        MessageStatus.FAILED,
        actor=actor,
        reason=f"SES refused it: {code}",
        extra=[
            SentMessage.last_error.set({"code": code, "message": detail[:1000], "at": now_iso()}),
            SentMessage.lease_until.remove(),
        ],
    )


# ---------------------------------------------------------------------------- SES events
Outcome = Literal["applied", "duplicate", "out_of_order", "unknown_message"]


def apply_event(
    ses_message_id: str,
    target: MessageStatus,
    *,
    event_type: str,
    at: str,
    detail: dict[str, Any],
    actor: str = "ses",
) -> Outcome:
    """Move the message SES reports on to `target`, and its invoice's delivery status with it when
    it is the invoice's latest message, in one transaction."""
    record = find_by_ses_id(ses_message_id)
    if record is None:
        return "unknown_message"
    # The index is eventually consistent; the table has the message's current status.
    record = _current(SentMessage, record.pk, "message")
    reason = _event_reason(event_type, detail)
    event = {"type": event_type, "at": at, **{k: str(v)[:500] for k, v in detail.items() if v is not None}}
    try:
        message_change = transitions.change(
            SentMessage,
            "status",
            MESSAGE_MACHINE,
            record.id,
            record.status,
            target,
            actor=actor,
            reason=reason,
            extra=[SentMessage.last_event.set(event)],
        )
    except InvalidTransition:
        return "out_of_order"  # e.g. a delivery reported after a bounce: the bounce stands
    except Conflict:
        return "duplicate"  # SNS delivers at least once
    try:
        invoice: Invoice | None = _current(
            Invoice, Invoice.key(record.tenant_id, record.invoice_id), "invoice"
        )
    except NotFound:
        invoice = None
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(record, actions=message_change.actions, condition=message_change.condition)
            if invoice is not None and invoice.delivery_message_id == record.id:
                invoice_change = _delivery_follows(invoice, target, actor, reason)
                if invoice_change is not None:
                    tx.update(
                        invoice,
                        actions=invoice_change.actions,
                        condition=invoice_change.condition & (Invoice.delivery_message_id == record.id),
                    )
    except TransactWriteError as exc:
        if common.conditional_failed(exc) or common.transaction_conflict(exc):
            # Another event or send moved them meanwhile: the caller is retried and decides again.
            raise Conflict(f"message {record.id!r} or its invoice changed meanwhile") from None
        raise
    return "applied"


def _delivery_follows(
    invoice: Invoice, target: MessageStatus, actor: str, reason: str
) -> transitions.Change | None:
    current = invoice.delivery_status or DeliveryStatus.NOT_SENT.value
    wanted = DeliveryStatus(target.value)
    if current == wanted or not DELIVERY_MACHINE.can(DeliveryStatus(current), wanted):
        return None
    return transitions.change(
        Invoice, "delivery_status", DELIVERY_MACHINE, invoice.id, current, wanted, actor=actor, reason=reason
    )


def _event_reason(event_type: str, detail: dict[str, Any]) -> str:
    parts = [f"SES {event_type}"]
    parts += [f"{k}: {v}" for k, v in detail.items() if v]
    return "; ".join(parts)[:500]
