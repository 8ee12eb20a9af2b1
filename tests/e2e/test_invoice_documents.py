"""Invoice PDFs over HTTP, read back with a PDF library as a client would (issue 13 item 5)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests
from pypdf import PdfReader

from local.gateway import link_expired
from tests.conftest import Client

T0 = "2026-11-02T09:00:00+00:00"


def pdf_pages(data: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def local_invoices(
    client: Client, customers: list[tuple[str, list[tuple[str, str]]]]
) -> list[dict[str, Any]]:
    """Each customer's goods lines (quantity, unit price) compiled and invoiced locally: one invoice each."""
    for name, goods in customers:
        contact = client.ok(
            "POST", "/contacts", json={"name": name, "email": f"{name.split()[0]}@example.com"}
        )
        task = client.ok(
            "POST", "/tasks", json={"title": f"Service for {name}", "client_contact_id": contact["id"]}
        )
        for qty, price in goods:
            client.ok(
                "POST",
                f"/tasks/{task['id']}/entries",
                json={"kind": "goods", "started_at": T0, "quantity": qty, "unit_price": price},
            )
    op = client.ok("POST", "/billable-items/compile", json={}, expect=202)
    assert client.wait_operation(op["operation_id"])["status"] == "succeeded"
    items = client.ok("GET", "/billable-items?status=pending&limit=500")["items"]
    op = client.ok(
        "POST",
        "/invoices/generate",
        json={"item_ids": [i["id"] for i in items], "destination": "local"},
        expect=202,
    )
    assert client.wait_operation(op["operation_id"])["status"] == "succeeded"
    invoices = client.ok("GET", "/invoices")["items"]
    assert len(invoices) == len(customers)
    return list(invoices)


def test_get_pdf_of_a_generated_invoice_shows_its_number_lines_and_total(client: Client):
    # Given a generated invoice with two lines
    (invoice,) = local_invoices(client, [("Harbour Pools", [("2", "19.99"), ("1.5", "80")])])

    # When a client asks for its PDF
    response = client.get(f"/invoices/{invoice['id']}/pdf")

    # Then the answer is a PDF (binary, not base64 text) whose text shows the invoice
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = " ".join(pdf_pages(response.content))
    assert invoice["number"] and f"INVOICE NUMBER {invoice['number']}" in text  # a local invoice: ours
    assert "Harbour Pools" in text
    for line in invoice["lines"]:
        assert f"{line['amount']}" in text
        assert line["description"] in text
    assert invoice["total"] == "159.98"
    assert "Total USD 159.98" in text
    assert "Balance due USD 159.98" in text


def test_pdf_of_an_unknown_invoice_is_404_in_the_shared_shape(client: Client):
    response = client.get("/invoices/no-such-invoice/pdf")
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["entity"], error["id"]) == ("not_found", "invoice", "no-such-invoice")


def test_print_of_three_invoices_answers_a_link_to_one_pdf_holding_them(client: Client):
    # Given three invoices
    invoices = local_invoices(
        client,
        [("Alpha Pools", [("1", "10")]), ("Beta Spa", [("2", "20")]), ("Gamma HOA", [("3", "30")])],
    )
    ids = [i["id"] for i in invoices]

    # When they are printed together
    answer = client.ok("POST", "/invoices/print", json={"invoice_ids": ids}, expect=200)

    # Then the answer is a link (no token needed) with its expiry, and its PDF has the three, in order
    assert answer["invoice_count"] == 3 and answer["expires_in"] > 0
    assert answer["expires_at"].endswith("Z")
    document = requests.get(answer["url"], timeout=30)
    assert document.status_code == 200, document.text
    assert document.headers["Content-Type"] == "application/pdf"
    assert len(document.content) == answer["size_bytes"]
    pages = pdf_pages(document.content)
    numbers = [re.search(r"INVOICE NUMBER (\S+)", page).group(1) for page in pages]  # type: ignore[union-attr]
    assert numbers == [i["number"] for i in invoices]  # local invoices take our numbers
    for page, invoice in zip(pages, invoices, strict=True):
        assert f"Total USD {invoice['total']}" in page

    # and a retry of the same print is the same document, not a second one
    again = client.ok("POST", "/invoices/print", json={"invoice_ids": ids}, expect=200)
    assert again["url"].split("?")[0] == answer["url"].split("?")[0]


def test_a_print_link_without_its_signature_dates_is_refused(client: Client):
    (invoice,) = local_invoices(client, [("Delta Pools", [("1", "10")])])
    answer = client.ok("POST", "/invoices/print", json={"invoice_ids": [invoice["id"]]}, expect=200)
    assert requests.get(answer["url"].split("?")[0], timeout=30).status_code == 403


@pytest.mark.parametrize(
    "ids, reason",
    [
        ([f"inv-{i}" for i in range(501)], "more than 500"),
        ([], "none"),
        (["same", "same"], "twice"),
        (["no-such-invoice"], "unknown"),
    ],
)
def test_a_print_of_a_bad_selection_is_refused_naming_invoice_ids(
    client: Client, ids: list[str], reason: str
):
    response = client.post("/invoices/print", json={"invoice_ids": ids})
    assert response.status_code == 422, (reason, response.text)
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["fields"]] == ["invoice_ids"], error


def test_print_refuses_unknown_fields(client: Client):
    response = client.post("/invoices/print", json={"invoice_ids": ["a"], "format": "a4"})
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["format"]


def test_the_documents_bucket_is_private_encrypted_and_expires_prints(stack):
    # Given the bucket the local stack made from template.yaml (moto in this process)
    bucket = stack.aws.template.ref("DocumentsBucket")
    s3 = boto3.client("s3")

    # Then it blocks public access, encrypts at rest and deletes prints after a few days
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(
        block[k]
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    expiring = [r for r in lifecycle if r.get("Filter", {}).get("Prefix") == "prints/"]
    assert [r["Expiration"]["Days"] for r in expiring] == [3]


def test_link_expiry_is_read_from_the_signature_dates():
    signed = {"X-Amz-Date": "20261203T120000Z", "X-Amz-Expires": "900"}
    assert not link_expired(signed, datetime(2026, 12, 3, 12, 14, 59, tzinfo=UTC))
    assert link_expired(signed, datetime(2026, 12, 3, 12, 15, 1, tzinfo=UTC))
    assert link_expired({"X-Amz-Expires": "900"}, datetime(2026, 12, 3, tzinfo=UTC))
