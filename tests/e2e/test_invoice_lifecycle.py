"""Issue 13: an invoice after it is generated, over HTTP on the whole local stack.

Edit a draft (totals right), edit a synced invoice (QuickBooks holds the new version), delete a
draft (items pending again and billed by the next run), void (QuickBooks voided, items billable
again), mark sent, payments (balance and status follow), illegal changes answer 409 and write
nothing, and each filter of the list.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.conftest import Client, connect_quickbooks, wait_for


def _work(api: Client, contact: str = "c-1", entries: int = 2, day: int = 5) -> None:
    """A contact with a billable task at 80.00/hour and `entries` stopped hour-long time entries."""
    api.ok(
        "POST",
        "/contacts",
        json={"id": contact, "name": f"Pools {contact}", "email": f"{contact}@example.com"},
    )
    task = f"task-{contact}"
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": task,
            "title": "Pool service",
            "client_contact_id": contact,
            "billable": True,
            "status": "done",
            "unit_price": "80.00",
        },
    )
    for n in range(entries):
        entry = f"e-{contact}-{n}"
        start = f"2026-10-{day + n:02d}T09:00:00+00:00"
        api.ok("POST", f"/tasks/{task}/entries", json={"id": entry, "kind": "time", "started_at": start})
        api.ok(
            "POST", f"/tasks/{task}/entries/{entry}/stop", json={"stopped_at": start.replace("T09", "T10")}
        )


def _same(read: dict[str, Any], answered: dict[str, Any]) -> bool:
    """GET /invoices/{id} also shows the contact's account balance and why a sync waits; the
    rest is the invoice a command answered with."""
    extra = ("account_balance", "sync_wait")
    return {k: v for k, v in read.items() if k not in extra} == {
        k: v for k, v in answered.items() if k not in extra
    }


def _run(api: Client, **body: Any) -> list[dict[str, Any]]:
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact", **body}, expect=202)
    run = api.wait_run(run["id"])
    assert run["status"] == "succeeded", run
    return [i for i in api.ok("GET", "/invoices?limit=200")["items"] if i["run_id"] == run["id"]]


def _product(api: Client, product_id: str = "p-filter", price: str = "12.50") -> str:
    api.ok(
        "POST", "/products", json={"id": product_id, "name": "Filter cartridge", "default_unit_price": price}
    )
    return product_id


def _pending(api: Client) -> list[str]:
    return sorted(i["id"] for i in api.ok("GET", "/billable-items?status=pending")["items"])


# ---------------------------------------------------------------------------- edit
def test_editing_a_draft_recomputes_totals_and_releases_removed_lines(client: Client):
    api = client
    _work(api)
    product = _product(api)
    (invoice,) = _run(api, issue_date="2026-10-31")
    assert (invoice["status"], invoice["destination"], invoice["total"]) == ("draft", "local", "160.00")
    first, second = invoice["lines"]
    # When a person keeps line 1 at 1.5 hours, drops line 2, adds a filter, sets Net-15 and texts
    edited = api.ok(
        "PATCH",
        f"/invoices/{invoice['id']}",
        json={
            "version": invoice["version"],
            "lines": [
                {"line_no": first["line_no"], "quantity": "1.5", "description": "Weekly service"},
                {
                    "description": "Filter cartridge",
                    "quantity": 2,
                    "unit_price": "12.50",
                    "product_id": product,
                    "taxable": True,
                },
            ],
            "terms_days": 15,
            "memo": "gate code 1234",
            "customer_message": "Thank you!",
            "billing_email": "ap@example.com",
        },
    )
    # Then the totals come from the money rules, the due date from the terms
    assert [(ln["description"], ln["quantity"], ln["amount"], ln["taxable"]) for ln in edited["lines"]] == [
        ("Weekly service", "1.5", "120.00", False),
        ("Filter cartridge", "2", "25.00", True),
    ]
    assert (edited["subtotal"], edited["total"], edited["balance"]) == ("145.00", "145.00", "145.00")
    assert (edited["issue_date"], edited["due_date"], edited["terms_days"]) == (
        "2026-10-31",
        "2026-11-15",
        15,
    )
    assert edited["version"] == invoice["version"] + 1
    assert (edited["memo"], edited["customer_message"], edited["billing_email"]) == (
        "gate code 1234",
        "Thank you!",
        "ap@example.com",
    )
    # And the removed line's billable item is pending again (billable on the next run)
    assert _pending(api) == [second["item_id"]]
    assert edited["item_ids"] == [first["item_id"]]
    # And an edit against the old version is refused and changes nothing
    stale = api.patch(f"/invoices/{invoice['id']}", json={"version": invoice["version"], "memo": "x"})
    assert stale.status_code == 409, stale.text
    assert _same(api.ok("GET", f"/invoices/{invoice['id']}"), edited)


def test_a_bad_edit_names_the_field_and_changes_nothing(client: Client):
    api = client
    _work(api, entries=1)
    (invoice,) = _run(api)
    for body, field in (
        ({"lines": [{"line_no": 99}]}, "lines[0].line_no"),
        ({"lines": [{"description": "no price"}]}, "lines[0].quantity"),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": 1, "product_id": "nope"}]},
            "lines[0].product_id",
        ),
        ({"due_date": "2020-01-01"}, "due_date"),
        ({"lines": []}, "lines"),
        ({"terms_days": "30"}, "terms_days"),
    ):
        response = api.patch(f"/invoices/{invoice['id']}", json=body)
        assert response.status_code in (400, 422), (body, response.text)
        assert field in response.text, (body, response.text)
    assert api.ok("GET", f"/invoices/{invoice['id']}") == invoice


def test_editing_a_synced_invoice_updates_quickbooks_with_its_sync_token(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api, entries=1)
    (invoice,) = _run(api)
    # Given the invoice in QuickBooks (synced: open)
    assert (invoice["sync_status"], invoice["status"]) == ("synced", "open")
    before = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    # When its quantity is changed here
    api.ok("PATCH", f"/invoices/{invoice['id']}", json={"lines": [{"line_no": 1, "quantity": "2.25"}]})

    # Then QuickBooks holds the new version (same invoice, SyncToken advanced) and ours is synced at it
    def updated() -> dict[str, Any] | None:
        ours = api.ok("GET", f"/invoices/{invoice['id']}")
        done = ours["sync_status"] == "synced" and ours["qbo_synced_version"] == ours["version"]
        return ours if done else None

    ours = wait_for(updated, timeout=30, what="edit synced")
    after = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert Decimal(str(after["TotalAmt"])) - Decimal(
        str(after.get("TxnTaxDetail", {}).get("TotalTax", 0))
    ) == Decimal("180.00")
    assert int(after["SyncToken"]) > int(before["SyncToken"])
    assert [q["Id"] for q in stack.emulator.entities(realm, "Invoice")] == [invoice["qbo_id"]]
    assert ours["total"] == "180.00" and ours["status"] == "open"


# ---------------------------------------------------------------------------- delete and void
def test_deleting_a_draft_makes_its_items_billable_on_the_next_run(client: Client):
    api = client
    _work(api)
    (invoice,) = _run(api)
    deleted = api.ok("DELETE", f"/invoices/{invoice['id']}")
    assert deleted["status"] == "deleted"
    # Then its items are pending again, the list no longer shows it (unless asked), and the next
    # run bills them again on a new invoice
    assert _pending(api) == sorted(invoice["item_ids"])
    assert invoice["id"] not in [i["id"] for i in api.ok("GET", "/invoices")["items"]]
    assert [i["id"] for i in api.ok("GET", "/invoices?status=deleted")["items"]] == [invoice["id"]]
    (again,) = _run(api)
    assert sorted(again["item_ids"]) == sorted(invoice["item_ids"]) and again["id"] != invoice["id"]
    # And a second delete is refused (409 naming the statuses) and changes nothing
    refused = api.delete(f"/invoices/{invoice['id']}")
    assert refused.status_code == 409, refused.text
    assert _same(api.ok("GET", f"/invoices/{invoice['id']}"), deleted)


def test_voiding_voids_in_quickbooks_and_makes_items_billable_again(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api)
    (invoice,) = _run(api)
    assert invoice["status"] == "open"
    voided = api.ok("POST", f"/invoices/{invoice['id']}/void", json={"reason": "wrong customer"})
    assert (voided["status"], voided["balance"]) == ("void", "0")
    assert _pending(api) == sorted(invoice["item_ids"])
    wait_for(
        lambda: Decimal(str(stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])["TotalAmt"])) == 0,
        timeout=30,
        what="voided in QuickBooks",
    )
    # A void invoice cannot be paid, edited or deleted
    for method, path, body in (
        ("POST", f"/invoices/{invoice['id']}/payments", {"amount": "1.00"}),
        ("PATCH", f"/invoices/{invoice['id']}", {"memo": "x"}),
        ("DELETE", f"/invoices/{invoice['id']}", None),
    ):
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["error"]["current"] == "void"


# ---------------------------------------------------------------------------- send and pay
def test_payments_move_the_balance_and_status(client: Client):
    api = client
    _work(api)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    # A draft takes no payment: 409 naming the statuses, nothing written
    refused = api.post(f"{path}/payments", json={"amount": "10.00"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["current"] == "draft"
    sent = api.ok("POST", f"{path}/mark-sent")
    assert (sent["status"], sent["sent_via"]) == ("open", "marked") and sent["sent_at"]
    part = api.ok(
        "POST",
        f"{path}/payments",
        json={"id": "pay-1", "amount": "60.00", "date": "2026-11-02", "method": "check", "reference": "1001"},
    )
    assert (part["status"], part["balance"], part["amount_paid"]) == ("partially_paid", "100.00", "60.00")
    # A retry with the same payment id records it once
    again = api.ok("POST", f"{path}/payments", json={"id": "pay-1", "amount": "60.00"})
    assert (again["balance"], len(again["payments"])) == ("100.00", 1)
    # and the same id with another amount is refused, not taken for a retry
    reused = api.post(f"{path}/payments", json={"id": "pay-1", "amount": "5.00"})
    assert reused.status_code == 409, reused.text
    assert _same(api.ok("GET", path), again)
    over = api.post(f"{path}/payments", json={"amount": "100.01"})
    assert over.status_code == 422 and "amount" in over.text, over.text
    paid = api.ok("POST", f"{path}/payments", json={"amount": "100.00", "method": "card"})
    assert (paid["status"], paid["balance"], paid["amount_paid"]) == ("paid", "0.00", "160.00")
    # Removing a payment makes it owed again
    back = api.ok("DELETE", f"{path}/payments/pay-1")
    assert (back["status"], back["balance"], back["amount_paid"]) == ("partially_paid", "60.00", "100.00")
    # A paid (or partly paid) invoice is not edited or voided
    assert api.patch(path, json={"memo": "x"}).status_code == 409
    assert api.post(f"{path}/void", json={}).status_code == 409


# ---------------------------------------------------------------------------- find
def test_each_filter_of_the_invoice_list(client: Client):
    api = client
    _work(api, "c-a", entries=1, day=3)
    _work(api, "c-b", entries=2, day=10)
    _work(api, "c-c", entries=3, day=20)
    invoices = {i["contact_id"]: i for i in _run(api, issue_date="2026-10-31")}
    a, b, c = invoices["c-a"], invoices["c-b"], invoices["c-c"]
    api.ok("PATCH", f"/invoices/{c['id']}", json={"due_date": "2099-01-31"})
    api.ok("POST", f"/invoices/{b['id']}/mark-sent")
    api.ok("POST", f"/invoices/{c['id']}/mark-sent")
    api.ok("POST", f"/invoices/{c['id']}/payments", json={"amount": "40.00"})
    api.ok("PATCH", f"/invoices/{a['id']}", json={"issue_date": "2026-09-30", "due_date": "2026-10-01"})
    api.ok("PATCH", f"/invoices/{b['id']}", json={"due_date": "2026-11-01"})

    def ids(query: str) -> list[str]:
        return sorted(i["contact_id"] for i in api.ok("GET", f"/invoices?{query}")["items"])

    assert ids("status=open") == ["c-b"]
    assert ids("status=partially_paid") == ["c-c"]
    assert ids("sync_status=not_synced") == ["c-a", "c-b", "c-c"]
    assert ids("destination=local") == ["c-a", "c-b", "c-c"]
    assert ids("destination=quickbooks") == []
    assert ids("contact_id=c-b") == ["c-b"]
    assert ids("issue_date_from=2026-10-01") == ["c-b", "c-c"]
    assert ids("issue_date_to=2026-09-30") == ["c-a"]
    assert ids("due_date_from=2026-10-02&due_date_to=2026-11-01") == ["c-b"]
    assert ids("overdue=true") == ["c-b"]  # c-a is a draft: nothing is owed on it yet
    assert ids("overdue=false") == ["c-a", "c-c"]
    assert ids("total=gt:100") == ["c-b", "c-c"]
    assert ids("total=eq:80") == ["c-a"]
    assert ids("balance=lte:200") == ["c-a", "c-b", "c-c"]
    assert ids("balance=lt:200") == ["c-a", "c-b"]
    assert ids("balance=gte:200") == ["c-c"]
    overdue = api.ok("GET", "/invoices?overdue=true")["items"]
    assert [i["overdue"] for i in overdue] == [True]
    # An unknown filter, a bad operator or an upside-down range is a 400/422 naming it
    for query, name in (
        ("colour=red", "colour"),
        ("balance=ne:1", "balance"),
        ("total=gt:abc", "total"),
        ("issue_date_from=2026-11-01&issue_date_to=2026-10-01", "issue_date_to"),
    ):
        response = api.get(f"/invoices?{query}")
        assert response.status_code in (400, 422) and name in response.text, (query, response.text)


def test_a_payment_recorded_here_reaches_quickbooks_and_the_account_balances_agree(
    stack, connected_client: Client
):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api, entries=2)
    (invoice,) = _run(api)
    assert (invoice["status"], invoice["total"]) == ("open", "160.00")
    path = f"/invoices/{invoice['id']}"
    # When a check of 60.00 is recorded here
    paid = api.ok(
        "POST",
        f"{path}/payments",
        json={"id": "chk-1", "amount": "60.00", "method": "check", "reference": "1001"},
    )
    assert (paid["status"], paid["balance"]) == ("partially_paid", "100.00")

    # Then QuickBooks holds one Payment of 60.00 against that invoice, linked to ours
    def linked() -> dict[str, Any] | None:
        ours = api.ok("GET", path)
        return ours if ours["payments"][0].get("qbo_id") else None

    ours = wait_for(linked, timeout=30, what="payment in QuickBooks")
    payment = stack.emulator.entity(realm, "Payment", ours["payments"][0]["qbo_id"])
    assert Decimal(str(payment["TotalAmt"])) == Decimal("60.00")
    assert payment["Line"][0]["LinkedTxn"][0]["TxnId"] == invoice["qbo_id"]
    assert Decimal(str(stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])["Balance"])) == Decimal(
        "100.00"
    )

    # And the contact's account balance here equals QuickBooks' customer balance
    def agreed(expected: str) -> dict[str, Any] | None:
        balance = api.ok("GET", "/contacts/c-1/balance")
        return balance if (balance["differs_by"], balance["account_balance"]) == ("0.00", expected) else None

    balance = wait_for(lambda: agreed("100.00"), timeout=30, what="balances agree")
    assert (balance["account_balance"], balance["quickbooks_balance"], balance["open_invoices"]) == (
        "100.00",
        "100.00",
        1,
    )
    # When the payment is removed here, QuickBooks' payment is deleted and the balances are whole again
    back = api.ok("DELETE", f"{path}/payments/chk-1")
    assert (back["status"], back["balance"]) == ("open", "160.00")
    wait_for(
        lambda: (
            Decimal(str(stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])["Balance"]))
            == Decimal("160.00")
        ),
        timeout=30,
        what="payment deleted in QuickBooks",
    )
    wait_for(lambda: agreed("160.00"), timeout=30, what="balances agree again")
    # An unknown contact is a 404 in the shared shape
    assert api.get("/contacts/nobody/balance").status_code == 404


def test_a_bulk_command_does_each_invoice_or_says_why_not(client: Client):
    api = client
    for contact in ("c-a", "c-b", "c-c"):
        _work(api, contact, entries=1)
    invoices = {i["contact_id"]: i["id"] for i in _run(api)}
    a, b, c = invoices["c-a"], invoices["c-b"], invoices["c-c"]
    # When a, b and an unknown id are marked sent in one operation
    op = api.ok(
        "POST", "/invoices/bulk", json={"action": "mark_sent", "invoice_ids": [a, b, "nope"]}, expect=202
    )
    result = api.wait_operation(op["operation_id"])["result"]
    # Then a and b are open and the unknown one is reported, not fatal
    assert (result["total"], result["processed"], result["done"]) == (3, 3, [a, b])
    assert [(r["invoice_id"], r["code"]) for r in result["refused"]] == [("nope", "not_found")]
    assert [api.ok("GET", f"/invoices/{i}")["status"] for i in (a, b, c)] == ["open", "open", "draft"]
    # When a (open) and c (a draft: deleted, never voided) are voided
    op = api.ok(
        "POST",
        "/invoices/bulk",
        json={"action": "void", "invoice_ids": [a, c], "reason": "duplicate"},
        expect=202,
    )
    result = api.wait_operation(op["operation_id"])["result"]
    assert result["done"] == [a] and [(r["invoice_id"], r["code"]) for r in result["refused"]] == [
        (c, "invalid_transition")
    ]
    # And drafts are deleted in bulk, their items pending again
    op = api.ok("POST", "/invoices/bulk", json={"action": "delete", "invoice_ids": [c, b]}, expect=202)
    result = api.wait_operation(op["operation_id"])["result"]
    assert result["done"] == [c] and [r["invoice_id"] for r in result["refused"]] == [b]
    pending = {i["contact_id"] for i in api.ok("GET", "/billable-items?status=pending")["items"]}
    assert pending == {"c-a", "c-c"}
    # A selection naming an invoice twice, an unknown action or more than 500 ids is refused
    for body in (
        {"action": "void", "invoice_ids": [a, a]},
        {"action": "pay", "invoice_ids": [a]},
        {"action": "void", "invoice_ids": [f"i{n}" for n in range(501)]},
    ):
        response = api.post("/invoices/bulk", json=body)
        assert response.status_code in (400, 422), response.text


def test_sending_emails_the_invoice_pdf_to_its_billing_email_once_and_opens_it(stack, client: Client):
    import io
    from email import policy
    from email.parser import BytesParser

    import requests
    from pypdf import PdfReader

    api = client
    _work(api, entries=2)
    (invoice,) = _run(api)
    address = f"ap+{api.tenant_id}@customer.example.org"
    api.ok("PATCH", f"/invoices/{invoice['id']}", json={"billing_email": address})
    # When it is sent
    sent = api.ok("POST", f"/invoices/{invoice['id']}/send", json={})
    assert (sent["recipient"], sent["sent_now"]) == (address, True)
    assert (sent["invoice"]["status"], sent["invoice"]["sent_via"]) == ("open", "email")
    # Then the outbox holds one message to the billing email, with the invoice's PDF attached
    (entry,) = requests.get(stack.outbox_url, params={"to": address}, timeout=30).json()["items"]
    raw = requests.get(f"{stack.outbox_url}/{entry['id']}", timeout=30).content
    message = BytesParser(policy=policy.default).parsebytes(raw)
    (attachment,) = list(message.iter_attachments())
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    # whose text shows the invoice number, every line and the total
    number = sent["invoice"]["number"] or sent["invoice"]["qbo_doc_number"] or invoice["id"]
    assert number in text.replace("\n", "")
    for line in invoice["lines"]:
        assert line["description"] in text and line["amount"] in text
    assert invoice["total"] in text
    # A second send of the same version to the same address sends nothing again
    again = api.ok("POST", f"/invoices/{invoice['id']}/send", json={})
    assert again["sent_now"] is False
    assert len(requests.get(stack.outbox_url, params={"to": address}, timeout=30).json()["items"]) == 1
    # A void invoice is not sent (409, nothing in the outbox for it)
    api.ok("POST", f"/invoices/{invoice['id']}/void", json={})
    refused = api.post(f"/invoices/{invoice['id']}/send", json={"to": "other@example.org"})
    assert refused.status_code == 409, refused.text
    assert (
        requests.get(stack.outbox_url, params={"to": "other@example.org"}, timeout=30).json()["items"] == []
    )


def test_an_illegal_change_of_each_invoice_machine_answers_409_naming_it_and_writes_nothing(
    connected_client: Client,
):
    api = connected_client
    _work(api, entries=1)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    opened = api.ok("GET", path)
    assert (opened["status"], opened["sync_status"]) == ("open", "synced")

    def refused(method: str, url: str, machine: str, current: str, requested: str) -> None:
        response = api.request(method, url)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert (error["code"], error["machine"], error["current"], error["requested"]) == (
            "invalid_transition",
            machine,
            current,
            requested,
        )

    # invoice: an open invoice (one QuickBooks holds) is voided, never deleted
    refused("DELETE", path, "invoice", "open", "deleted")
    assert api.ok("GET", path) == opened
    # invoice_sync: a void invoice is never sent to QuickBooks again
    voided = api.ok("POST", f"{path}/void", json={})
    refused("POST", f"{path}/sync", "invoice_sync", "synced", "pending")
    assert api.ok("GET", path)["status"] == "void" and api.ok("GET", path)["version"] == voided["version"]


def test_a_local_invoice_can_later_be_sent_to_quickbooks(client: Client, stack: Any):
    # Given a tenant without QuickBooks: its run makes a local invoice, which cannot sync yet
    api = client
    _work(api, entries=1)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    assert (invoice["destination"], invoice["badge"]) == ("local", "Local")
    refused = api.post(f"{path}/sync", json={})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0]["field"] == "destination"
    assert api.ok("GET", path)["destination"] == "local"
    # When the company connects QuickBooks and the person sends the invoice there
    connect_quickbooks(stack, api)
    api.ok("POST", f"{path}/sync", json={}, expect=202)
    # Then it goes to QuickBooks once, its history saying it moved from local
    synced = wait_for(
        lambda: (lambda i: i if i["sync_status"] == "synced" else None)(api.ok("GET", path)),
        timeout=30,
        what="the moved invoice synced",
    )
    assert synced["destination"] == "quickbooks" and synced["qbo_id"], synced
    history = api.ok("GET", f"/history/invoice/{invoice['id']}")["history"]
    assert any("moved from local to QuickBooks Online" in (h["reason"] or "") for h in history), history
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    assert len(stack.emulator.entities(realm, "Invoice")) == 1
    # and asking again changes nothing
    api.ok("POST", f"{path}/sync", json={}, expect=202)
    assert api.ok("GET", path)["version"] == synced["version"]
