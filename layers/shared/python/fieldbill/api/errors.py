"""The one table that maps domain errors to HTTP (never by matching message text), and the one shape
every 4xx and 5xx has: {"error": {"code", "message", "fields": [{"field", "message", ...}]}}."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from fieldbill.api.responses import ErrorOut
from fieldbill.domain.errors import (
    BadFilter,  # wt-life: invoice list / bulk filters
    Conflict,
    InvalidTransition,
    NotFound,
    Unavailable,
    ValidationError,
)
from fieldbill.jsonbody import BodyRejected
from fieldbill.mail.errors import MailRejected, MailUnavailable
from fieldbill.observability import logger
from fieldbill.quickbooks.errors import AuthExpired, AuthorizationFailed, NeedsReconnect, QboError, Throttled


class Unauthorized(Exception):
    """The request carries no tenant claim: the authorizer should have stopped it."""


class QueryRejected(Exception):
    """A query parameter the route does not take (a typo would otherwise read as "no data")."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"unknown query parameter(s): {', '.join(names)}")
        self.names = names


def body(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    # `fields` lists the inputs at fault (empty when none is).
    return {"error": {"code": code, "message": message, "fields": extra.pop("fields", []), **extra}}


def problem(status: HTTPStatus | int, code: str, message: str, **extra: Any) -> Response:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body(int(status), code, message, **extra)),
    )


def request_id(app: Any) -> str | None:
    try:
        return str(app.current_event.request_context.request_id)
    except (AttributeError, KeyError):
        return None


# ---------------------------------------------------------------------------- the table
def _not_found(exc: NotFound) -> Response:
    return problem(HTTPStatus.NOT_FOUND, "not_found", str(exc), entity=exc.entity, id=exc.entity_id)


def _transition(exc: InvalidTransition) -> Response:
    return problem(
        HTTPStatus.CONFLICT,
        "invalid_transition",
        str(exc),
        machine=exc.machine,
        current=exc.from_status,
        requested=exc.to_status,
    )


def _invalid(exc: ValidationError) -> Response:
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_error",
        exc.message,
        fields=[{"field": exc.field, "message": exc.message}],
    )


def _fields(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ())]
        where = loc[0] if loc else "body"
        name = ".".join(loc[1:]) or where
        fields.append(
            {"field": name, "in": where, "message": error.get("msg", ""), "type": error.get("type")}
        )
    return fields


def _request_invalid(exc: RequestValidationError) -> Response:
    fields = _fields(exc)
    if any(f["type"] == "json_invalid" for f in fields):
        return problem(HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON", fields=fields)
    if fields and all(f["in"] == "query" or f["field"].startswith("filter.") for f in fields):
        # (wt-life) a bulk command's `filter` holds the invoice list's query filters: bad ones are
        # the same bad request as in the query.
        # A malformed query parameter is a bad request line, not a bad document.
        return problem(
            HTTPStatus.BAD_REQUEST, "validation_error", "a query parameter is not valid", fields=fields
        )
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", "the request is not valid", fields=fields
    )


def _unknown_query(exc: QueryRejected) -> Response:
    fields = [{"field": n, "in": "query", "message": "this route takes no such parameter"} for n in exc.names]
    return problem(HTTPStatus.BAD_REQUEST, "validation_error", str(exc), fields=fields)


def _bad_filter(exc: BadFilter) -> Response:
    # A filter of the invoice list, in the query or in a bulk command's `filter`: a bad request
    # (as a bad query parameter), naming it where it was given (wt-life).
    fields = [{"field": exc.field, "in": exc.where, "message": exc.message}]
    return problem(HTTPStatus.BAD_REQUEST, "validation_error", f"{exc.field}: {exc.message}", fields=fields)


def _body_rejected(exc: BodyRejected) -> Response:
    fields = [{"field": "body", "in": "body", "message": exc.message}]
    return problem(exc.status, exc.code, exc.message, fields=fields)


def _unsupported(exc: RequestUnsupportedContentType) -> Response:
    message = "send the body as application/json"
    fields = [{"field": "Content-Type", "in": "header", "message": message}]
    return problem(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message, fields=fields)


def _key_reused(exc: IdempotencyValidationError) -> Response:
    message = "this Idempotency-Key was used with another request (path or body); use a new key"
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        message,
        fields=[{"field": "Idempotency-Key", "in": "header", "message": message}],
    )


def _key_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response:
    return problem(
        HTTPStatus.CONFLICT,
        "request_in_progress",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )


def _reconnect(exc: QboError) -> Response:
    return problem(
        HTTPStatus.CONFLICT, "needs_reconnect", "the QuickBooks connection needs to be reconnected"
    )


def _throttled(exc: Throttled) -> Response:
    return problem(
        HTTPStatus.TOO_MANY_REQUESTS,
        "quickbooks_unavailable",
        "QuickBooks rate limit reached; retry in a minute",
    )


def _qbo_down(exc: QboError) -> Response:
    return problem(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "quickbooks_unavailable",
        f"QuickBooks did not answer ({type(exc).__name__})",
    )


def _mail_rejected(exc: MailRejected) -> Response:
    # SES's own reason (unverified sender, a sandbox recipient, an address it refuses) helps the user.
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "email_rejected",
        f"the email was refused: {exc.message}",
        reason=exc.code,
    )


def _mail_unavailable(exc: MailUnavailable) -> Response:
    return problem(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "email_unavailable",
        f"email cannot be sent right now ({exc.code}); retry later",
    )


def _unauthorized(exc: Unauthorized) -> Response:
    return problem(HTTPStatus.UNAUTHORIZED, "unauthorized", str(exc))


def _no_route(exc: NotFoundError) -> Response:
    return problem(HTTPStatus.NOT_FOUND, "not_found", "no such route", entity="route")


def _oauth_state(exc: Exception) -> Response:
    message = "the QuickBooks connect link is invalid or expired: start the connection again"
    fields = [{"field": "state", "in": "query", "message": str(exc)}]
    return problem(HTTPStatus.BAD_REQUEST, "invalid_oauth_state", message, fields=fields)


# Errors of modules the API loads only when a route needs them (QuickBooks OAuth pulls in the Intuit
# client): matched by class once the module is loaded, so the table costs no import at cold start.
_LAZY: list[tuple[str, str, Callable[[Exception], Response]]] = [
    ("fieldbill.quickbooks.tokens", "OAuthStateInvalid", _oauth_state),
]

# Most specific first where classes are related: Powertools picks a handler by the exception's MRO.
TABLE: list[tuple[type[Exception], Callable[[Any], Response]]] = [
    (NotFound, _not_found),
    (InvalidTransition, _transition),
    (Conflict, lambda exc: problem(HTTPStatus.CONFLICT, "conflict", str(exc))),
    (BadFilter, _bad_filter),  # wt-life: before its base, ValidationError
    (ValidationError, _invalid),
    (Unavailable, lambda exc: problem(HTTPStatus.SERVICE_UNAVAILABLE, "not_queued", str(exc))),
    (RequestValidationError, _request_invalid),
    (RequestUnsupportedContentType, _unsupported),
    (QueryRejected, _unknown_query),
    (BodyRejected, _body_rejected),
    (IdempotencyValidationError, _key_reused),
    (IdempotencyAlreadyInProgressError, _key_in_progress),
    (NeedsReconnect, _reconnect),
    (AuthorizationFailed, _reconnect),
    (AuthExpired, _reconnect),
    (Throttled, _throttled),
    (QboError, _qbo_down),
    (MailRejected, _mail_rejected),
    (MailUnavailable, _mail_unavailable),
    (Unauthorized, _unauthorized),
    (NotFoundError, _no_route),
]


def register(app: Any) -> None:
    for exc_type, handle in TABLE:
        app.exception_handler(exc_type)(_logged(app, handle))

    @app.exception_handler(ResponseValidationError)
    def _bad_answer(exc: ResponseValidationError) -> Response:
        # Our answer does not match its declared model: a bug of ours, never the client's.
        logger.error(
            "response does not match its model",
            extra={"request_id": request_id(app), "errors": _fields(exc)[:10]},  # type: ignore[arg-type]
        )
        return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        for module, name, handle in _LAZY:
            loaded = sys.modules.get(module)
            if loaded is not None and isinstance(exc, getattr(loaded, name)):
                return _logged(app, handle)(exc)
        logger.exception("unexpected error", extra={"request_id": request_id(app)})
        return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


def _logged(app: Any, handle: Callable[[Any], Response]) -> Callable[[Any], Response]:
    def answer(exc: Any) -> Response:
        response = handle(exc)
        # Client errors are routine: one line with the request id and the code is enough to find them.
        logger.info(
            "request refused",
            extra={
                "request_id": request_id(app),
                "status": response.status_code,
                "error": type(exc).__name__,
            },
        )
        return response

    return answer


@contextmanager
def names_missing(entity: str, record_id: str) -> Iterator[None]:
    """A NotFound of `entity` names `record_id`, the id the client sent (the store names the key's
    last part, which for entries is the task and for assignments a constant)."""
    try:
        yield
    except NotFound as exc:
        if exc.entity == entity and exc.entity_id != record_id:
            raise NotFound(entity, record_id) from None
        raise


# ---------------------------------------------------------------------------- the document
def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorOut}}}


ERRORS: dict[int, str] = {
    400: "Malformed body or query parameter",
    401: "No or bad token",
    404: "Not found in your tenant",
    409: "The record's state forbids it",
    413: "Body too large",
    415: "Body is not application/json",
    422: "Validation error",
    429: "QuickBooks rate limit",
    500: "Internal error",
    503: "QuickBooks unavailable",
}


def responses(status: int = 200, description: str = "Success") -> dict[int, Any]:
    """OpenAPI responses of a route: its success (the return annotation's model) and the shared error."""
    declared: dict[int, Any] = {status: {"description": description}}
    declared.update({code: _error_response(text) for code, text in ERRORS.items()})
    return declared
