"""The HTTP API resolver: routers, validation, and the one error table."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _serialize(body: Any) -> str:
    return json.dumps(body, default=_json_default, separators=(",", ":"))


def _deserialize(body: str) -> Any:
    # Numbers in request bodies become Decimal: money never passes through float.
    return json.loads(body, parse_float=Decimal)


app = APIGatewayHttpResolver(
    enable_validation=True,
    serializer=_serialize,
    json_body_deserializer=_deserialize,
    cors=CORSConfig(allow_origin="*", allow_headers=["Idempotency-Key"]),
)
app.enable_swagger(
    path="/docs",
    title="fieldbill API",
    version="1.0.0",
    description="Billing back end for service businesses: field work to invoices to QuickBooks. "
    "Every POST accepts an Idempotency-Key header (see docs/api.md).",
)

from fieldbill.api import (  # noqa: E402
    errors,
    idempotency,
    routes_billing,
    routes_catalog,
    routes_core,
    routes_quickbooks,
)

errors.register(app)
# Every POST honours an Idempotency-Key header (runs after request validation, before the route).
app.use(middlewares=[idempotency.middleware])
app.include_router(routes_core.router)
app.include_router(routes_catalog.router)
app.include_router(routes_billing.router)
app.include_router(routes_quickbooks.router)

OPENAPI_TITLE = "fieldbill API"
OPENAPI_VERSION = "1.0.0"
DESCRIPTION = (
    "Billing back end for service businesses: field work to invoices to QuickBooks. Errors are "
    '{"error": {"code", "message", "fields": [{"field", "message"}]}}; lists page with limit and cursor; '
    "every POST accepts an Idempotency-Key header; long commands answer 202 with an operation id "
    "(GET /operations/{id}). See docs/api.md."
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of this API (docs/openapi.json is this, generated)."""
    return json.loads(
        app.get_openapi_json_schema(title=OPENAPI_TITLE, version=OPENAPI_VERSION, description=DESCRIPTION)
    )


@app.get("/openapi.json", include_in_schema=False)
def get_openapi_document() -> dict[str, Any]:
    return openapi_document()
