"""Every resource over HTTP like a web client: create, read, list (paged, filtered), update, delete
where safe, references checked in THIS tenant, and every change in the audit trail."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Client

T0 = "2024-03-04T09:00:00+00:00"


def history(client: Client, path: str) -> list[str]:
    return [h["to"] for h in client.ok("GET", path)["history"]]


def all_pages(client: Client, path: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    sep = "&" if "?" in path else "?"
    while True:
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = client.ok("GET", url)
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_contact_lifecycle_with_references_filters_and_history(client: Client) -> None:
    # Given a membership, a team and a price list
    membership = client.ok("POST", "/memberships", json={"name": "Gold"})
    team = client.ok("POST", "/teams", json={"name": "North"})
    product = client.ok(
        "POST", "/products", json={"name": "Pool cleaning", "unit": "hour", "default_unit_price": "80.00"}
    )
    prices = client.ok("POST", "/price-lists", json={"name": "Gold prices", "prices": {product["id"]: 72.5}})
    assert prices["prices"] == {product["id"]: "72.5"}

    # When contacts are created referencing them
    alice = client.ok(
        "POST",
        "/contacts",
        json={
            "name": "Alice Pools",
            "tags": ["vip", "pool"],
            "membership_id": membership["id"],
            "team_id": team["id"],
            "price_list_id": prices["id"],
        },
        expect=201,
    )
    for name in ("Alan Spa", "Bob Ponds", "Carla Lakes"):
        client.ok("POST", "/contacts", json={"name": name, "tags": ["pool"] if name != "Bob Ponds" else []})

    # Then they are listed by name, paged, and filtered by name prefix and tag
    names = [c["name"] for c in all_pages(client, "/contacts", limit=2)]
    assert names == ["Alan Spa", "Alice Pools", "Bob Ponds", "Carla Lakes"]
    assert [c["name"] for c in client.ok("GET", "/contacts?name_prefix=al")["items"]] == [
        "Alan Spa",
        "Alice Pools",
    ]
    assert [c["name"] for c in all_pages(client, "/contacts?tag=pool", limit=10)] == [
        "Alan Spa",
        "Alice Pools",
        "Carla Lakes",
    ]
    assert [c["name"] for c in client.ok("GET", "/contacts?tag=vip")["items"]] == ["Alice Pools"]

    # When the contact is renamed and its team removed (PATCH is partial; null clears)
    changed = client.ok("PATCH", f"/contacts/{alice['id']}", json={"name": "Alice's Pools", "team_id": None})
    assert changed["name"] == "Alice's Pools" and changed["team_id"] is None
    assert changed["membership_id"] == membership["id"] and changed["tags"] == ["vip", "pool"]
    assert client.ok("GET", f"/contacts/{alice['id']}") == changed
    assert history(client, f"/history/contact/{alice['id']}") == ["created", "updated"]

    # Then the team is free to go, the membership is not (the contact still uses it)
    client.ok("DELETE", f"/teams/{team['id']}")
    blocked = client.delete(f"/memberships/{membership['id']}")
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["error"]["code"] == "conflict"
    client.ok("GET", f"/memberships/{membership['id']}")

    # A contact with a task cannot be deleted; once the task is gone it can
    task = client.ok("POST", "/tasks", json={"title": "Weekly", "client_contact_id": alice["id"]})
    assert client.delete(f"/contacts/{alice['id']}").status_code == 409
    client.ok("GET", f"/contacts/{alice['id']}")
    client.ok("DELETE", f"/tasks/{task['id']}")
    client.ok("DELETE", f"/contacts/{alice['id']}")
    assert client.get(f"/contacts/{alice['id']}").status_code == 404
    assert client.delete(f"/contacts/{alice['id']}").status_code == 404
    # Nothing disappears silently: the trail survives the delete
    trail = client.ok("GET", f"/history/contact/{alice['id']}")
    assert trail["deleted"] is True and [h["to"] for h in trail["history"]] == [
        "created",
        "updated",
        "deleted",
    ]
    # and what the contact pinned is free again
    client.ok("DELETE", f"/memberships/{membership['id']}")
    client.ok("DELETE", f"/price-lists/{prices['id']}")


def test_products_price_lists_and_assignments(client: Client) -> None:
    work = client.ok(
        "POST",
        "/products",
        json={
            "id": "work-premium",
            "name": "Premium work",
            "unit": "hour",
            "default_unit_price": "95.5",
            "kind": "service",
            "income_account_ref": "79",
        },
    )
    parts = client.ok("POST", "/products", json={"name": "Chlorine", "kind": "inventory", "unit": "kg"})
    assert work["id"] == "work-premium" and work["default_unit_price"] == "95.5"
    assert client.post("/products", json={"id": "work-premium", "name": "Again"}).status_code == 409
    assert [p["name"] for p in client.ok("GET", "/products?kind=inventory")["items"]] == ["Chlorine"]

    # Price lists name only products of this tenant
    bad = client.post("/price-lists", json={"name": "P", "prices": {"nope": "1"}})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "prices.nope"
    plist = client.ok("POST", "/price-lists", json={"name": "Standard", "prices": {work["id"]: "90"}})
    plist = client.ok(
        "PATCH", f"/price-lists/{plist['id']}", json={"prices": {work["id"]: "91.25", parts["id"]: "12"}}
    )
    assert plist["prices"] == {work["id"]: "91.25", parts["id"]: "12"}

    # Assignments: one product per (scope, scope id, line kind)
    contact = client.ok("POST", "/contacts", json={"name": "Dana"})
    assignment = client.ok(
        "POST",
        "/assignments",
        json={
            "scope": "contact",
            "scope_id": contact["id"],
            "line_kind": "task_entry",
            "product_id": work["id"],
        },
    )
    assert assignment["id"] == f"contact.{contact['id']}.task_entry"
    again = client.post(
        "/assignments",
        json={
            "scope": "contact",
            "scope_id": contact["id"],
            "line_kind": "task_entry",
            "product_id": parts["id"],
        },
    )
    assert again.status_code == 409, again.text
    tenant_wide = client.ok(
        "POST", "/assignments", json={"scope": "tenant", "line_kind": "goods", "product_id": parts["id"]}
    )
    assert tenant_wide["scope_id"] == client.tenant_id
    unknown = client.post(
        "/assignments",
        json={"scope": "team", "scope_id": "ghost", "line_kind": "goods", "product_id": parts["id"]},
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"] == "scope_id"
    unknown = client.post(
        "/assignments",
        json={"scope": "contact", "scope_id": contact["id"], "line_kind": "goods", "product_id": "ghost"},
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"] == "product_id"
    listed = client.ok("GET", f"/assignments?scope=contact&scope_id={contact['id']}")["items"]
    assert [a["id"] for a in listed] == [assignment["id"]]
    assert len(all_pages(client, "/assignments", limit=1)) == 2

    # Products in use stay; the assignment moves, then the product is free
    assert client.delete(f"/products/{work['id']}").status_code == 409
    moved = client.ok("PATCH", f"/assignments/{assignment['id']}", json={"product_id": parts["id"]})
    assert moved["product_id"] == parts["id"]
    assert client.ok("GET", f"/assignments/{assignment['id']}")["product_id"] == parts["id"]
    client.ok("DELETE", f"/products/{work['id']}")
    # The contact is pinned by its assignment; removing the assignment frees it
    assert client.delete(f"/contacts/{contact['id']}").status_code == 409
    client.ok("DELETE", f"/assignments/{assignment['id']}")
    assert history(client, f"/history/assignment/{assignment['id']}") == ["created", "updated", "deleted"]
    client.ok("DELETE", f"/contacts/{contact['id']}")
    assert history(client, f"/history/product/{parts['id']}") == ["created"]
    renamed = client.ok("PATCH", f"/products/{parts['id']}", json={"name": "Chlorine tabs", "unit": None})
    assert renamed["unit"] is None and renamed["kind"] == "inventory"
    assert [p["name"] for p in client.ok("GET", "/products?name_prefix=chl")["items"]] == ["Chlorine tabs"]


def test_tasks_filters_and_status_history(client: Client) -> None:
    a = client.ok("POST", "/contacts", json={"name": "A"})
    b = client.ok("POST", "/contacts", json={"name": "B"})
    t1 = client.ok("POST", "/tasks", json={"title": "one", "client_contact_id": a["id"]})
    t2 = client.ok("POST", "/tasks", json={"title": "two", "client_contact_id": b["id"], "status": "done"})
    t3 = client.ok(
        "POST", "/tasks", json={"title": "three", "client_contact_id": a["id"], "unit_price": "10"}
    )

    assert [t["id"] for t in all_pages(client, "/tasks", limit=2)] == [t1["id"], t2["id"], t3["id"]]
    assert [t["id"] for t in all_pages(client, f"/tasks?client_contact_id={a['id']}", limit=1)] == [
        t1["id"],
        t3["id"],
    ]
    assert [t["id"] for t in client.ok("GET", "/tasks?status=done")["items"]] == [t2["id"]]

    done = client.ok("PATCH", f"/tasks/{t1['id']}", json={"status": "done", "client_contact_id": b["id"]})
    assert done["status"] == "done" and done["client_contact_id"] == b["id"]
    trail = client.ok("GET", f"/history/task/{t1['id']}")["history"]
    assert [(h["from"], h["to"]) for h in trail] == [(None, "draft"), ("draft", "done")]
    # The reference moved with the task: a is held by t3 only, b by t1 and t2
    client.ok("DELETE", f"/tasks/{t3['id']}")
    client.ok("DELETE", f"/contacts/{a['id']}")
    assert client.delete(f"/contacts/{b['id']}").status_code == 409


def compile_now(client: Client) -> dict[str, Any]:
    op = client.ok("POST", "/billable-items/compile", json={}, expect=202)
    done = client.wait_operation(op["operation_id"])
    assert done["status"] == "succeeded", done
    return done["result"]


def test_entry_edits_keep_the_unbilled_index_and_stop_once_billed(client: Client) -> None:
    contact = client.ok("POST", "/contacts", json={"name": "Eve"})
    task = client.ok(
        "POST", "/tasks", json={"title": "Repair", "client_contact_id": contact["id"], "unit_price": "50"}
    )
    base = f"/tasks/{task['id']}/entries"
    running = client.ok("POST", base, json={"kind": "time", "started_at": T0})
    goods = client.ok(
        "POST", base, json={"kind": "goods", "started_at": T0, "quantity": "2", "unit_price": "3"}
    )

    # An edit of a running entry keeps it out of compile; a PATCH that stops it makes it eligible
    edited = client.ok(
        "PATCH",
        f"{base}/{running['id']}",
        json={"description": "pump", "started_at": "2024-03-05T08:00:00+01:00"},
    )
    assert edited["work_date"] == "2024-03-05" and edited["stopped_at"] is None
    client.ok("PATCH", f"{base}/{goods['id']}", json={"quantity": "3"})
    # Un-stopping is possible while unbilled: it leaves the unbilled index again
    stopped = client.ok("PATCH", f"{base}/{running['id']}", json={"stopped_at": "2024-03-05T10:30:00+01:00"})
    assert stopped["stopped_at"] == "2024-03-05T10:30:00+01:00"
    client.ok("PATCH", f"{base}/{running['id']}", json={"stopped_at": None})
    result = compile_now(client)
    assert result["entries_billed"] == 1  # the goods entry only
    assert client.ok("GET", f"{base}/{goods['id']}")["billed"] is True

    # Stop it (the command), then it compiles
    client.ok("POST", f"{base}/{running['id']}/stop", json={"stopped_at": "2024-03-05T10:00:00+01:00"})
    assert compile_now(client)["entries_billed"] == 1
    billed = client.ok("GET", f"{base}/{running['id']}")
    assert billed["billed"] is True
    items = client.ok("GET", f"/billable-items?task_id={task['id']}")["items"]
    assert sorted(Decimal(i["quantity"]) for i in items) == [2, 3]  # 08:00-10:00 and the edited goods

    # A billed entry is neither edited nor deleted, and stays as it was
    for response in (
        client.patch(f"{base}/{running['id']}", json={"description": "x"}),
        client.delete(f"{base}/{running['id']}"),
        client.post(f"{base}/{running['id']}/stop", json={"stopped_at": "2024-03-05T11:00:00Z"}),
    ):
        assert response.status_code == 409, response.text
    assert client.ok("GET", f"{base}/{running['id']}") == billed
    assert history(client, f"{base}/{running['id']}/history") == [
        "created",
        "updated",
        "updated",
        "updated",
        "stopped",
        "billed",
    ]
    # The task is pinned by its entries
    assert client.delete(f"/tasks/{task['id']}").status_code == 409


def test_unbilled_entry_delete_frees_its_task(client: Client) -> None:
    task = client.ok("POST", "/tasks", json={"title": "Quick"})
    product = client.ok("POST", "/products", json={"name": "Km"})
    entry = client.ok(
        "POST",
        f"/tasks/{task['id']}/entries",
        json={"kind": "mileage", "started_at": T0, "distance_km": "12.5", "product_id": product["id"]},
    )
    assert client.delete(f"/products/{product['id']}").status_code == 409
    client.ok("DELETE", f"/tasks/{task['id']}/entries/{entry['id']}")
    assert client.get(f"/tasks/{task['id']}/entries/{entry['id']}").status_code == 404
    assert history(client, f"/tasks/{task['id']}/entries/{entry['id']}/history") == ["created", "deleted"]
    assert client.ok("GET", f"/tasks/{task['id']}/entries")["items"] == []
    client.ok("DELETE", f"/products/{product['id']}")
    client.ok("DELETE", f"/tasks/{task['id']}")


def test_another_tenants_records_do_not_exist_here(stack: Any, client: Client) -> None:
    other = Client(stack, f"t-{uuid.uuid4().hex[:12]}")
    contact = other.ok("POST", "/contacts", json={"name": "Theirs"})
    product = other.ok("POST", "/products", json={"name": "Theirs"})
    task = other.ok("POST", "/tasks", json={"title": "Theirs", "client_contact_id": contact["id"]})

    for path in (
        f"/contacts/{contact['id']}",
        f"/products/{product['id']}",
        f"/tasks/{task['id']}",
        f"/history/contact/{contact['id']}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.patch(f"/contacts/{contact['id']}", json={"name": "Mine"}).status_code == 404
    assert client.delete(f"/products/{product['id']}").status_code == 404
    assert (
        client.post(f"/tasks/{task['id']}/entries", json={"kind": "time", "started_at": T0}).status_code
        == 404
    )
    for path, body, field in (
        ("/tasks", {"title": "x", "client_contact_id": contact["id"]}, "client_contact_id"),
        (
            "/assignments",
            {"scope": "tenant", "line_kind": "goods", "product_id": product["id"]},
            "product_id",
        ),
        ("/price-lists", {"name": "x", "prices": {product["id"]: 1}}, f"prices.{product['id']}"),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"][0]["field"] == field
    assert client.ok("GET", "/tasks")["items"] == [] and client.ok("GET", "/assignments")["items"] == []
    assert other.ok("GET", f"/contacts/{contact['id']}")["name"] == "Theirs"


@pytest.mark.parametrize("path", ["/contacts", "/tasks", "/products", "/assignments"])
def test_a_cursor_from_another_list_is_refused(client: Client, path: str) -> None:
    for name in ("a", "b"):
        client.ok("POST", "/memberships", json={"name": name})
    cursor = client.ok("GET", "/memberships?limit=1")["next_cursor"]
    assert cursor
    response = client.get(f"{path}?cursor={cursor}")
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "cursor"
