"""Issue 11's Must-show, one test per state machine (domain/states.py, domain/delivery.py): an
illegal transition asked over HTTP answers 409 in the shared error shape naming the machine, the
current and the requested status, and writes nothing (the record and its history read again are
the same; QuickBooks' copy too where the record has one). docs/architecture.md lists the table
machine -> route -> test. Also the operation's cancel (POST /operations/{id}/cancel, wt-door)."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import Client, wait_for
from tests.e2e.test_invoice_lifecycle import _run, _work
from tests.e2e.test_job_invoicing import _job
from tests.e2e.test_services_billing import _service, _setup


def refused(
    api: Client, method: str, path: str, machine: str, current: str, requested: str, **kwargs: Any
) -> dict[str, Any]:
    """Ask for the change; assert the 409 names the machine and both statuses; the error body."""
    response = api.request(method, path, **kwargs)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["machine"], error["current"], error["requested"]) == (
        "invalid_transition",
        machine,
        current,
        requested,
    ), error
    assert error["message"] and error["fields"] == []
    return dict(error)


def history(api: Client, entity: str, record_id: str) -> list[dict[str, Any]]:
    return list(api.ok("GET", f"/history/{entity}/{record_id}")["history"])


def _goods(api: Client, contact: str = "c-1") -> tuple[str, str]:
    """A contact with a task holding one goods entry (billable at once): (task id, entry id)."""
    api.ok("POST", "/contacts", json={"id": contact, "name": f"Pools {contact}", "email": "a@example.com"})
    api.ok("POST", "/tasks", json={"id": f"t-{contact}", "title": "Service", "client_contact_id": contact})
    api.ok(
        "POST",
        f"/tasks/t-{contact}/entries",
        json={
            "id": f"e-{contact}",
            "kind": "goods",
            "started_at": "2026-10-05T09:00:00+00:00",
            "quantity": "2",
            "unit_price": "10.00",
        },
    )
    return f"t-{contact}", f"e-{contact}"


def _compile(api: Client) -> dict[str, Any]:
    op = api.ok("POST", "/billable-items/compile", json={}, expect=202)
    done = api.wait_operation(op["operation_id"])
    assert done["status"] == "succeeded", done
    return done


def _generate(api: Client, item_ids: list[str], **body: Any) -> dict[str, Any]:
    op = api.ok(
        "POST",
        "/invoices/generate",
        json={"item_ids": item_ids, "destination": "local", **body},
        expect=202,
    )
    done = api.wait_operation(op["operation_id"])
    assert done["status"] == "succeeded", done
    return done


# ---------------------------------------------------------------------------- task_entry
def test_task_entry_a_billed_entry_is_neither_edited_nor_deleted(client: Client):
    api = client
    task, entry = _goods(api)
    _compile(api)
    path = f"/tasks/{task}/entries/{entry}"
    before = api.ok("GET", path)
    trail = api.ok("GET", f"{path}/history")
    assert before["billed"] is True
    # When the billed entry is edited or deleted / Then 409 naming task_entry
    refused(api, "PATCH", path, "task_entry", "billed", "edited", json={"quantity": "5"})
    refused(api, "DELETE", path, "task_entry", "billed", "deleted")
    # And nothing changed: the entry, its history and its billable item
    assert api.ok("GET", path) == before
    assert api.ok("GET", f"{path}/history") == trail
    (item,) = api.ok("GET", f"/billable-items?task_id={task}")["items"]
    assert (item["status"], item["quantity"]) == ("pending", "2.000000"), item


# ---------------------------------------------------------------------------- billable_item
def test_billable_item_an_invoiced_item_is_not_made_unbillable(client: Client):
    api = client
    task, _ = _goods(api)
    _compile(api)
    (item,) = api.ok("GET", f"/billable-items?task_id={task}")["items"]
    _generate(api, [item["id"]])
    path = f"/billable-items/{item['id']}"
    before = api.ok("GET", path)
    trail = history(api, "billable-item", item["id"])
    assert before["status"] == "invoiced"
    refused(api, "PATCH", path, "billable_item", "invoiced", "unbillable", json={"status": "unbillable"})
    assert api.ok("GET", path) == before
    assert history(api, "billable-item", item["id"]) == trail


# ---------------------------------------------------------------------------- invoice
def test_invoice_an_open_invoice_is_voided_never_deleted(client: Client):
    api = client
    task, _ = _goods(api)
    _compile(api)
    (item,) = api.ok("GET", f"/billable-items?task_id={task}")["items"]
    _generate(api, [item["id"]])
    (invoice,) = api.ok("GET", "/invoices")["items"]
    path = f"/invoices/{invoice['id']}"
    api.ok("POST", f"{path}/mark-sent", json={})
    before = api.ok("GET", path)
    trail = history(api, "invoice", invoice["id"])
    assert before["status"] == "open"
    refused(api, "DELETE", path, "invoice", "open", "deleted")
    assert api.ok("GET", path) == before
    assert history(api, "invoice", invoice["id"]) == trail
    # and its item is still on it (a delete would have released it)
    assert api.ok("GET", f"/billable-items/{item['id']}")["status"] == "invoiced"


# ---------------------------------------------------------------------------- invoice_sync
def _settle(stack: Any) -> None:
    """Every queued message handled, and QuickBooks' webhooks of it delivered and applied, so what
    is read next cannot change by itself."""
    stack.aws.drain()
    assert stack.emulator.flush_webhooks()
    stack.aws.drain()


def test_invoice_sync_a_void_invoice_is_not_sent_to_quickbooks_again(stack: Any, connected_client: Client):
    api = connected_client
    _work(api, entries=1)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    api.ok("POST", f"{path}/void", json={})
    # Given QuickBooks holds the voided invoice (the void went through the queue)
    _settle(stack)
    before = api.ok("GET", path)
    trail = history(api, "invoice", invoice["id"])
    theirs = stack.emulator.entity(realm, "Invoice", before["qbo_id"])
    assert (before["status"], before["sync_status"]) == ("void", "synced")
    # When it is sent to QuickBooks again / Then 409 naming invoice_sync
    refused(api, "POST", f"{path}/sync", "invoice_sync", "synced", "pending", json={})
    # And nothing changed here, nothing was queued, and QuickBooks' copy is the same
    _settle(stack)
    assert api.ok("GET", path) == before
    assert history(api, "invoice", invoice["id"]) == trail
    assert stack.emulator.entity(realm, "Invoice", before["qbo_id"]) == theirs
    assert stack.emulator.count(realm, "Invoice") == 1


# ---------------------------------------------------------------------------- billing_run
def test_billing_run_a_finished_run_is_not_cancelled(client: Client):
    api = client
    _work(api, entries=1)
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    run = api.wait_run(run["id"])
    assert run["status"] == "succeeded", run
    path = f"/billing-runs/{run['id']}"
    before = api.ok("GET", path)
    trail = history(api, "billing-run", run["id"])
    refused(api, "POST", f"{path}/cancel", "billing_run", "succeeded", "cancelled", json={"reason": "late"})
    assert api.ok("GET", path) == before
    assert history(api, "billing-run", run["id"]) == trail


# ---------------------------------------------------------------------------- quickbooks_connection
def test_quickbooks_connection_a_disconnected_company_is_not_disconnected_again(connected_client: Client):
    api = connected_client
    api.ok("POST", "/quickbooks/disconnect")
    # (workers still running when it was disconnected may add to last_errors meanwhile: not the
    # refused request's write, so the connection is compared without them)
    before = _without_errors(api.ok("GET", "/quickbooks/connection"))
    refused(api, "POST", "/quickbooks/disconnect", "quickbooks_connection", "disconnected", "disconnected")
    assert _without_errors(api.ok("GET", "/quickbooks/connection")) == before


def _without_errors(connection: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in connection.items() if k != "last_errors"}


# ---------------------------------------------------------------------------- job, job_invoice_workflow
def test_job_a_billed_job_is_not_reopened(client: Client):
    api = client
    _job(api, "job-b")
    api.ok("POST", "/jobs/job-b/close", json={})
    api.ok("POST", "/jobs/job-b/invoices", json={"policy": "complete"}, expect=201)
    before = api.ok("GET", "/jobs/job-b")
    trail = history(api, "job", "job-b")
    assert before["status"] == "billed"
    refused(api, "POST", "/jobs/job-b/reopen", "job", "billed", "open", json={})
    assert api.ok("GET", "/jobs/job-b") == before
    assert history(api, "job", "job-b") == trail


def test_job_invoice_workflow_no_approval_without_accounting_integration(client: Client):
    api = client
    _job(api, "job-w")
    invoice = api.ok(
        "POST", "/jobs/job-w/invoices", json={"policy": "deposit", "amount": "100.00"}, expect=201
    )
    path = f"/invoices/{invoice['id']}"
    before = api.ok("GET", path)
    trail = history(api, "invoice", invoice["id"])
    assert before["workflow_status"] == "invoiced"
    refused(api, "POST", f"{path}/approve", "job_invoice_workflow", "invoiced", "approved", json={})
    assert api.ok("GET", path) == before
    assert history(api, "invoice", invoice["id"]) == trail


# ---------------------------------------------------------------------------- visit
def test_visit_a_completed_service_is_not_completed_again(client: Client):
    api = client
    _setup(api)
    _service(api, "s1", "alba", 3)
    before = api.ok("GET", "/services/s1")
    trail = history(api, "service", "s1")
    items = api.ok("GET", "/billable-items?status=pending")["items"]
    assert before["completed"] is True and items
    refused(api, "POST", "/services/s1/complete", "visit", "completed", "completed", json={})
    assert api.ok("GET", "/services/s1") == before
    assert history(api, "service", "s1") == trail
    assert api.ok("GET", "/billable-items?status=pending")["items"] == items


# ---------------------------------------------------------------------------- operation
def _wait(api: Client, operation_id: str, check: Any, what: str) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (lambda op: op if check(op) else None)(api.ok("GET", f"/operations/{operation_id}")),
            timeout=120,
            interval=0.02,
            what=what,
        )
    )


def _drafts(api: Client, count: int) -> list[str]:
    """`count` local draft invoices of one contact (a goods entry in each of `count` months)."""
    api.ok("POST", "/contacts", json={"id": "c-many", "name": "Many Pools", "email": "many@example.com"})
    api.ok("POST", "/tasks", json={"id": "t-many", "title": "Supplies", "client_contact_id": "c-many"})
    for n in range(count):
        started = f"{2020 + n // 12}-{n % 12 + 1:02d}-05T09:00:00+00:00"
        api.ok(
            "POST",
            "/tasks/t-many/entries",
            json={
                "id": f"e-{n:03d}",
                "kind": "goods",
                "started_at": started,
                "quantity": "1",
                "unit_price": "5",
            },
        )
    _compile(api)
    items = api.ok("GET", "/billable-items?status=pending&limit=500")["items"]
    assert len(items) == count
    _generate(api, [i["id"] for i in items], grouping="per_contact_month")
    invoices = api.ok("GET", "/invoices?limit=200")["items"]
    assert len(invoices) == count and {i["status"] for i in invoices} == {"draft"}
    return sorted(i["id"] for i in invoices)


def _sent(stack: Any, api: Client) -> int:
    listed = requests.get(stack.outbox_url, timeout=30).json()["items"]
    return len([m for m in listed if m["from"].startswith(f"{api.tenant_id} ")])


def _states(api: Client) -> dict[str, tuple[str, int]]:
    return {i["id"]: (i["status"], i["version"]) for i in api.ok("GET", "/invoices?limit=200")["items"]}


def test_operation_a_running_bulk_send_is_cancelled_and_stops_where_it_got(stack: Any, client: Client):
    api = client
    invoices = _drafts(api, 80)
    # Given a bulk send of 80 invoices (an email with its PDF each), recording its progress every 25
    op = api.ok("POST", "/invoices/bulk", json={"action": "send", "invoice_ids": invoices}, expect=202)
    op_id = op["operation_id"]
    # When a person cancels it once its first progress is recorded (55 invoices, each a PDF, left)
    _wait(api, op_id, lambda o: o["result"] is not None, "the first progress")
    cancel = f"/operations/{op_id}/cancel"
    key = {"Idempotency-Key": f"cancel-{op_id}"}
    cancelled = api.ok("POST", cancel, json={"reason": "wrong selection"}, headers=key)
    assert cancelled["status"] == "cancelled", cancelled
    # (the same request again is answered the same, from its Idempotency-Key)
    again = api.post(cancel, json={"reason": "wrong selection"}, headers=key)
    assert again.status_code == 200 and again.json()["status"] == "cancelled", again.text
    # Then the worker stops at its next progress write and records how far it got
    stopped = _wait(api, op_id, lambda o: (o["result"] or {}).get("cancelled"), "the worker to stop")
    result = stopped["result"]
    assert stopped["status"] == "cancelled" and stopped["error"] is None, stopped
    assert result["total"] == 80 and 25 <= result["processed"] < 80, result
    assert result["done"] == invoices[: result["processed"]] and result["refused"] == []
    # and what it did stays done: those invoices were emailed and are open, the others are drafts
    states = _states(api)
    assert {i for i, (status, _) in states.items() if status == "open"} == set(result["done"])
    assert {i for i, (status, _) in states.items() if status == "draft"} == set(invoices) - set(
        result["done"]
    )
    # and who cancelled it, and why, is in its history
    last = history(api, "operation", op_id)[-1]
    assert (last["from"], last["to"], last["reason"]) == ("running", "cancelled", "wrong selection")
    # And nothing else is written after: once every queue is drained, all is as it was
    stack.aws.drain()
    assert api.ok("GET", f"/operations/{op_id}") == stopped
    assert _states(api) == states
    assert _sent(stack, api) == len(result["done"])
    # And cancelling it again is refused, naming the machine, and writes nothing
    trail = history(api, "operation", op_id)
    refused(api, "POST", cancel, "operation", "cancelled", "cancelled", json={})
    assert api.ok("GET", f"/operations/{op_id}") == stopped
    assert history(api, "operation", op_id) == trail


def test_operation_a_finished_operation_is_not_cancelled_and_an_unknown_one_is_404(client: Client):
    api = client
    task, _ = _goods(api)
    done = _compile(api)
    before = api.ok("GET", f"/operations/{done['id']}")
    trail = history(api, "operation", done["id"])
    refused(api, "POST", f"/operations/{done['id']}/cancel", "operation", "succeeded", "cancelled", json={})
    assert api.ok("GET", f"/operations/{done['id']}") == before
    assert history(api, "operation", done["id"]) == trail
    # and its work stays as it was
    assert [i["status"] for i in api.ok("GET", f"/billable-items?task_id={task}")["items"]] == ["pending"]
    missing = api.post("/operations/no-such-operation/cancel", json={})
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "not_found"
