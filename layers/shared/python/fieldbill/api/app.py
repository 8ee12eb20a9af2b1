"""The HTTP API resolver: the body gate, routers, validation, and the one error table.

Order of a request: the body gate (content type 415, size 413, UTF-8, nesting depth and JSON
syntax 400: `fieldbill.jsonbody`) runs before anything reads the body; then Powertools' request
validation (pydantic models of fieldbill.api.schemas); then the query gate (an unknown query
parameter is 400) and the Idempotency-Key middleware; then the route. Every answer is checked
against its response model (fieldbill.api.responses); every error has the shape of
`responses.ErrorOut`, mapped by the table in fieldbill.api.errors.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from fieldbill import jsonbody
from fieldbill.api import swagger
from fieldbill.api.context import SECURITY, security_schemes
from fieldbill.observability import logger


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _serialize(body: Any) -> str:
    return json.dumps(body, default=_json_default, separators=(",", ":"))


def _deserialize(body: str) -> Any:
    # The gate already checked this text; numbers with a fraction become Decimal, never float.
    return jsonbody.parse(body)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def gate_body(event: dict[str, Any]) -> None:
    """Check the body before any parser sees it: BodyRejected (400/413/415) if it is not JSON we read.

    A valid body is left as text (base64 decoded), so Powertools never decodes it again."""
    raw = event.get("body")
    if not raw:
        return
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "")
    if content_type and not _is_json(content_type):
        raise jsonbody.BodyRejected(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json"
        )
    data: bytes | str = raw
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError):
            raise jsonbody.BodyRejected(400, "malformed_body", "the body is not valid base64") from None
    text = jsonbody.decode(data)
    jsonbody.parse(text)  # depth and syntax now, so the answer names the body, not a field
    event["body"], event["isBase64Encoded"] = text, False


class Resolver(APIGatewayHttpResolver):
    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request = dict(event)
        try:
            gate_body(request)
        except jsonbody.BodyRejected as exc:
            return _rejected(request, exc)
        return super().resolve(request, context)


def _rejected(event: dict[str, Any], exc: jsonbody.BodyRejected) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    logger.info(
        "request body refused", extra={"request_id": request_id, "status": exc.status, "code": exc.code}
    )
    field = "Content-Type" if exc.status == HTTPStatus.UNSUPPORTED_MEDIA_TYPE else "body"
    where = "header" if field == "Content-Type" else "body"
    body = errors.body(
        exc.status, exc.code, exc.message, fields=[{"field": field, "in": where, "message": exc.message}]
    )
    return {
        "statusCode": int(exc.status),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
        "cookies": [],
    }


OPENAPI_TITLE = "fieldbill API"
OPENAPI_VERSION = "1.0.0"
DESCRIPTION = (
    "Billing back end for service businesses: field work to invoices to QuickBooks. Errors are "
    '{"error": {"code", "message", "fields": [{"field", "message"}]}} (ErrorOut) for every 4xx and 5xx; '
    "lists page with limit and cursor; every POST accepts an Idempotency-Key header; long commands "
    "answer 202 with an operation id (GET /operations/{id}). See docs/api.md."
)

app = Resolver(
    enable_validation=True,
    serializer=_serialize,
    json_body_deserializer=_deserialize,
    # An answer that does not match its declared model is our bug: 500 (logged), never the client's 422.
    response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
)


# The Swagger UI: fieldbill.api.swagger serves what `app.enable_swagger` would, without loading
# Powertools' OpenAPI models at import (they are only needed to build the document).
# No return annotation, as Powertools' own: validation would read `Response` as a body model.
@app.get("/docs", include_in_schema=False)
def swagger_ui():  # type: ignore[no-untyped-def]
    return swagger.page(
        app,
        title=OPENAPI_TITLE,
        version=OPENAPI_VERSION,
        description=DESCRIPTION,
        security_schemes=security_schemes(),
        security=SECURITY,
    )


# --- recurring billing and invoice groups (issue 16)
from fieldbill.api import (  # noqa: E402  # noqa: E402
    errors,
    idempotency,
    routes_billing,
    routes_catalog,
    routes_core,
    routes_documents,
    routes_invoice_groups,
    routes_invoices,
    routes_jobs,  # job-shop jobs (issue 14)
    routes_quickbooks,
    routes_recurring,
    routes_services,  # issue 17: completed services and the billing page
)

# Intuit's redirect is not our client: it may add parameters of its own.
_OPEN_QUERY = {"/quickbooks/callback"}


def query_gate(app: Any, next_middleware: NextMiddleware) -> Response:
    """An unknown query parameter is a 400 naming it: a typo must not read as "no data"."""
    sent = app.current_event.query_string_parameters or {}
    route = app.context.get("_route")
    if sent and route is not None and route.path not in _OPEN_QUERY:
        known = {p.alias for p in route.dependant.query_params}
        unknown = sorted(name for name in sent if name not in known)
        if unknown:
            raise errors.QueryRejected(unknown)
    return next_middleware(app)


errors.register(app)
# Both run after request validation, before the route; every POST honours an Idempotency-Key header.
app.use(middlewares=[query_gate, idempotency.middleware])
app.include_router(routes_core.router)
app.include_router(routes_catalog.router)
app.include_router(routes_billing.router)
app.include_router(routes_invoices.router)
app.include_router(routes_documents.router)
app.include_router(routes_quickbooks.router)
# --- recurring billing and invoice groups (issue 16)
app.include_router(routes_recurring.router)
app.include_router(routes_invoice_groups.router)
app.include_router(routes_jobs.router)  # job-shop jobs (issue 14)
# issue 15: tax codes, reconciliation
from fieldbill.api import routes_tax  # noqa: E402

app.include_router(routes_tax.router)
app.include_router(routes_services.router)  # issue 17


def _shared_errors(document: dict[str, Any]) -> None:
    # Powertools adds its own 422 and 500 schemas to every operation; ours answer ErrorOut for both.
    shared = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if int(status) >= 400:
                    response["content"] = shared
                    if status == "500":
                        response["description"] = "Internal error (logged with the request id)"
    text = json.dumps(document["paths"])
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"#/components/schemas/{name}" not in text and name in schemas:
            del schemas[name]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of this API (docs/openapi.json is this, generated)."""
    document = json.loads(
        app.get_openapi_json_schema(
            title=OPENAPI_TITLE,
            version=OPENAPI_VERSION,
            description=DESCRIPTION,
            security_schemes=security_schemes(),
            security=SECURITY,
        )
    )
    _shared_errors(document)
    return document


@app.get("/openapi.json", include_in_schema=False)
def get_openapi_document() -> dict[str, Any]:
    return openapi_document()
