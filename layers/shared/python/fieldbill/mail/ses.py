"""Send a MIME message through Amazon SES v2 (`SendEmail`, `Content.Raw`), with a configuration set.

The configuration set's event destination publishes the message's events (send, delivery,
bounce, complaint, reject) to SNS; functions/mail_events records them (docs/email.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import boto3

from fieldbill.mail.errors import MailRejected, MailUnavailable
from fieldbill.settings import get_settings

# SES's answers that say "this message, as it is, will not be sent"; anything else is worth a retry.
_REJECTED = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "NotFoundException",
    "BadRequestException",
    "InvalidParameterValue",
}
# 4xx answers that mean "not now": throttled or over the sending quota.
_LATER = {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}


@lru_cache(maxsize=1)
def _client() -> Any:
    # One client per container: building it costs ~50 ms.
    return boto3.client("sesv2")


def send(message: EmailMessage, tags: Mapping[str, str] | None = None) -> str:
    """Send `message` as it is (its From and To) and answer SES's message id."""
    settings = get_settings()
    if not settings.ses_from_address:
        raise MailUnavailable("NotConfigured", "no sender identity: set the SesFromAddress parameter")
    request: dict[str, Any] = {
        "FromEmailAddress": settings.ses_from_address,
        "Destination": {"ToAddresses": [str(message["To"])]},
        "Content": {"Raw": {"Data": message.as_bytes()}},
        "EmailTags": [{"Name": name, "Value": value} for name, value in (tags or {}).items()],
    }
    if settings.ses_configuration_set:
        request["ConfigurationSetName"] = settings.ses_configuration_set
    client = _client()
    try:
        answer = client.send_email(**request)
    except client.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code, text = str(error.get("Code", "")), str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _REJECTED or (400 <= status < 500 and code not in _LATER):
            raise MailRejected(code or "Rejected", text) from None
        raise MailUnavailable(code or "Unavailable", text) from None
    return str(answer["MessageId"])


def reset_client() -> None:
    """A new region or endpoint (tests, the local stack) needs a new client."""
    _client.cache_clear()
