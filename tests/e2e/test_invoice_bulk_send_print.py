"""Issue 13: bulk send and bulk print as operations: each invoice done or refused on its own, the
print one PDF of the selection behind a presigned link."""

from __future__ import annotations

import re

import requests

from tests.conftest import Client
from tests.e2e.test_invoice_documents import local_invoices, pdf_pages


def test_bulk_send_emails_each_invoice_and_reports_the_others(stack, client: Client):
    invoices = local_invoices(client, [("Delta Pools", [("1", "10")]), ("Echo Spa", [("2", "20")])])
    a, b = (i["id"] for i in invoices)
    # Given b is deleted (a deleted invoice is not sent)
    client.ok("DELETE", f"/invoices/{b}")
    # When a, b and an unknown id are sent in one operation
    op = client.ok(
        "POST", "/invoices/bulk", json={"action": "send", "invoice_ids": [a, b, "nope"]}, expect=202
    )
    result = client.wait_operation(op["operation_id"])["result"]
    # Then a was emailed and is open; b and the unknown one are reported, not fatal
    assert (result["total"], result["processed"], result["done"]) == (3, 3, [a])
    assert [(r["invoice_id"], r["code"]) for r in result["refused"]] == [
        (b, "invalid_transition"),
        ("nope", "not_found"),
    ]
    sent = client.ok("GET", f"/invoices/{a}")
    assert (sent["status"], sent["sent_via"], sent["delivery_status"]) == ("open", "email", "sent")
    listed = requests.get(stack.outbox_url, timeout=30).json()["items"]
    assert len([m for m in listed if m["from"].startswith(f"{client.tenant_id} ")]) == 1


def test_bulk_print_is_one_pdf_of_the_printable_invoices_behind_a_link(client: Client):
    invoices = local_invoices(
        client, [("Foxtrot Pools", [("1", "11")]), ("Golf Spa", [("2", "22")]), ("Hotel HOA", [("3", "33")])]
    )
    a, b, c = (i["id"] for i in invoices)
    client.ok("DELETE", f"/invoices/{b}")
    # When a, the deleted b, an unknown id and c are printed in one operation
    op = client.ok(
        "POST", "/invoices/bulk", json={"action": "print", "invoice_ids": [c, b, "nope", a]}, expect=202
    )
    operation = client.wait_operation(op["operation_id"])
    assert operation["status"] == "succeeded", operation
    result = operation["result"]
    # Then the result names what is printed and why the others are not
    assert (result["total"], result["processed"], result["done"]) == (4, 4, [c, a])
    assert [(r["invoice_id"], r["code"]) for r in result["refused"]] == [
        (b, "invalid_transition"),
        ("nope", "not_found"),
    ]
    # And its link is one PDF holding c then a
    document = result["document"]
    assert document["invoice_count"] == 2 and document["expires_at"].endswith("Z")
    fetched = requests.get(document["url"], timeout=30)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "application/pdf"
    numbers = [re.search(r"INVOICE NUMBER (\S+)", page).group(1) for page in pdf_pages(fetched.content)]  # type: ignore[union-attr]
    # (the number a person sees: local invoices are numbered by us)
    number_of = {i["id"]: i["number"] or i["id"] for i in invoices}
    assert numbers == [number_of[c], number_of[a]]
