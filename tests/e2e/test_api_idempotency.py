"""Idempotency-Key on POST commands: a repeat replays the first answer, a reuse with another
request is refused, keys are per tenant and per route."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Client

T0 = "2024-03-04T09:00:00+00:00"


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_a_repeated_create_replays_the_first_answer_and_writes_once(client: Client) -> None:
    headers = key()
    first = client.post("/contacts", json={"name": "Once", "tags": ["a"]}, headers=headers)
    # Same request, other spelling of the same JSON: still a repeat
    again = client.post(
        "/contacts",
        data='{"tags": ["a"],  "name": "Once"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [c["id"] for c in client.ok("GET", "/contacts")["items"]] == [first.json()["id"]]
    # Without a key, the same body is a new command
    client.ok("POST", "/contacts", json={"name": "Once", "tags": ["a"]}, expect=201)
    assert len(client.ok("GET", "/contacts")["items"]) == 2


def test_the_same_key_with_another_body_or_path_is_refused(client: Client) -> None:
    headers = key()
    client.ok("POST", "/products", json={"name": "Tile"}, headers=headers, expect=201)
    reused = client.post("/products", json={"name": "Grout"}, headers=headers)
    assert reused.status_code == 422, reused.text
    error = reused.json()["error"]
    assert error["code"] == "idempotency_key_reused" and error["fields"][0]["field"] == "Idempotency-Key"
    assert [p["name"] for p in client.ok("GET", "/products")["items"]] == ["Tile"]

    # Same route template, other task in the path: another request
    t1 = client.ok("POST", "/tasks", json={"title": "one"})
    t2 = client.ok("POST", "/tasks", json={"title": "two"})
    entry_key = key()
    body = {"kind": "goods", "started_at": T0, "quantity": 1}
    made = client.ok("POST", f"/tasks/{t1['id']}/entries", json=body, headers=entry_key, expect=201)
    assert client.post(f"/tasks/{t2['id']}/entries", json=body, headers=entry_key).status_code == 422
    assert client.ok("GET", f"/tasks/{t2['id']}/entries")["items"] == []
    # ... and the true repeat still replays
    assert client.ok("POST", f"/tasks/{t1['id']}/entries", json=body, headers=entry_key) == made
    assert len(client.ok("GET", f"/tasks/{t1['id']}/entries")["items"]) == 1


def test_keys_belong_to_a_tenant_and_a_route(stack: Any, client: Client) -> None:
    shared = key()
    mine = client.ok("POST", "/teams", json={"name": "Blue"}, headers=shared, expect=201)
    other = Client(stack, f"t-{uuid.uuid4().hex[:12]}")
    theirs = other.ok("POST", "/teams", json={"name": "Blue"}, headers=shared, expect=201)
    assert theirs["id"] != mine["id"]
    # The same key on another route is another command, not a reuse
    client.ok("POST", "/memberships", json={"name": "Blue"}, headers=shared, expect=201)
    assert len(other.ok("GET", "/teams")["items"]) == 1 and len(client.ok("GET", "/teams")["items"]) == 1


def test_failed_commands_are_not_remembered(client: Client) -> None:
    headers = key()
    missing = client.post("/tasks", json={"title": "T", "client_contact_id": "c-1"}, headers=headers)
    assert missing.status_code == 422
    client.ok("POST", "/contacts", json={"id": "c-1", "name": "Now here"})
    # The first attempt failed, so the retry with the same key runs (and succeeds)
    made = client.ok(
        "POST", "/tasks", json={"title": "T", "client_contact_id": "c-1"}, headers=headers, expect=201
    )
    assert (
        client.ok("POST", "/tasks", json={"title": "T", "client_contact_id": "c-1"}, headers=headers) == made
    )


def test_async_commands_replay_their_operation(client: Client) -> None:
    headers = key()
    first = client.ok("POST", "/billable-items/compile", json={}, headers=headers, expect=202)
    again = client.post("/billable-items/compile", json={}, headers=headers)
    assert again.status_code == 202 and again.json() == first
    assert client.wait_operation(first["operation_id"])["status"] == "succeeded"


def test_stop_replays_and_a_bad_key_is_refused(client: Client) -> None:
    task = client.ok("POST", "/tasks", json={"title": "Clock"})
    entry = client.ok("POST", f"/tasks/{task['id']}/entries", json={"kind": "time", "started_at": T0})
    stop = f"/tasks/{task['id']}/entries/{entry['id']}/stop"
    headers = key()
    stopped = client.ok("POST", stop, json={"stopped_at": "2024-03-04T10:00:00Z"}, headers=headers)
    # A retried stop gets its answer again instead of "already stopped"
    assert client.ok("POST", stop, json={"stopped_at": "2024-03-04T10:00:00Z"}, headers=headers) == stopped
    assert client.post(stop, json={"stopped_at": "2024-03-04T10:00:00Z"}).status_code == 409

    for bad in ("x" * 256, ""):
        response = client.post("/teams", json={"name": "Never"}, headers={"Idempotency-Key": bad})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert client.ok("GET", "/teams")["items"] == []


def test_money_spelled_as_a_number_or_a_string_is_the_same_body(client: Client) -> None:
    # docs/api.md: money may be sent as a JSON number or a decimal string; a retry may spell it either way.
    headers = key()
    first = client.post("/products", json={"name": "Pump", "default_unit_price": 72.5}, headers=headers)
    again = client.post("/products", json={"name": "Pump", "default_unit_price": "72.50"}, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert len(client.ok("GET", "/products")["items"]) == 1
    # A different amount is another body
    other = client.post("/products", json={"name": "Pump", "default_unit_price": "72.51"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
