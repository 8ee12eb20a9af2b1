"""GET /docs is the Swagger UI page of the API's own document (issue 11: served by
fieldbill.api.swagger, which builds Powertools' OpenAPI models at the page's first request, not at
the API's import)."""

from __future__ import annotations

from tests.conftest import Client


def test_the_docs_page_is_the_swagger_ui_of_this_api(client: Client) -> None:
    # Given a running API, When a browser asks for the docs page
    response = client.get("/docs")
    # Then it is the Swagger UI, with its assets inline and this API's document in it
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page
    assert '"title": "fieldbill API"' in page
    assert '"bearerFormat": "JWT"' in page


def test_an_unknown_query_parameter_is_still_refused_on_the_docs_page(client: Client) -> None:
    # The query gate applies to every route, this one included (as it did with enable_swagger).
    response = client.get("/docs", params={"format": "json"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["field"] == "format"
