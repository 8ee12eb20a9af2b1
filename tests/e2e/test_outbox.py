"""The local outbox over HTTP: what a person (or a test) reads of the emails the stack sent.

The invoice is made over the API like a web client makes it; the send is the service function
the send route calls (POST /invoices/{id}/send arrives with the invoice commands), run in this
process, which is where the local stack's AWS lives.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
import requests

from fieldbill.workflows.documents.send import send_invoice
from tests.conftest import Client
from tests.pdf import make_pdf, read_pdf

pytestmark = pytest.mark.e2e

T0 = "2026-11-04T09:00:00+00:00"


def _local_invoice(client: Client, email: str) -> dict[str, Any]:
    contact = client.ok("POST", "/contacts", json={"name": "Harbor Hotel", "email": email})
    task = client.ok(
        "POST",
        "/tasks",
        json={"title": "Pool service", "client_contact_id": contact["id"], "unit_price": "60"},
    )
    client.ok(
        "POST",
        f"/tasks/{task['id']}/entries",
        json={"kind": "time", "started_at": T0, "stopped_at": "2026-11-04T11:00:00+00:00"},
    )
    op = client.ok("POST", "/billable-items/compile", json={}, expect=202)
    assert client.wait_operation(op["operation_id"])["status"] == "succeeded"
    items = client.ok("GET", f"/billable-items?task_id={task['id']}")["items"]
    op = client.ok(
        "POST",
        "/invoices/generate",
        json={"item_ids": [i["id"] for i in items], "destination": "local"},
        expect=202,
    )
    assert client.wait_operation(op["operation_id"])["status"] == "succeeded"
    (invoice,) = client.ok("GET", "/invoices")["items"]
    return dict(invoice)


def test_the_outbox_lists_a_sent_invoice_and_serves_its_raw_message(stack, client: Client):
    # Given a local invoice for a customer with a billing email, emailed with its PDF
    address = f"ap+{client.tenant_id}@customer.example.org"
    invoice = _local_invoice(client, address)
    pdf = make_pdf(f"Invoice {invoice['id']}")
    sent = send_invoice(client.tenant_id, invoice["id"], pdf, actor="user-1")

    # When a person lists the outbox (no token: a local page, like /__local/schedules)
    listed = requests.get(stack.outbox_url, params={"to": address}, timeout=30)

    # Then it holds one message to the billing email, naming the invoice and the company
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()["items"]
    assert entry["to"] == [address]
    assert entry["subject"] == sent.subject
    assert entry["subject"].startswith("Invoice ") and client.tenant_id in entry["subject"]
    assert entry["message_id"].startswith(f"<{sent.ses_message_id}@")
    assert entry["date"]

    # And the message itself comes back raw, as message/rfc822, with the PDF attached
    raw = requests.get(f"{stack.outbox_url}/{entry['id']}", timeout=30)
    assert raw.status_code == 200
    assert raw.headers["Content-Type"].startswith("message/rfc822")
    message = BytesParser(policy=policy.default).parsebytes(raw.content)
    assert [a.addr_spec for a in message["To"].addresses] == [address]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename().startswith("invoice-") and attachment.get_filename().endswith(".pdf")
    assert attachment.get_content() == pdf
    assert read_pdf(attachment.get_content()).metadata.title == f"Invoice {invoice['id']}"
    # and the plain-text body names the total the API shows
    assert invoice["total"] in message.get_body(preferencelist=("plain",)).get_content()


def test_the_outbox_refuses_unknown_parameters_and_ids_in_the_shared_error_shape(stack):
    unknown = requests.get(stack.outbox_url, params={"recipient": "x"}, timeout=30)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"] == [
        {"field": "recipient", "in": "query", "message": "unknown query parameter"}
    ]
    missing = requests.get(f"{stack.outbox_url}/no-such-message", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert requests.post(stack.outbox_url, timeout=30).status_code == 405
