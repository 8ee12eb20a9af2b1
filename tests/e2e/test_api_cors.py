"""CORS as template.yaml's HttpApi CorsConfiguration says: the local gateway answers a preflight
itself (no token needed) and every answer to an allowed origin carries the CORS headers."""

from __future__ import annotations

from typing import Any

import requests

from local.gateway import Cors
from local.template import Template
from tests.conftest import Client

ALLOWED = "http://localhost:5173"  # the template's default CorsAllowedOrigins


def _preflight(stack: Any, origin: str) -> requests.Response:
    return requests.options(
        stack.api_url + "/contacts",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
        timeout=30,
    )


def test_a_preflight_needs_no_token_and_gets_the_cors_headers(stack: Any) -> None:
    response = _preflight(stack, ALLOWED)
    assert response.status_code == 204, response.text
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"].split(",")
    allowed_headers = {h.lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed_headers


def test_an_origin_not_listed_gets_no_cors_headers(stack: Any) -> None:
    response = _preflight(stack, "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_answers_to_an_allowed_origin_carry_the_cors_headers(client: Client, stack: Any) -> None:
    ok = client.get("/contacts", headers={"Origin": ALLOWED})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    denied = requests.get(stack.api_url + "/contacts", headers={"Origin": ALLOWED}, timeout=30)
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_the_template_allows_every_origin_only_when_asked() -> None:
    template = Template()
    assert template.parameters["CorsAllowedOrigins"] != "*"
    cors = Cors.from_template(template)
    assert cors is not None and cors.allowed("https://anyone.example") is None
    everyone = Cors.from_template(Template(parameters={"CorsAllowedOrigins": "*"}))
    assert everyone is not None and everyone.allowed("https://anyone.example") == "*"
