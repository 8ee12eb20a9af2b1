"""What SES reports about a sent invoice email, recorded on the message and its invoice.

SES event publishing (the configuration set's event destination) sends each event to an SNS
topic, whose subscription delivers it raw to MailEventsQueue: each SQS record's body is SES's
own event record (eventType Send, Delivery, Bounce, Complaint, Reject, DeliveryDelay ...).
A record whose body is not such an event fails and, after the queue's retries, waits in the DLQ;
so does an event of a message we tagged as ours but never recorded (a send that died between
SES's answer and its write: that invoice was sent again as a new message after the lease).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, Json

from fieldbill.domain.delivery import MESSAGE_TAG, SES_EVENT_STATUS
from fieldbill.observability import logger
from fieldbill.store import messages


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SesMail(_Open):
    message_id: str = Field(alias="messageId", min_length=1)
    timestamp: str | None = None
    destination: list[str] = Field(default_factory=list)
    tags: dict[str, list[str]] = Field(default_factory=dict)


class SesEvent(_Open):
    """One SES event record (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html).
    Identity notifications name the type `notificationType`; event publishing, `eventType`."""

    event_type: str = Field(validation_alias=AliasChoices("eventType", "notificationType"))
    mail: SesMail
    bounce: dict[str, Any] | None = None
    complaint: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None
    reject: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None


class NotRecordedYet(RuntimeError):
    """An event of a message we sent whose SES id is not recorded yet (the sender's write is
    still under way): the record fails and comes back after the queue's visibility timeout."""


class SesEventRecord(SqsRecordModel):
    body: Json[SesEvent]  # type: ignore[assignment]


def detail(event: SesEvent) -> tuple[str, dict[str, Any]]:
    """When it happened and what to keep of it (a bounce's type and the recipient's diagnostic)."""
    if event.bounce is not None:
        first = (event.bounce.get("bouncedRecipients") or [{}])[0]
        return str(event.bounce.get("timestamp") or ""), {
            "bounce_type": event.bounce.get("bounceType"),
            "bounce_subtype": event.bounce.get("bounceSubType"),
            "recipient": first.get("emailAddress"),
            "status": first.get("status"),
            "diagnostic": first.get("diagnosticCode"),
        }
    if event.complaint is not None:
        return str(event.complaint.get("timestamp") or ""), {
            "feedback_type": event.complaint.get("complaintFeedbackType"),
        }
    if event.delivery is not None:
        return str(event.delivery.get("timestamp") or ""), {
            "smtp_response": event.delivery.get("smtpResponse"),
        }
    if event.reject is not None:
        return event.mail.timestamp or "", {"reason": event.reject.get("reason")}
    if event.failure is not None:
        return event.mail.timestamp or "", {"error": event.failure.get("errorMessage")}
    return event.mail.timestamp or "", {}


def record_event(event: SesEvent) -> str:
    """Apply one SES event; answers what became of it (applied, duplicate, out_of_order,
    unknown_message, ignored). Raises Conflict when a concurrent write won: the record is retried."""
    target = SES_EVENT_STATUS.get(event.event_type)
    log = {"ses_message_id": event.mail.message_id, "event_type": event.event_type}
    if target is None:
        logger.info("SES event changes no delivery status", extra=log)
        return "ignored"
    at, kept = detail(event)
    outcome = messages.apply_event(
        event.mail.message_id, target, event_type=event.event_type, at=at, detail=kept
    )
    if outcome == "unknown_message" and event.mail.tags.get(MESSAGE_TAG):
        raise NotRecordedYet(f"SES message {event.mail.message_id} is not recorded yet")
    # A message this product did not send (no tag of ours) is no error: acknowledged, dropped.
    logger.info("SES event recorded", extra={**log, "outcome": outcome})
    return outcome


def _handle(record: SesEventRecord) -> str:
    return record_event(record.body)


def consume(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    processor = BatchProcessor(
        event_type=EventType.SQS, model=SesEventRecord, raise_on_entire_batch_failure=False
    )
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=_handle, processor=processor, context=context
    )
    return response
