"""Emailing an invoice on the local AWS: plain boto3 SES, a real Maildir outbox, SES's events.

The send goes through moto's SES v2 (raw content, the template's configuration set); the local
patch (local/moto_ses.py) files each accepted message in the stack's Maildir and publishes SES's
events to the configuration set's topic, which the template's subscription and queue carry to
MailEventsFunction a few seconds later (the queue's delay). Tests that feed events by hand use the
documented shapes (events/sqs_ses_*.json) and hold only what stays true whenever those arrive.
"""

from __future__ import annotations

import copy
import json
import mailbox
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import boto3
import pytest

from fieldbill.domain.delivery import MESSAGE_TAG, message_key
from fieldbill.domain.errors import Conflict, NotFound, ValidationError
from fieldbill.mail.errors import MailRejected
from fieldbill.settings import get_settings
from fieldbill.store import messages
from fieldbill.store.models import META, Contact, Entity, Invoice, InvoiceLine, SentMessage
from fieldbill.workflows.documents.send import SendResult, send_invoice
from local import moto_sqs
from local.durable import StateFile
from local.moto_ses import SES_MESSAGE_ID_DOMAIN
from tests.conftest import load_event, wait_for
from tests.pdf import make_pdf, read_pdf

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------- helpers
def _invoice(tenant_id: str, *, email: str | None, version: int = 1, status: str = "draft") -> str:
    contact_id, invoice_id = "c-1", str(uuid.uuid4())
    Contact(
        pk=Contact.key(tenant_id, contact_id),
        sk=META,
        tenant_id=tenant_id,
        id=contact_id,
        name="Harbor Hotel",
        email=email,
    ).save()
    Invoice(
        pk=Invoice.key(tenant_id, invoice_id),
        sk=META,
        tenant_id=tenant_id,
        id=invoice_id,
        contact_id=contact_id,
        status=status,
        destination="local",
        number="INV-1042",
        lines=[
            InvoiceLine(
                line_kind="task_entry",
                description="Pool service",
                quantity=Decimal("2"),
                unit_price=Decimal("60.25"),
                amount=Decimal("120.50"),
            )
        ],
        subtotal=Decimal("120.50"),
        total=Decimal("120.50"),
        issue_date="2026-12-01",
        due_date="2026-12-31",
        version=version,
    ).save()
    return invoice_id


def _reload(tenant_id: str, invoice_id: str) -> Invoice:
    record = Entity.get(Invoice.key(tenant_id, invoice_id), META, consistent_read=True)
    assert isinstance(record, Invoice)
    return record


def _new_version(tenant_id: str, invoice_id: str) -> None:
    """What an edit does to the version (the lead's edit command bumps it)."""
    record = _reload(tenant_id, invoice_id)
    record.update(actions=[Invoice.version.set(Invoice.version + 1)])


def _outbox_to(stack: Any, address: str) -> list[tuple[str, EmailMessage]]:
    box = mailbox.Maildir(stack.outbox, create=False)
    found = []
    for key in box.iterkeys():
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        if address in [a.addr_spec for a in message["To"].addresses]:
            found.append((key, message))
    return found


def _ses_event(name: str, ses_message_id: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(f"sqs_ses_{name}.json"))
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["mail"]["messageId"] = ses_message_id
        record["body"] = json.dumps(body)
        record["messageId"] = str(uuid.uuid4())
    return event


def _deliver(stack: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.aws.registry.invoke("MailEventsFunction", event)
    return result


@pytest.fixture
def address(tenant_id: str) -> str:
    # One address per test: the stack's outbox is shared by every test of the process.
    return f"ap+{tenant_id}@customer.example.org"


# ---------------------------------------------------------------------------- sending
def test_a_send_lands_one_eml_in_the_outbox_maildir(stack, tenant_id, address):
    # Given a draft invoice whose customer has a billing email
    invoice_id = _invoice(tenant_id, email=address)
    pdf = make_pdf("INV-1042")

    # When it is sent
    result = send_invoice(tenant_id, invoice_id, pdf, actor="user-1")

    # Then SES accepted one message, and exactly one .eml is in the Maildir's new/ for that address
    assert result.sent_now and result.recipient == address and result.delivery_status == "sent"
    found = _outbox_to(stack, address)
    assert len(found) == 1
    key, message = found[0]
    assert key.endswith(".eml") and (stack.outbox / "new" / key).is_file()
    assert message["Subject"] == f"Invoice INV-1042 from {tenant_id}"
    assert message["From"].addresses[0].addr_spec == get_settings().ses_from_address
    assert message["Message-ID"] == f"<{result.ses_message_id}@{SES_MESSAGE_ID_DOMAIN}>"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "invoice-INV-1042.pdf"
    assert read_pdf(attachment.get_content()).metadata.title == "INV-1042"
    # and the message and the invoice's delivery status are recorded; the invoice status is untouched
    record = messages.get_message(tenant_id, result.message_id)
    assert (record.status, record.ses_message_id, record.recipient) == (
        "sent",
        result.ses_message_id,
        address,
    )
    invoice = _reload(tenant_id, invoice_id)
    assert invoice.delivery_message_id == result.message_id
    assert invoice.status == "draft"
    # (SES's Delivery event may have followed already: the first delivery change is the send)
    changes = [(h.from_state, h.to_state) for h in invoice.history]
    assert ("not_sent", "sent") in changes and invoice.delivery_status in ("sent", "delivered")


def test_sending_the_same_invoice_version_twice_sends_once(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address)
    pdf = make_pdf("INV-1042")
    # Given a sent invoice / When the same version is sent again (a retried request)
    first = send_invoice(tenant_id, invoice_id, pdf, actor="user-1")
    again = send_invoice(tenant_id, invoice_id, pdf, actor="user-1")
    # Then nothing more was sent: one file, the same message
    assert len(_outbox_to(stack, address)) == 1
    assert not again.sent_now
    assert (again.message_id, again.ses_message_id) == (first.message_id, first.ses_message_id)
    assert again.delivery_status in ("sent", "delivered")
    # But a new version of the invoice is a new message
    _new_version(tenant_id, invoice_id)
    third = send_invoice(tenant_id, invoice_id, pdf, actor="user-1")
    assert third.sent_now and third.message_id != first.message_id
    assert len(_outbox_to(stack, address)) == 2
    assert _reload(tenant_id, invoice_id).delivery_message_id == third.message_id


def test_the_recipient_override_wins_and_a_bad_one_is_refused_naming_the_field(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address)
    other = f"boss+{tenant_id}@customer.example.org"
    result = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1", recipient=other)
    assert result.recipient == other and len(_outbox_to(stack, other)) == 1
    with pytest.raises(ValidationError) as raised:
        send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1", recipient="not an address")
    assert raised.value.field == "to"


def test_an_invoice_without_a_billing_email_or_that_does_not_exist_sends_nothing(stack, tenant_id):
    invoice_id = _invoice(tenant_id, email=None)
    with pytest.raises(ValidationError, match="no billing email"):
        send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    with pytest.raises(NotFound):
        send_invoice(tenant_id, "no-such-invoice", make_pdf(), actor="user-1")
    assert _reload(tenant_id, invoice_id).delivery_status is None


def test_a_void_invoice_is_not_sent(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address, status="void")
    with pytest.raises(ValidationError):
        send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert _outbox_to(stack, address) == []


def test_a_refused_send_is_recorded_failed_and_a_retry_sends_it(stack, tenant_id, address, monkeypatch):
    invoice_id = _invoice(tenant_id, email=address)
    # Given SES refuses the send (a configuration set that does not exist, as a broken wiring would)
    monkeypatch.setenv("SES_CONFIGURATION_SET", "no-such-configuration-set")
    get_settings.cache_clear()
    try:
        with pytest.raises(MailRejected) as raised:
            send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert raised.value.code == "NotFoundException"
    # Then nothing was sent, the message is failed with SES's reason, the invoice not marked sent
    assert _outbox_to(stack, address) == []
    invoice = _reload(tenant_id, invoice_id)
    assert invoice.delivery_status is None
    # When it is sent again with the wiring fixed, it goes, once
    result = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert result.sent_now and len(_outbox_to(stack, address)) == 1
    record = messages.get_message(tenant_id, result.message_id)
    assert [(h["from"], h["to"]) for h in record.history][:4] == [
        (None, "sending"),
        ("sending", "failed"),
        ("failed", "sending"),
        ("sending", "sent"),
    ]
    assert record.last_error is not None and record.last_error["code"] == "NotFoundException"


def test_a_send_under_way_is_not_sent_a_second_time(stack, tenant_id, address):
    # Given another request holds the claim of this message (its SES call is under way)
    invoice_id = _invoice(tenant_id, email=address)
    invoice = messages.invoice_for_mail(tenant_id, invoice_id)
    key = message_key(tenant_id, invoice_id, invoice.version, address)
    state, _ = messages.claim(
        tenant_id,
        key,
        invoice_id=invoice_id,
        version=invoice.version,
        recipient=address,
        sender="x@fieldbill.local",
        subject="s",
        actor="other",
    )
    assert state == "claimed"
    # When the same send comes in meanwhile / Then it is a conflict and nothing is sent
    with pytest.raises(Conflict, match="being emailed"):
        send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert _outbox_to(stack, address) == []


def test_concurrent_sends_of_one_invoice_version_email_it_once(stack, tenant_id, address):
    # Given one invoice / When five requests send it at the same moment
    invoice_id = _invoice(tenant_id, email=address)
    pdf = make_pdf()
    start = threading.Barrier(5)

    def send() -> object:
        start.wait()
        try:
            return send_invoice(tenant_id, invoice_id, pdf, actor="user-1")
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(lambda _: send(), range(5)))
    # Then exactly one sent it; the others found it sent or under way; one message is in the outbox
    sent_now = [o for o in outcomes if isinstance(o, SendResult) and o.sent_now]
    assert len(sent_now) == 1
    assert all(
        isinstance(o, Conflict) or (isinstance(o, SendResult) and not o.sent_now)
        for o in outcomes
        if o is not sent_now[0]
    )
    assert len(_outbox_to(stack, address)) == 1


def test_a_send_whose_sender_died_is_sent_again_after_its_lease(stack, tenant_id, address):
    # Given a claim whose sender died before recording an answer (its lease is over)
    invoice_id = _invoice(tenant_id, email=address)
    invoice = messages.invoice_for_mail(tenant_id, invoice_id)
    key = message_key(tenant_id, invoice_id, invoice.version, address)
    messages.claim(
        tenant_id,
        key,
        invoice_id=invoice_id,
        version=invoice.version,
        recipient=address,
        sender="x@fieldbill.local",
        subject="s",
        actor="crashed",
    )
    record = Entity.get(SentMessage.key(tenant_id, key), META, consistent_read=True)
    record.update(actions=[SentMessage.lease_until.set(int(time.time()) - 1)])
    # When the request is retried / Then it is sent, and the history says why it was sent again
    result = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert result.sent_now and len(_outbox_to(stack, address)) == 1
    reasons = [h["reason"] or "" for h in messages.get_message(tenant_id, key).history]
    assert any("lease expired" in reason for reason in reasons)


# ---------------------------------------------------------------------------- SES events
def test_a_bounce_marks_the_message_and_the_invoice_delivery_bounced(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address)
    sent = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert sent.ses_message_id is not None

    # When SES reports a permanent bounce of that message
    result = _deliver(stack, _ses_event("bounce", sent.ses_message_id))

    # Then the record is processed, the message and the invoice's delivery status are bounced
    assert result == {"batchItemFailures": []}
    record = messages.get_message(tenant_id, sent.message_id)
    assert record.status == "bounced"
    assert record.last_event is not None
    assert (record.last_event["bounce_type"], record.last_event["status"]) == ("Permanent", "5.1.1")
    invoice = _reload(tenant_id, invoice_id)
    assert invoice.delivery_status == "bounced"
    assert invoice.status == "draft"  # the invoice's own status is not delivery's business
    last = invoice.history[-1]
    assert (last.actor, last.to_state) == ("ses", "bounced") and last.from_state in ("sent", "delivered")
    assert "550 5.1.1 user unknown" in (last.reason or "")

    # And the same event again (SNS delivers at least once), or a late delivery, changes nothing
    assert _deliver(stack, _ses_event("bounce", sent.ses_message_id)) == {"batchItemFailures": []}
    assert _deliver(stack, _ses_event("delivery", sent.ses_message_id)) == {"batchItemFailures": []}
    assert messages.get_message(tenant_id, sent.message_id).status == "bounced"
    assert len(_reload(tenant_id, invoice_id).history) == len(invoice.history)


def test_delivery_then_complaint_are_recorded_in_order(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address)
    sent = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert sent.ses_message_id is not None
    _deliver(stack, _ses_event("delivery", sent.ses_message_id))
    assert _reload(tenant_id, invoice_id).delivery_status == "delivered"
    _deliver(stack, _ses_event("complaint", sent.ses_message_id))
    assert _reload(tenant_id, invoice_id).delivery_status == "complained"
    assert messages.get_message(tenant_id, sent.message_id).status == "complained"


def test_an_event_of_an_older_message_does_not_change_the_invoice(stack, tenant_id, address):
    # Given version 1 was sent, then version 2
    invoice_id = _invoice(tenant_id, email=address)
    first = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    _new_version(tenant_id, invoice_id)
    second = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert first.ses_message_id is not None
    # When the first message bounces
    _deliver(stack, _ses_event("bounce", first.ses_message_id))
    # Then that message is bounced, but the invoice follows its latest message (still sent)
    assert messages.get_message(tenant_id, first.message_id).status == "bounced"
    invoice = _reload(tenant_id, invoice_id)
    assert invoice.delivery_message_id == second.message_id
    assert invoice.delivery_status in ("sent", "delivered")


def test_an_event_of_a_message_we_did_not_send_is_acknowledged_and_ignored(stack):
    assert _deliver(stack, _ses_event("bounce", f"not-ours-{uuid.uuid4()}")) == {"batchItemFailures": []}


def test_an_event_of_our_message_not_recorded_yet_is_retried(stack):
    # Given an event whose message carries our tag but whose SES id nobody recorded (yet)
    event = _ses_event("delivery", f"early-{uuid.uuid4()}")
    body = json.loads(event["Records"][0]["body"])
    body["mail"]["tags"][MESSAGE_TAG] = ["0123456789abcdef0123456789abcdef"]
    event["Records"][0]["body"] = json.dumps(body)
    # Then the record fails: SQS brings it back after the visibility timeout
    assert _deliver(stack, event) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }


def test_ses_events_travel_the_template_wiring_to_the_invoice(stack, tenant_id):
    # Given a delivered address and a bouncing one of SES's mailbox simulator
    delivered_id, bounced_id = _invoice(tenant_id, email=None), _invoice(tenant_id, email=None)
    success, bounce = (f"{kind}+{tenant_id}@simulator.amazonses.com" for kind in ("success", "bounce"))
    # When both are sent (nothing is fed by hand: configuration set -> topic -> queue -> function)
    send_invoice(tenant_id, delivered_id, make_pdf(), actor="user-1", recipient=success)
    send_invoice(tenant_id, bounced_id, make_pdf(), actor="user-1", recipient=bounce)
    # Then each invoice's delivery status follows what SES reported
    wait_for(lambda: _reload(tenant_id, delivered_id).delivery_status == "delivered", 90, 0.2, "delivered")
    wait_for(lambda: _reload(tenant_id, bounced_id).delivery_status == "bounced", 90, 0.2, "bounced")
    bounced = _reload(tenant_id, bounced_id)
    assert "550 5.1.1 user unknown" in (bounced.history[-1].reason or "")


def test_a_record_that_is_not_an_ses_event_fails_alone(stack, tenant_id, address):
    invoice_id = _invoice(tenant_id, email=address)
    sent = send_invoice(tenant_id, invoice_id, make_pdf(), actor="user-1")
    assert sent.ses_message_id is not None
    event = _ses_event("delivery", sent.ses_message_id)
    broken = copy.deepcopy(event["Records"][0])
    broken["messageId"] = "broken-1"
    broken["body"] = json.dumps({"hello": "world"})
    event["Records"].append(broken)
    # The bad record is reported for a retry (then the DLQ); the good one is applied
    assert _deliver(stack, event) == {"batchItemFailures": [{"itemIdentifier": "broken-1"}]}
    assert _reload(tenant_id, invoice_id).delivery_status == "delivered"


# ---------------------------------------------------------------------------- the local SES patch
def test_every_message_sesv2_accepts_is_filed_and_unknown_configuration_sets_are_refused(stack):
    ses = boto3.client("sesv2")
    to = f"plain+{uuid.uuid4().hex[:8]}@customer.example.org"
    sent = ses.send_email(
        FromEmailAddress=get_settings().ses_from_address,
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "Plain words"}}}},
        ConfigurationSetName=get_settings().ses_configuration_set,
    )
    ((_, message),) = _outbox_to(stack, to)
    assert message["Subject"] == "Hello"
    assert message.get_content().strip() == "Plain words"
    assert message["Message-ID"] == f"<{sent['MessageId']}@{SES_MESSAGE_ID_DOMAIN}>"
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.send_email(
            FromEmailAddress=get_settings().ses_from_address,
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}}},
            ConfigurationSetName="no-such-set",
        )
    with pytest.raises(ses.exceptions.MessageRejected):
        ses.send_email(
            FromEmailAddress="unverified@elsewhere.example",
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}}},
        )
    assert len(_outbox_to(stack, to)) == 1


def test_ses_events_reach_a_configuration_sets_topic_and_are_journaled_with_the_queue(stack, tmp_path):
    # Given a configuration set whose event destination is a topic with a raw queue subscription
    name = f"mail-{uuid.uuid4().hex[:8]}"
    sns, sqs, ses = boto3.client("sns"), boto3.client("sqs"), boto3.client("ses")
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    boto3.client("sesv2").create_configuration_set(ConfigurationSetName=name)
    ses.create_configuration_set_event_destination(
        ConfigurationSetName=name,
        EventDestination={
            "Name": name,
            "Enabled": True,
            "MatchingEventTypes": ["send", "bounce"],
            "SNSDestination": {"TopicARN": topic},
        },
    )
    journal = StateFile(tmp_path / "aws.sqlite")
    moto_sqs.set_journal(journal)
    try:
        # When a message to the simulator's bounce address goes through it
        sent = boto3.client("sesv2").send_email(
            FromEmailAddress=get_settings().ses_from_address,
            Destination={"ToAddresses": ["bounce+journal@simulator.amazonses.com"]},
            Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}}},
            ConfigurationSetName=name,
            EmailTags=[{"Name": "fieldbill-message", "Value": "abc"}],
        )
    finally:
        moto_sqs.set_journal(None)
    # Then the queue holds SES's Send and Bounce records (only the matching types), raw, tagged
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    records = [json.loads(m["Body"]) for m in got]
    assert sorted(r["eventType"] for r in records) == ["Bounce", "Send"]
    assert {r["mail"]["messageId"] for r in records} == {sent["MessageId"]}
    assert all(r["mail"]["tags"]["fieldbill-message"] == ["abc"] for r in records)
    bounce = next(r for r in records if r["eventType"] == "Bounce")["bounce"]
    assert bounce["bouncedRecipients"][0]["emailAddress"] == "bounce+journal@simulator.amazonses.com"
    # and the deliveries were journaled like SendMessage requests (a restart keeps them)
    assert len(journal.load(f"sqs:{name}")) == 2
    sqs.delete_queue(QueueUrl=url)
