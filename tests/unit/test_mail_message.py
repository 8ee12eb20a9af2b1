"""The invoice email is a real MIME message: parsed back, it says what it must and carries the PDF."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from email.parser import BytesParser

import pytest

from fieldbill.mail.message import InvoiceMail, build
from tests.pdf import make_pdf, read_pdf


def _mail(**overrides: object) -> InvoiceMail:
    values: dict[str, object] = {
        "sender_address": "invoices@billing.example.com",
        "company": "Blue Lagoon Pools",
        "to": "ap@customer.example.org",
        "customer": "Harbor Hotel",
        "number": "INV-1042",
        "total": Decimal("1234.50"),
        "currency": "USD",
        "due_date": "2026-12-31",
        "pdf": make_pdf("INV-1042", pages=2),
    }
    values.update(overrides)
    return InvoiceMail(**values)  # type: ignore[arg-type]


def _parsed(mail: InvoiceMail):
    raw = build(mail, datetime(2026, 12, 3, 13, 0, tzinfo=UTC)).as_bytes()
    return raw, BytesParser(policy=policy.default).parsebytes(raw)


def test_headers_name_sender_recipient_invoice_and_company():
    # Given an invoice email / When it is built and parsed back
    _, message = _parsed(_mail())
    # Then From is the company at the verified sender address, To the billing email
    assert message["From"].addresses[0].display_name == "Blue Lagoon Pools"
    assert message["From"].addresses[0].addr_spec == "invoices@billing.example.com"
    assert [a.addr_spec for a in message["To"].addresses] == ["ap@customer.example.org"]
    assert message["Subject"] == "Invoice INV-1042 from Blue Lagoon Pools"
    assert message["Date"].datetime == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    assert message["Message-ID"].endswith("@billing.example.com>")


def test_plain_text_and_html_bodies_say_number_total_and_due_date():
    _, message = _parsed(_mail())
    assert message.get_content_type() == "multipart/mixed"
    plain = message.get_body(preferencelist=("plain",)).get_content()
    rich = message.get_body(preferencelist=("html",)).get_content()
    for body in (plain, rich):
        assert "INV-1042" in body
        assert "1234.50 USD" in body
        assert "2026-12-31" in body
        assert "Harbor Hotel" in body


def test_the_pdf_is_attached_by_name_and_readable():
    pdf = make_pdf("INV-1042", pages=2)
    _, message = _parsed(_mail(pdf=pdf))
    attachments = list(message.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in attachments] == [
        ("application/pdf", "invoice-INV-1042.pdf")
    ]
    data = attachments[0].get_content()
    assert data == pdf
    reader = read_pdf(data)
    assert len(reader.pages) == 2
    assert reader.metadata is not None and reader.metadata.title == "INV-1042"


def test_the_raw_message_is_seven_bit_with_crlf_line_ends():
    # SES takes the raw bytes as they are: no 8-bit body, lines end with CRLF
    raw, _ = _parsed(_mail(company="Café Piscines", customer="Señora Ruiz"))
    raw.decode("ascii")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_html_body_escapes_names():
    _, message = _parsed(_mail(customer="<script>alert(1)</script>"))
    rich = message.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in rich and "&lt;script&gt;" in rich


def test_a_company_name_cannot_inject_a_header():
    with pytest.raises(ValueError):
        build(_mail(company="Evil\r\nBcc: victim@example.org"), datetime.now(UTC))


def test_an_attachment_that_is_not_a_pdf_is_refused():
    with pytest.raises(ValueError, match="not a PDF"):
        build(_mail(pdf=b"<html>not a pdf</html>"), datetime.now(UTC))


def test_attachment_name_keeps_only_safe_characters():
    _, message = _parsed(_mail(number="2026/12 #7"))
    assert [a.get_filename() for a in message.iter_attachments()] == ["invoice-2026-12-7.pdf"]
    assert message["Subject"] == "Invoice 2026/12 #7 from Blue Lagoon Pools"


# ---------------------------------------------------------------------------- (issue 16)
def test_a_period_invoice_email_tells_the_previous_balance_apart_from_the_invoice_total():
    _, message = _parsed(_mail(total=Decimal("0.00"), balance_forward=Decimal("40.00")))
    plain = message.get_body(preferencelist=("plain",)).get_content()
    rich = message.get_body(preferencelist=("html",)).get_content()
    for body in (plain, rich):
        assert "0.00 USD" in body
        assert "previous balance of 40.00 USD" in body.replace("<strong>", "").replace("</strong>", "")
        assert "40.00 USD in all" in body.replace("<strong>", "").replace("</strong>", "")


def test_an_invoice_email_without_a_previous_balance_does_not_mention_one():
    _, message = _parsed(_mail())
    assert "previous balance" not in message.get_body(preferencelist=("plain",)).get_content()
