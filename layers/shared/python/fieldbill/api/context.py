"""Who is calling: tenant and user come from the verified JWT claims, never from the request."""

from __future__ import annotations

from typing import Any

from fieldbill.api.errors import Unauthorized
from fieldbill.settings import get_settings

# Every route needs the bearer JWT (API Gateway's JWT authorizer) unless it says `security=PUBLIC`.
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
PUBLIC: list[dict[str, list[str]]] = [{}]


def security_schemes() -> dict[str, Any]:
    """The bearer JWT scheme, for the OpenAPI document (built with it, not at import)."""
    # lazy: Powertools' OpenAPI models are ~130 ms of cold start that only the document needs
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"bearerAuth": HTTPBearer(bearerFormat="JWT")}


def claims(app: Any) -> dict[str, Any]:
    authorizer = app.current_event.request_context.authorizer
    jwt = getattr(authorizer, "jwt_claim", None) if authorizer else None
    return dict(jwt or {})


def tenant_id(app: Any) -> str:
    tenant = claims(app).get(get_settings().tenant_claim)
    if not tenant:
        raise Unauthorized("the token carries no tenant")
    return str(tenant)


def actor(app: Any) -> str:
    return f"user:{claims(app).get('sub', 'unknown')}"
