"""One table maps domain errors to HTTP (never by matching message text)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound, ValidationError


class Unauthorized(Exception):
    """The request carries no tenant claim: the authorizer should have stopped it."""


def problem(status: HTTPStatus, code: str, message: str, **extra: Any) -> Response:
    # Every error has the same shape; `fields` lists the inputs at fault (empty when none is).
    body = {"error": {"code": code, "message": message, "fields": extra.pop("fields", []), **extra}}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def register(app: Any) -> None:
    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return problem(HTTPStatus.NOT_FOUND, "not_found", str(exc), entity=exc.entity, id=exc.entity_id)

    @app.exception_handler(InvalidTransition)
    def _transition(exc: InvalidTransition) -> Response:
        return problem(
            HTTPStatus.CONFLICT,
            "invalid_transition",
            str(exc),
            machine=exc.machine,
            current=exc.from_status,
            requested=exc.to_status,
        )

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response:
        return problem(HTTPStatus.CONFLICT, "conflict", str(exc))

    @app.exception_handler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        return problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "validation_error",
            exc.message,
            fields=[{"field": exc.field, "message": exc.message}],
        )

    @app.exception_handler(RequestValidationError)
    def _request_invalid(exc: RequestValidationError) -> Response:
        fields = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            where = loc[0] if loc else "body"
            name = ".".join(loc[1:]) or where
            fields.append(
                {"field": name, "in": where, "message": error.get("msg", ""), "type": error.get("type")}
            )
        malformed = any(f["type"] == "json_invalid" for f in fields)
        if malformed:
            return problem(
                HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON", fields=fields
            )
        return problem(
            HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", "the request is not valid", fields=fields
        )

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(exc: IdempotencyValidationError) -> Response:
        message = "this Idempotency-Key was used with another request (path or body); use a new key"
        return problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
            fields=[{"field": "Idempotency-Key", "in": "header", "message": message}],
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _key_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response:
        return problem(
            HTTPStatus.CONFLICT,
            "request_in_progress",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )

    @app.exception_handler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Response:
        return problem(HTTPStatus.UNAUTHORIZED, "unauthorized", str(exc))
