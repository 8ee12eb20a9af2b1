"""What can go wrong sending mail, in the adapter's own terms (SES error codes stay in here)."""

from __future__ import annotations


class MailError(Exception):
    """Base of the mail adapter's errors."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class MailRejected(MailError):
    """SES refused this message (unverified sender, bad address, unknown configuration set,
    sending paused): sending it again unchanged fails again."""


class MailUnavailable(MailError):
    """SES throttled the call or did not answer, or sending is not configured: try again later."""
