"""Email delivery of invoices: the message and delivery-status machines, and the rules of a send.

| machine          | allowed transitions                                                        |
|------------------|----------------------------------------------------------------------------|
| email_message    | sending -> sent | failed; failed -> sending (a retry); sent -> delivered |   |
|                  | bounced | complained | failed (SES rejected it after accepting the call);   |
|                  | delivered -> bounced (an asynchronous bounce) | complained                 |
| invoice_delivery | not_sent -> sent; sent -> delivered | bounced | complained | failed;       |
|                  | delivered -> sent | bounced | complained; bounced, complained, failed ->    |
|                  | sent (sent again, e.g. to a corrected address)                            |

A message is one email of one invoice version to one recipient; its key is deterministic
(`message_key`), so a retried send finds the first one instead of sending again. The invoice's
`delivery_status` follows its latest message only: an event of an older message changes that
message, not the invoice. The invoice's own `status` (draft, sent, paid ...) is not touched here.
"""

from __future__ import annotations

import enum
import hashlib
import re
from email.utils import parseaddr

from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import InvoiceStatus
from fieldbill.domain.states import StateMachine


class MessageStatus(enum.StrEnum):
    SENDING = "sending"  # claimed: the SES call is under way (or its answer was lost)
    SENT = "sent"  # SES accepted it
    FAILED = "failed"  # SES refused it, or rejected it after accepting
    DELIVERED = "delivered"  # the recipient's mail server accepted it
    BOUNCED = "bounced"
    COMPLAINED = "complained"  # the recipient marked it as spam


class DeliveryStatus(enum.StrEnum):
    """An invoice's delivery status: that of its latest message."""

    NOT_SENT = "not_sent"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"


MESSAGE_MACHINE: StateMachine[MessageStatus] = StateMachine(
    "email_message",
    {
        MessageStatus.SENDING: frozenset({MessageStatus.SENT, MessageStatus.FAILED}),
        MessageStatus.FAILED: frozenset({MessageStatus.SENDING}),
        MessageStatus.SENT: frozenset(
            {MessageStatus.DELIVERED, MessageStatus.BOUNCED, MessageStatus.COMPLAINED, MessageStatus.FAILED}
        ),
        MessageStatus.DELIVERED: frozenset({MessageStatus.BOUNCED, MessageStatus.COMPLAINED}),
    },
    initial=frozenset({MessageStatus.SENDING}),
)

DELIVERY_MACHINE: StateMachine[DeliveryStatus] = StateMachine(
    "invoice_delivery",
    {
        DeliveryStatus.NOT_SENT: frozenset({DeliveryStatus.SENT}),
        DeliveryStatus.SENT: frozenset(
            {
                DeliveryStatus.DELIVERED,
                DeliveryStatus.BOUNCED,
                DeliveryStatus.COMPLAINED,
                DeliveryStatus.FAILED,
            }
        ),
        DeliveryStatus.DELIVERED: frozenset(
            {DeliveryStatus.SENT, DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED}
        ),
        DeliveryStatus.BOUNCED: frozenset({DeliveryStatus.SENT}),
        DeliveryStatus.COMPLAINED: frozenset({DeliveryStatus.SENT}),
        DeliveryStatus.FAILED: frozenset({DeliveryStatus.SENT}),
    },
    initial=frozenset({DeliveryStatus.NOT_SENT}),
)

# SES event types (event publishing's `eventType`; identity notifications' `notificationType`)
# and what each makes of a message. Others (DeliveryDelay, Open, Click, Subscription) change nothing.
SES_EVENT_STATUS: dict[str, MessageStatus] = {
    "Send": MessageStatus.SENT,
    "Delivery": MessageStatus.DELIVERED,
    "Bounce": MessageStatus.BOUNCED,
    "Complaint": MessageStatus.COMPLAINED,
    "Reject": MessageStatus.FAILED,
    "Rendering Failure": MessageStatus.FAILED,
}

# The SES message tag that names our message id on a send; SES's events carry it back, so an
# event of our message that is not recorded yet is told from one of a message we never sent.
MESSAGE_TAG = "fieldbill-message"

# Invoice statuses that may not be emailed: a withdrawn invoice (INVOICE_MACHINE's ends).
UNSENDABLE_INVOICE_STATUSES = frozenset({str(InvoiceStatus.VOID), str(InvoiceStatus.DELETED)})

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def recipient(override: str | None, billing_email: str | None, field: str = "to") -> str:
    """The address to send to: the override when given, else the invoice's billing email. One
    plain address (no display name, no list), so a header can carry nothing but it."""
    chosen = override if override is not None else billing_email
    if chosen is None or not chosen.strip():
        raise ValidationError(field, "the invoice has no billing email: give a recipient")
    value = chosen.strip()
    name, address = parseaddr(value)
    if name or address != value or not _ADDRESS.match(address) or len(address) > 254:
        raise ValidationError(field, f"{value!r} is not one email address")
    return address


def check_sendable(invoice_id: str, status: str) -> None:
    if status in UNSENDABLE_INVOICE_STATUSES:
        raise ValidationError("invoice_id", f"invoice {invoice_id!r} is {status}: it cannot be sent")


def message_key(tenant_id: str, invoice_id: str, version: int, recipient_address: str) -> str:
    """Deterministic id of one email: the same invoice version to the same address is one message
    (a retried send finds it); a new version or another address is a new message."""
    material = "\n".join([tenant_id, invoice_id, str(version), recipient_address.lower()])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def display_number(number: str | None, qbo_doc_number: str | None, invoice_id: str) -> str:
    """The number a customer sees: ours, else QuickBooks' DocNumber, else the id's first block."""
    return number or qbo_doc_number or invoice_id.split("-")[0][:12]


def attachment_name(number: str) -> str:
    """invoice-<number>.pdf with only characters every mail client keeps in a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", number).strip("-.") or "invoice"
    return f"invoice-{safe}.pdf"
