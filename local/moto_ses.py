"""Local SES (moto 5.2.x, pinned): every message it accepts lands in a Maildir outbox.

moto's SES accepts `SendEmail` (v1 and v2, simple and raw content) from a verified identity and
keeps the message in memory. This patch, the only SES patch, adds what the local stack needs:
1. The outbox: each accepted message is filed as a real RFC 822 `.eml` file in a Maildir
   (`mailbox.Maildir`: `new/<key>.eml`, one file per message), as the recipient would receive it:
   with the `Message-ID` SES gives it (`<ses id@email.amazonses.com>`) and a `Return-Path`.
   A person opens the files or `GET /__outbox` on the local gateway (local/gateway.py).
2. Configuration sets are checked as SES checks them: a v2 send naming one that does not exist is
   refused with SES's `NotFoundException` (moto ignores the name), so a wrong template wiring
   fails locally too.
3. Event publishing, which moto lacks: a v2 send through a configuration set whose event
   destination is an SNS topic publishes SES's event records (the documented shapes, with the
   message's tags) to that topic: Send, then Delivery, or what SES's mailbox simulator answers
   for its addresses (bounce@ and suppressionlist@: Bounce; complaint@: Delivery and Complaint;
   labels as in bounce+label@ are kept apart as SES does).
   The topic's subscriptions (the template's) carry them on to the function that records them.
Product code calls plain boto3 SES and knows nothing of this. tests/integration/test_mail.py pins
the behaviour, so a moto upgrade that breaks the patch fails loudly.
"""

from __future__ import annotations

import json
import mailbox
import threading
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_installed = False
_outbox: Path | None = None
SES_MESSAGE_ID_DOMAIN = "email.amazonses.com"
SIMULATOR = "simulator.amazonses.com"
ACCOUNT, REGION = "123456789012", "us-east-1"


def set_outbox(path: Path | None) -> None:
    """File every message SES accepts from now on in the Maildir at `path` (None: keep none)."""
    global _outbox
    with _LOCK:
        _outbox = path
        if path is not None:
            # Maildir(create=True) makes its folders only when `path` itself is new.
            for folder in ("tmp", "new", "cur"):
                (path / folder).mkdir(parents=True, exist_ok=True)


def outbox() -> Path | None:
    return _outbox


def _file(ses_message_id: str, source: str, raw: bytes) -> None:
    with _LOCK:
        if _outbox is None:
            return
        message = BytesParser(policy=policy.SMTP).parsebytes(raw)
        # What SES does to a message on its way: its own Message-ID, the envelope sender.
        del message["Message-ID"]
        message["Message-ID"] = f"<{ses_message_id}@{SES_MESSAGE_ID_DOMAIN}>"
        del message["Return-Path"]
        message["Return-Path"] = f"<{source}>"
        key = mailbox.Maildir(_outbox, create=True).add(message.as_bytes())
        # A Maildir takes any unique name in new/; `.eml` lets a person open it with a mail client.
        filed = _outbox / "new" / key
        filed.rename(filed.with_name(f"{key}.eml"))


def _simple(source: str, subject: str, body: str, destinations: dict[str, list[str]]) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = source
    for header, key in (("To", "ToAddresses"), ("Cc", "CcAddresses")):
        if destinations.get(key):
            message[header] = ", ".join(destinations[key])
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message.set_content(body)
    return message.as_bytes()


def _outcomes(recipient: str) -> list[str]:
    """What SES's mailbox simulator does for an address; any other address is delivered."""
    local, _, domain = recipient.lower().partition("@")
    local = local.split("+", 1)[0]  # the simulator takes labels: bounce+label@...
    if domain == SIMULATOR and local in ("bounce", "suppressionlist"):
        return ["Send", "Bounce"]
    if domain == SIMULATOR and local == "complaint":
        return ["Send", "Delivery", "Complaint"]
    return ["Send", "Delivery"]


def _event(kind: str, mail: dict[str, Any], recipient: str, at: str) -> dict[str, Any]:
    """One event record as SES publishes it to SNS (the developer guide's examples)."""
    record: dict[str, Any] = {"eventType": kind, "mail": mail}
    if kind == "Send":
        record["send"] = {}
    elif kind == "Delivery":
        record["delivery"] = {
            "timestamp": at,
            "processingTimeMillis": 0,
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received (local outbox)",
            "reportingMTA": "local-outbox",
        }
    elif kind == "Bounce":
        record["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": at,
            "feedbackId": f"local-{mail['messageId']}",
            "reportingMTA": "dns; local-outbox",
        }
    elif kind == "Complaint":
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": at,
            "feedbackId": f"local-{mail['messageId']}",
            "complaintFeedbackType": "abuse",
        }
    return record


def _publish_events(core: Any, params: dict[str, Any], ses_message_id: str) -> None:
    name = params.get("ConfigurationSetName")
    destination = core.config_set_event_destination.get(name) if name else None
    topic = ((destination or {}).get("SNSDestination") or {}).get("TopicARN")
    if not topic or str((destination or {}).get("Enabled", True)).lower() == "false":
        return
    matching = {str(t).lower() for t in destination.get("MatchingEventTypes") or []}
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    source = str(params.get("FromEmailAddress") or "")
    recipients = list((params.get("Destination") or {}).get("ToAddresses") or [])
    tags: dict[str, list[str]] = {"ses:configuration-set": [name], "ses:from-domain": [source.split("@")[-1]]}
    for tag in params.get("EmailTags") or []:
        tags[tag["Name"]] = [tag["Value"]]
    mail = {
        "timestamp": at,
        "source": source,
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{source}",
        "sendingAccountId": ACCOUNT,
        "messageId": ses_message_id,
        "destination": recipients,
        "headersTruncated": False,
        "tags": tags,
    }
    # Imported here, as above: only a started stack loads moto's SNS and SQS.
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    from local import moto_sqs

    sns = sns_backends[ACCOUNT][REGION]
    queues = list(sqs_backends[ACCOUNT][REGION].queues.values())
    for recipient in recipients[:1]:
        for kind in _outcomes(recipient):
            # SES's event type names in a configuration set: send, delivery, bounce, complaint.
            if kind.lower() in matching:
                # SNS hands the record straight to moto's SQS: locked and journaled as a
                # SendMessage request would be.
                with moto_sqs.changing(queues):
                    sns.publish(json.dumps(_event(kind, mail, recipient, at)), arn=topic)


def install() -> None:
    global _installed
    if _installed:
        return
    # Imported here, as the other patches do: only a started stack pays for moto's SES modules.
    from moto.ses.exceptions import NotFoundException
    from moto.ses.models import SESBackend
    from moto.sesv2.responses import SESV2Response

    original_raw = SESBackend.send_raw_email
    original_simple = SESBackend.send_email
    original_v2_send = SESV2Response.send_email

    def send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
        sent = original_raw(self, source, destinations, raw_data)
        # moto decoded the raw bytes as UTF-8: encoding them again gives back the same bytes.
        _file(sent.id, source or sent.source, raw_data.encode("utf-8"))
        return sent

    def send_email(
        self: Any, source: str, subject: str, body: str, destinations: dict[str, list[str]]
    ) -> Any:
        sent = original_simple(self, source, subject, body, destinations)
        _file(sent.id, source, _simple(source, subject, body, destinations))
        return sent

    def v2_send_email(self: Any) -> str:
        params = json.loads(self.body or "{}")
        core = self.sesv2_backend.core_backend
        name = params.get("ConfigurationSetName")
        if name and name not in core.config_sets:
            raise NotFoundException(f"Configuration set <{name}> does not exist.")
        answer = str(original_v2_send(self))
        _publish_events(core, params, json.loads(answer)["MessageId"])
        return answer

    SESBackend.send_raw_email = send_raw_email  # type: ignore[method-assign]
    SESBackend.send_email = send_email  # type: ignore[method-assign]
    SESV2Response.send_email = v2_send_email  # type: ignore[method-assign]
    _installed = True
