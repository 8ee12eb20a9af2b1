"""Domain errors. The HTTP layer maps each class (never the message text) to a status code.

| error             | meaning                                               | HTTP |
|-------------------|-------------------------------------------------------|------|
| NotFound          | a referenced record does not exist                    | 404  |
| Conflict          | the record's state forbids the request (already billed) | 409  |
| InvalidTransition | a state change the state machine does not allow       | 409  |
| ValidationError   | an input or record breaks a domain rule               | 422  |
| Unavailable       | done here, but its next step could not be queued: retry | 503 |
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class NotFound(DomainError):
    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(f"{entity} {entity_id!r} not found")
        self.entity = entity
        self.entity_id = entity_id


class Conflict(DomainError):
    """The current state of a record forbids the request (e.g. an entry is already billed)."""


class InvalidTransition(Conflict):
    """A state change the state machine does not allow; a Conflict so a generic 409 mapping works."""

    def __init__(self, machine: str, from_status: str, to_status: str, detail: str = "") -> None:
        message = f"{machine}: {from_status} -> {to_status} is not allowed"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.machine = machine
        self.from_status = from_status
        self.to_status = to_status


class ValidationError(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Unavailable(DomainError):
    """A change was written but its follow-up (a queued message) was not: the same request again
    is safe and completes it."""


class OperationCancelled(Exception):
    """A person cancelled the operation a worker is running (wt-door): the worker stops where it
    is. Not a DomainError on purpose: the per-record `except DomainError` of a bulk command must
    not take it for one record's refusal and go on."""

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id!r} was cancelled")
        self.operation_id = operation_id


# --- invoice filters (wt-life, issue 13 item 6): a filter of the list, given as query parameters
# or as a bulk command's `filter` object, that is bad or unknown: a 400 naming it where it was given.
class BadFilter(ValidationError):
    def __init__(self, field: str, message: str, where: str = "query") -> None:
        super().__init__(field, message)
        self.where = where
