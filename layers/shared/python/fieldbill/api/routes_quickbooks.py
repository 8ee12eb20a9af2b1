"""Connecting a QuickBooks Online company (OAuth 2.0) and its connection status."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.store import common
from fieldbill.store.models import QboConnection

router = APIGatewayHttpRouter()


@router.get("/quickbooks/connect")
def connect() -> dict[str, Any]:
    from fieldbill.quickbooks import tokens

    return {"authorization_url": tokens.authorization_url(context.tenant_id(router))}


@router.get("/quickbooks/callback")
def callback(code: str, state: str, realmId: str) -> Response[dict[str, Any]]:  # noqa: N803 - Intuit's parameter name
    """Public route (no JWT): Intuit redirects the browser here; the state names the tenant."""
    from fieldbill.quickbooks import tokens

    tenant = tokens.complete_connection(state, code, realmId)
    body = {"connected": True, "tenant_id": tenant, "realm_id": realmId}
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@router.get("/quickbooks/connection")
def connection_status() -> dict[str, Any]:
    tenant = context.tenant_id(router)
    record = common.find(QboConnection, QboConnection.key(tenant))
    if record is None:
        return {"status": "disconnected"}
    return views.view(record)
