"""The mail adapter's errors answer in the one error shape, with SES's reason."""

from __future__ import annotations

import json

from fieldbill.api import errors
from fieldbill.mail.errors import MailRejected, MailUnavailable


def _answer(exc: Exception) -> tuple[int, dict]:
    handler = next(handle for kind, handle in errors.TABLE if isinstance(exc, kind))
    response = handler(exc)
    return response.status_code, json.loads(response.body)


def test_a_refused_email_is_422_with_ses_reason():
    status, body = _answer(MailRejected("MessageRejected", "Email address is not verified."))
    assert status == 422
    assert body["error"]["code"] == "email_rejected"
    assert body["error"]["reason"] == "MessageRejected"
    assert "not verified" in body["error"]["message"]


def test_email_that_cannot_go_now_is_503():
    status, body = _answer(MailUnavailable("TooManyRequestsException", "slow down"))
    assert (status, body["error"]["code"]) == (503, "email_unavailable")
