"""The billing seed's workflow over HTTP, step by step, with the four checks it ends with.

../shared/seeds/002: create a billable task, add entries, compile, generate, sync; and the
fallback defaults used when no product assignment resolves.
"""

from __future__ import annotations

from tests.conftest import Client, wait_for


def _seed_task(api: Client) -> None:
    api.ok("POST", "/contacts", json={"id": "pool-1", "name": "Seed Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": "t-1",
            "title": "Weekly service",
            "client_contact_id": "pool-1",
            "billable": True,
            "status": "done",
            "unit_price": "90.00",
        },
    )
    # a running time entry, stopped below; a mileage entry with transport minutes
    api.ok(
        "POST",
        "/tasks/t-1/entries",
        json={"id": "time-1", "kind": "time", "started_at": "2026-10-06T08:00:00-07:00"},
    )
    api.ok(
        "POST",
        "/tasks/t-1/entries",
        json={
            "id": "km-1",
            "kind": "mileage",
            "distance_km": "12.5",
            "transport_minutes": "30",
            "started_at": "2026-10-06T07:30:00-07:00",
        },
    )


def test_the_seed_workflow_and_its_four_checks(stack, connected_client: Client):
    api = connected_client
    _seed_task(api)
    api.ok("POST", "/tasks/t-1/entries/time-1/stop", json={"stopped_at": "2026-10-06T09:15:00-07:00"})

    # Check 1: entries are stopped and unbilled before compile
    entries = {e["id"]: e for e in api.ok("GET", "/tasks/t-1/entries")["items"]}
    assert entries["time-1"]["stopped_at"] and not entries["time-1"]["billed"]
    assert not entries["km-1"]["billed"]

    # Compile (asynchronous: 202 and an operation to poll)
    op = api.ok("POST", "/billable-items/compile", json={}, expect=202)
    assert api.wait_operation(op["operation_id"])["status"] == "succeeded"

    # Check 2: the billable list shows pending rows after compile, each explaining its price
    pending = api.ok("GET", "/billable-items?status=pending&contact_id=pool-1")["items"]
    by_kind = {i["line_kind"]: i for i in pending}
    assert set(by_kind) == {"task_entry", "transport_distance", "transport_time"}
    assert by_kind["task_entry"]["quantity"] == "1.250000" and by_kind["task_entry"]["amount"] == "112.50"
    assert (by_kind["task_entry"]["price_source"], by_kind["task_entry"]["product_scope"]) == (
        "task",
        "default",
    )
    assert by_kind["transport_distance"]["unit_price"] == "5.000000"  # the Transport default, per km
    assert by_kind["transport_distance"]["amount"] == "62.50"
    assert by_kind["transport_time"]["quantity"] == "0.500000"  # 30 minutes / 60
    assert by_kind["transport_time"]["amount"] == "500.00"  # Transport Time default 1000.0 per hour
    assert all(api.ok("GET", f"/tasks/t-1/entries/{e}")["billed"] for e in ("time-1", "km-1"))

    # Generate (asynchronous), one invoice per contact
    op = api.ok(
        "POST",
        "/invoices/generate",
        # The seed syncs in a step of its own (step 5): drafts first, no immediate push.
        json={"item_ids": [i["id"] for i in pending], "grouping": "per_contact", "sync": False},
        expect=202,
    )
    result = api.wait_operation(op["operation_id"])
    assert result["status"] == "succeeded", result
    (invoice_id,) = result["result"]["invoice_ids"]

    # Check 3: the generated invoice has the expected line kinds and quantities
    invoice = api.ok("GET", f"/invoices/{invoice_id}")
    assert invoice["status"] == "draft"
    assert sorted((ln["line_kind"], ln["quantity"]) for ln in invoice["lines"]) == [
        ("task_entry", "1.250000"),
        ("transport_distance", "12.500000"),
        ("transport_time", "0.500000"),
    ]
    assert invoice["total"] == "675.00"

    # Check 4: the sync status updates after a sync request
    assert invoice["sync_status"] == "not_synced"
    api.ok("POST", f"/invoices/{invoice_id}/sync", expect=202)
    synced = wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{invoice_id}"))["sync_status"] == "synced" and i,
        timeout=60,
        what="invoice synced",
    )
    assert synced["qbo_id"]
    history = api.ok("GET", f"/history/invoice/{invoice_id}")["history"]
    assert [h["to"] for h in history][:2] == ["draft", "pending"]


def test_fallback_defaults_are_created_once_and_reused_by_the_next_compile(stack, client: Client):
    api = client
    _seed_task(api)
    api.ok("POST", "/tasks/t-1/entries/time-1/stop", json={"stopped_at": "2026-10-06T09:00:00-07:00"})
    first = api.ok("POST", "/billable-items/compile", json={}, expect=202)
    api.wait_operation(first["operation_id"])
    defaults = [p for p in api.ok("GET", "/products?limit=200")["items"] if p["auto_created"]]
    assert sorted(p["name"] for p in defaults) == ["Transport", "Transport Time", "Work"]
    # When more work is compiled later
    api.ok(
        "POST",
        "/tasks/t-1/entries",
        json={"id": "km-2", "kind": "mileage", "distance_km": "3", "started_at": "2026-10-07T07:30:00-07:00"},
    )
    second = api.ok("POST", "/billable-items/compile", json={}, expect=202)
    assert api.wait_operation(second["operation_id"])["result"]["items_created"] == 1
    # Then the same default products are reused, none created twice
    again = [p for p in api.ok("GET", "/products?limit=200")["items"] if p["auto_created"]]
    assert sorted(p["id"] for p in again) == sorted(p["id"] for p in defaults)
    item = api.ok("GET", "/billable-items/km-2.transport_distance")
    assert item["product_id"] == next(p["id"] for p in defaults if p["name"] == "Transport")


def test_a_second_billing_run_for_the_tenant_is_refused_while_one_is_active(stack, client: Client):
    api = client
    first = api.ok("POST", "/billing-runs", json={"sync": False}, expect=202)
    second = api.post("/billing-runs", json={"sync": False})
    # The first may already have finished on a fast machine; then the second is allowed to start.
    if second.status_code == 409:
        assert second.json()["error"]["code"] == "conflict"
        assert api.wait_run(first["id"])["status"] == "succeeded"
        third = api.ok("POST", "/billing-runs", json={"sync": False}, expect=202)
        assert api.wait_run(third["id"])["status"] == "succeeded"
    else:
        assert second.status_code == 202
        assert api.ok("GET", f"/billing-runs/{first['id']}")["stage"] == "finished"
