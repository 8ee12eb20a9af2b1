"""Email one invoice with its PDF, once per invoice version and recipient.

Called by the route that sends an invoice (POST /invoices/{id}/send), which then marks the
invoice sent through the invoice machine: this module changes the invoice's delivery status
only, never its status.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldbill.clock import now
from fieldbill.domain import delivery
from fieldbill.domain.errors import Conflict
from fieldbill.mail import message as mail_message
from fieldbill.mail import ses
from fieldbill.mail.errors import MailError, MailUnavailable
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import messages

MARK_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    message_id: str  # ours: the deterministic key of this invoice version and recipient
    ses_message_id: str | None
    recipient: str
    subject: str
    delivery_status: str  # the invoice's, after this send
    sent_now: bool  # False: this version went to this recipient before, nothing was sent again


def send_invoice(
    tenant_id: str, invoice_id: str, pdf: bytes, *, actor: str, recipient: str | None = None
) -> SendResult:
    """Email the invoice's current version to `recipient` (default: its billing email).

    Raises NotFound (no such invoice), ValidationError (field `to`: no or a bad address; an
    invoice that cannot be sent), Conflict (the same send is under way), MailRejected (SES
    refused it; recorded, may be retried once fixed) or MailUnavailable (try again later).
    """
    sender = get_settings().ses_from_address
    if not sender:
        raise MailUnavailable("NotConfigured", "no sender identity: set the SesFromAddress parameter")
    invoice = messages.invoice_for_mail(tenant_id, invoice_id)
    delivery.check_sendable(invoice_id, invoice.status)
    to = delivery.recipient(recipient, invoice.billing_email)
    mail = mail_message.InvoiceMail(
        sender_address=sender,
        company=messages.company_name(tenant_id) or tenant_id,
        to=to,
        customer=invoice.customer,
        number=invoice.number,
        total=invoice.total,
        currency=invoice.currency,
        due_date=invoice.due_date,
        pdf=pdf,
        balance_forward=invoice.balance_forward,
    )
    # Built before the claim: a message that cannot be built claims nothing.
    built = mail_message.build(mail, now())
    key = delivery.message_key(tenant_id, invoice_id, invoice.version, to)
    state, record = messages.claim(
        tenant_id,
        key,
        invoice_id=invoice_id,
        version=invoice.version,
        recipient=to,
        sender=sender,
        subject=str(built["Subject"]),
        actor=actor,
    )
    log = {"tenant_id": tenant_id, "invoice_id": invoice_id, "message_id": key}
    if state == "busy":
        raise Conflict(
            f"invoice {invoice_id!r} is being emailed to {to} right now; try again in a few minutes"
        )
    if state == "done":
        logger.info("invoice email already sent: not sent again", extra=log)
        current = messages.invoice_for_mail(tenant_id, invoice_id)
        return SendResult(
            message_id=key,
            ses_message_id=record.ses_message_id,
            recipient=to,
            subject=record.subject,
            delivery_status=current.delivery_status,
            sent_now=False,
        )
    try:
        ses_id = ses.send(built, tags={delivery.MESSAGE_TAG: key})
    except MailError as exc:
        messages.mark_failed(tenant_id, key, exc.code, exc.message, actor=actor)
        logger.warning("invoice email refused", extra={**log, "code": exc.code})
        raise
    status = _mark_sent(tenant_id, key, ses_id, actor)
    logger.info("invoice emailed", extra={**log, "ses_message_id": ses_id})
    return SendResult(
        message_id=key,
        ses_message_id=ses_id,
        recipient=to,
        subject=str(built["Subject"]),
        delivery_status=status,
        sent_now=True,
    )


def _mark_sent(tenant_id: str, key: str, ses_id: str, actor: str) -> str:
    """SES has the message now: recording it must not give up on the first concurrent writer (an
    SES event or another send touching the invoice), or a retry after the lease would email the
    customer again. Each attempt reads again and decides again."""
    for attempt in range(MARK_ATTEMPTS):
        try:
            return messages.mark_sent(tenant_id, key, ses_id, actor=actor)
        except Conflict:
            if attempt == MARK_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
