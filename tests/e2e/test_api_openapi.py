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
