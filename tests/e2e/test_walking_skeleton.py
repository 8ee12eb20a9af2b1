"""Issue #2's walking skeleton: logged work -> billing run (real state machine) -> invoice in QuickBooks."""

from __future__ import annotations

from tests.conftest import Client


def test_a_stopped_time_entry_is_compiled_invoiced_and_synced(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a contact with a billable task and one stopped time entry of 90 minutes at 80.00/hour
    api.ok("POST", "/contacts", json={"id": "c-1", "name": "Skeleton Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": "task-1",
            "title": "Pool service",
            "client_contact_id": "c-1",
            "billable": True,
            "status": "done",
            "unit_price": "80.00",
        },
    )
    api.ok(
        "POST",
        "/tasks/task-1/entries",
        json={"id": "e-1", "kind": "time", "started_at": "2026-10-05T09:00:00+00:00"},
    )
    api.ok("POST", "/tasks/task-1/entries/e-1/stop", json={"stopped_at": "2026-10-05T10:30:00+00:00"})

    # When a billing run goes through compile, generate and sync
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    run = api.wait_run(run["id"])

    # Then the run succeeded and its one invoice is synced, with its QuickBooks id stored
    assert run["status"] == "succeeded", run
    invoices = api.ok("GET", "/invoices")["items"]
    assert len(invoices) == 1
    invoice = invoices[0]
    assert invoice["sync_status"] == "synced"
    assert [(ln["line_kind"], ln["quantity"], ln["amount"]) for ln in invoice["lines"]] == [
        ("task_entry", "1.500000", "120.00")
    ]
    assert invoice["total"] == "120.00"
    in_qbo = stack.emulator.entities(realm, "Invoice")
    assert [q["Id"] for q in in_qbo] == [invoice["qbo_id"]]
    assert str(in_qbo[0]["TotalAmt"]) in ("120.0", "120", "120.00")
    # and the entry is billed, the item invoiced
    entry = api.ok("GET", "/tasks/task-1/entries/e-1")
    assert entry["billed"] is True
    items = api.ok("GET", "/billable-items?status=invoiced")["items"]
    assert [i["invoice_id"] for i in items] == [invoice["id"]]
