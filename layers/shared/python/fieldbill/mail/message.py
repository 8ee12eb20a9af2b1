"""The invoice email as a real MIME message (Python's email package, RFC 5322 policy).

multipart/mixed
├── multipart/alternative: text/plain, text/html (the same words)
└── application/pdf; name and filename invoice-<number>.pdf (base64)
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from fieldbill.domain.delivery import attachment_name

PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceMail:
    sender_address: str  # the verified SES identity (settings)
    company: str  # the tenant's company: the From display name and the subject
    to: str
    customer: str | None
    number: str
    total: Decimal
    currency: str
    due_date: str | None
    pdf: bytes
    # issue 16: a period invoice's previous balance (earlier invoices), told apart from its total
    balance_forward: Decimal | None = None


def _previous(mail: InvoiceMail, strong: Callable[[str], str]) -> str:
    if not mail.balance_forward:
        return ""
    owed = mail.total + mail.balance_forward
    return (
        f" Your account's previous balance of {strong(f'{mail.balance_forward:.2f} {mail.currency}')} is not"
        f" included in it: the account owes {strong(f'{owed:.2f} {mail.currency}')} in all."
    )


def subject(mail: InvoiceMail) -> str:
    return f"Invoice {mail.number} from {mail.company}"


def _text(mail: InvoiceMail) -> str:
    greeting = f"Dear {mail.customer}," if mail.customer else "Hello,"
    due = f" It is due on {mail.due_date}." if mail.due_date else ""
    return (
        f"{greeting}\n\n"
        f"Please find attached invoice {mail.number} from {mail.company} for "
        f"{mail.total:.2f} {mail.currency}.{due}{_previous(mail, str)}\n\n"
        f"Thank you for your business.\n{mail.company}\n"
    )


def _html(mail: InvoiceMail) -> str:
    esc = html.escape
    greeting = f"Dear {esc(mail.customer)}," if mail.customer else "Hello,"
    due = f" It is due on <strong>{esc(mail.due_date)}</strong>." if mail.due_date else ""
    return (
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>{greeting}</p>\n"
        f"<p>Please find attached invoice <strong>{esc(mail.number)}</strong> from {esc(mail.company)} "
        f"for <strong>{mail.total:.2f} {esc(mail.currency)}</strong>.{due}"
        f"{_previous(mail, lambda t: f'<strong>{esc(t)}</strong>')}</p>\n"
        f"<p>Thank you for your business.<br>{esc(mail.company)}</p>\n"
        "</body></html>\n"
    )


def build(mail: InvoiceMail, at: datetime) -> EmailMessage:
    """The message, ready for SES's raw content (`as_bytes()`: CRLF line ends, 7-bit safe)."""
    if not mail.pdf.startswith(PDF_MAGIC):
        raise ValueError("the attachment is not a PDF document")
    message = EmailMessage(policy=policy.SMTP)
    local, _, domain = mail.sender_address.partition("@")
    # Address() refuses CR/LF in any part: a company name cannot inject a header.
    message["From"] = Address(display_name=mail.company, username=local, domain=domain)
    message["To"] = mail.to
    message["Subject"] = subject(mail)
    message["Date"] = format_datetime(at)
    # SES puts its own Message-ID on what it delivers; this one identifies the message until then.
    message["Message-ID"] = make_msgid(domain=domain or None)
    message.set_content(_text(mail))
    message.add_alternative(_html(mail), subtype="html")
    message.add_attachment(
        mail.pdf, maintype="application", subtype="pdf", filename=attachment_name(mail.number)
    )
    return message
