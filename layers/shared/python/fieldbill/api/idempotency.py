"""Idempotency-Key for every POST: the first answer (status and body) is replayed for a repeat.

One global middleware (registered in app.py) runs after request validation, so only valid
requests reach it, and wraps the route in Powertools' `idempotent_function`:

- key: tenant (from the JWT) + method + route template + the Idempotency-Key header, hashed;
- payload validation: the concrete path and the canonical body, which is the body as validated
  (money and datetimes parsed, defaults filled), so `72.5` and `"72.50"` are the same body; the same
  key with another path or body is refused (422 idempotency_key_reused) instead of replayed;
- records live in the single table, in the tenant's own partition
  (pk = T#<tenant>#IDEMPOTENCY, sk = idempotency#<hash>), removed by the table's TTL (`ttl`) after
  24 hours;
- only successful answers are kept: a route that raises (404, 409, 422 ...) leaves no record, so
  a retry runs again; a repeat while the first is still running gets 409 request_in_progress.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from pydantic import BaseModel

from fieldbill.api import context
from fieldbill.domain.errors import ValidationError
from fieldbill.store import idempotency as idempotency_store

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
EXPIRES_AFTER_SECONDS = 24 * 3600

CONFIG = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="payload",
    expires_after_seconds=EXPIRES_AFTER_SECONDS,
    raise_on_no_idempotency_key=True,
)


def _canonical(value: Any) -> Any:
    """The body as compared between a request and its repeat: key order and number spelling do not matter."""
    if isinstance(value, BaseModel):
        # The validated body: money is Decimal whether it was sent as 72.5 or "72.50".
        return _canonical(value.model_dump())
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _body_of(response: Response) -> Any:
    body = response.body
    if isinstance(body, BaseModel):  # a route's response model, not serialised yet
        return body.model_dump(mode="json", by_alias=True)
    if isinstance(body, (bytes, str)):
        try:
            return json.loads(body or "null")
        except ValueError:
            return body
    return body


def _execute(request: dict[str, Any], call: Callable[[], Response]) -> dict[str, Any]:
    response = call()
    return {"status_code": response.status_code, "body": _body_of(response)}


def middleware(app: Any, next_middleware: NextMiddleware) -> Response:
    event = app.current_event
    key = event.headers.get(HEADER.lower())  # HTTP API (payload v2) lower-cases header names
    if event.http_method != "POST" or key is None:
        return next_middleware(app)
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable characters")
    tenant = context.tenant_id(app)
    route = app.context.get("_route")
    template = str(getattr(route, "path", event.path))
    # After request validation: the route's validated body model (Powertools put it in the route args).
    validated = (app.context.get("_route_args") or {}).get("body")
    body = validated if isinstance(validated, BaseModel) else (event.json_body if event.body else None)
    request = {
        "key": [tenant, event.http_method, template, key],
        "payload": {"path": event.path, "body": _canonical(body)},
    }
    first: list[Response] = []

    def call() -> Response:
        first.append(next_middleware(app))
        return first[0]

    if app.lambda_context is not None:
        CONFIG.register_lambda_context(app.lambda_context)
    run = idempotent_function(
        data_keyword_argument="request",
        persistence_store=idempotency_store.persistence(tenant),
        config=CONFIG,
        key_prefix="idempotency",
    )(_execute)
    stored = run(request=request, call=call)
    if first:
        return first[0]
    return Response(
        status_code=int(stored["status_code"]),
        content_type=content_types.APPLICATION_JSON,
        body=stored["body"],
        headers={REPLAYED_HEADER: "true"},
    )
