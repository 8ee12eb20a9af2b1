"""Rules of an invoice email: who it goes to, its deterministic key, and the delivery machines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldbill.domain.delivery import (
    DELIVERY_MACHINE,
    MESSAGE_MACHINE,
    DeliveryStatus,
    MessageStatus,
    attachment_name,
    check_sendable,
    display_number,
    message_key,
    recipient,
)
from fieldbill.domain.errors import Conflict, InvalidTransition, ValidationError

AT = datetime(2026, 12, 3, tzinfo=UTC)


def test_recipient_is_the_override_else_the_billing_email():
    assert recipient(None, "ap@customer.example.org") == "ap@customer.example.org"
    assert recipient(" boss@customer.example.org ", "ap@customer.example.org") == "boss@customer.example.org"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "no-at-sign",
        "a@b",
        "Name <a@b.example>",
        "a@b.example, c@d.example",
        "a@b.example\r\nBcc: x@y.example",
        "a b@c.example",
    ],
)
def test_a_recipient_that_is_not_one_address_is_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as raised:
        recipient(bad, None)
    assert raised.value.field == "to"


def test_no_recipient_at_all_is_refused():
    with pytest.raises(ValidationError, match="no billing email"):
        recipient(None, None)


def test_message_key_is_deterministic_per_version_and_address():
    key = message_key("acme", "inv-1", 3, "AP@Customer.example.org")
    assert key == message_key("acme", "inv-1", 3, "ap@customer.example.org")
    assert key != message_key("acme", "inv-1", 4, "ap@customer.example.org")
    assert key != message_key("acme", "inv-1", 3, "boss@customer.example.org")
    assert key != message_key("other", "inv-1", 3, "ap@customer.example.org")
    assert len(key) == 32 and int(key, 16) >= 0


def test_void_invoices_are_not_sent():
    check_sendable("inv-1", "draft")
    with pytest.raises(ValidationError):
        check_sendable("inv-1", "void")


def test_display_number_and_attachment_name():
    assert display_number("INV-7", "1001", "abc-def") == "INV-7"
    assert display_number(None, "1001", "abc-def") == "1001"
    assert display_number(None, None, "3f2a9c1e-0000-4000") == "3f2a9c1e"
    assert attachment_name("INV 7/2") == "invoice-INV-7-2.pdf"


def test_message_machine_follows_ses_events():
    assert MESSAGE_MACHINE.can(MessageStatus.SENDING, MessageStatus.SENT)
    assert MESSAGE_MACHINE.can(MessageStatus.SENT, MessageStatus.BOUNCED)
    assert MESSAGE_MACHINE.can(MessageStatus.DELIVERED, MessageStatus.COMPLAINED)
    assert MESSAGE_MACHINE.can(MessageStatus.FAILED, MessageStatus.SENDING)
    # a bounced message is never delivered afterwards
    with pytest.raises(InvalidTransition):
        MESSAGE_MACHINE.transition("m", MessageStatus.BOUNCED, MessageStatus.DELIVERED, at=AT, actor="ses")
    with pytest.raises(Conflict):
        MESSAGE_MACHINE.transition("m", MessageStatus.SENT, MessageStatus.SENT, at=AT, actor="ses")


def test_invoice_delivery_can_be_sent_again_after_a_bounce_but_not_unsent():
    assert DELIVERY_MACHINE.can(DeliveryStatus.NOT_SENT, DeliveryStatus.SENT)
    assert DELIVERY_MACHINE.can(DeliveryStatus.BOUNCED, DeliveryStatus.SENT)
    assert not DELIVERY_MACHINE.can(DeliveryStatus.NOT_SENT, DeliveryStatus.DELIVERED)
    assert not any(DeliveryStatus.NOT_SENT in targets for targets in DELIVERY_MACHINE.allowed.values())
