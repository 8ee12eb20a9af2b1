"""docs/openapi.json is generated from the code and never goes stale; the API serves the same document.

Regenerate with: python -m local openapi > docs/openapi.json
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ROOT, Client

DOC = ROOT / "docs" / "openapi.json"


def generated() -> dict[str, Any]:
    from fieldbill.api.app import openapi_document

    return openapi_document()


def test_docs_openapi_json_is_what_the_code_generates() -> None:
    assert json.loads(DOC.read_text()) == generated(), (
        "docs/openapi.json is stale: python -m local openapi > docs/openapi.json"
    )


def test_the_api_serves_the_generated_document(client: Client) -> None:
    served = client.ok("GET", "/openapi.json")
    assert served == generated()
    # Every route is documented with a summary and tags (QuickBooks connection routes aside)
    for path, operations in served["paths"].items():
        if path.startswith("/quickbooks/"):
            continue
        for method, operation in operations.items():
            assert operation.get("summary") and operation.get("tags"), f"{method.upper()} {path}"


DOCUMENT_ROUTES = {"GET /invoices/{invoice_id}/pdf": "application/pdf"}


def test_every_operation_declares_its_answers_and_the_one_error_schema() -> None:
    document = generated()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert document["security"] == [{"bearerAuth": []}]
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            answers = operation["responses"]
            success = [s for s in answers if s.startswith("2")]
            assert len(success) == 1, where
            content = answers[success[0]]["content"]
            if where in DOCUMENT_ROUTES:
                # A document answers its bytes: declared as a binary string of its media type.
                assert content == {DOCUMENT_ROUTES[where]: {"schema": {"type": "string", "format": "binary"}}}
            else:
                schema = content["application/json"]["schema"]
                assert schema.get("$ref", "").startswith("#/components/schemas/"), f"{where}: untyped 2xx"
            for status in ("400", "401", "404", "422", "500"):
                assert answers[status]["content"]["application/json"]["schema"] == error_ref, where
            for status, answer in answers.items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == error_ref, where
    public = document["paths"]["/quickbooks/callback"]["get"]
    assert public["security"] == [{}]
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ResponseValidationError" not in schemas


def test_the_operation_cancel_route_is_declared_with_its_answers() -> None:
    # wt-door: POST /operations/{id}/cancel answers the operation, or the one error (404, 409)
    cancel = generated()["paths"]["/operations/{operation_id}/cancel"]["post"]
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OperationOut"
    }
    for status in ("404", "409"):
        assert cancel["responses"][status]["content"]["application/json"]["schema"] == error_ref
    body = cancel["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ReasonIn"}
