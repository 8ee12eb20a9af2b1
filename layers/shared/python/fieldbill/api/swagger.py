"""GET /docs: the Swagger UI page of this API, as Powertools' `enable_swagger` serves it.

Powertools' `enable_swagger` imports its OpenAPI models (about 40 pydantic models, rebuilt at
import: ~130 ms of every cold start; Powertools issue 4372) when the route is registered. Request
and response validation do not need them, only the document does, so this page builds them on its
first request. Same page, same `?format=json` and `?format=oauth2-redirect` answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response

_UI = "openapi/swagger_ui"


def _base_path(app: Any) -> str:
    # As Powertools' HTTP resolver: the stage is in the path unless it is $default or a custom domain.
    request = app.current_event.request_context
    stage = request.stage
    if stage and stage != "$default" and request.http.path.startswith(f"/{stage}"):
        return f"/{stage}"
    return ""


def page(app: Any, **document: Any) -> Response:
    """The Swagger UI (or its spec, or the OAuth2 redirect stanza) for the document's arguments."""
    # Deferred to this page (module docstring): the OpenAPI models and the UI assets.
    import aws_lambda_powertools.event_handler as event_handler
    from aws_lambda_powertools.event_handler.openapi.compat import model_json
    from aws_lambda_powertools.event_handler.openapi.models import Server
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import (
        generate_oauth2_redirect_html,
        generate_swagger_html,
    )

    query = app.current_event.query_string_parameters or {}
    if query.get("format") == "oauth2-redirect":
        return Response(status_code=200, content_type="text/html", body=generate_oauth2_redirect_html())
    spec = app.get_openapi_schema(servers=[Server(url=(_base_path(app) or "/"))], **document)
    escaped = model_json(spec, by_alias=True, exclude_none=True, indent=2).replace("</", "<\\/")
    if query.get("format") == "json":
        return Response(status_code=200, content_type="application/json", body=escaped)
    assets = Path(event_handler.__file__).parent / _UI
    js = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    body = generate_swagger_html(escaped, js, css, None, None, False)  # type: ignore[arg-type]
    return Response(status_code=200, content_type="text/html", body=body)
