"""Issue #5 (3, 4): invoice destination, status badges, and our changes pushed to QuickBooks at once.

Everything goes through the HTTP API and the real workers on the local stack; QuickBooks is the
emulator. No billing run: an invoice created over the API for QuickBooks is queued by itself.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, choose_settings, connect_quickbooks, wait_for


def log_work(api: Client, contact: str, task: str, hours: list[int]) -> None:
    """A contact, a done billable task at 80.00/hour, and one stopped time entry per hour count."""
    api.ok("POST", "/contacts", json={"id": contact, "name": f"{contact} Pools"})
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
    for day, h in enumerate(hours, start=5):
        entry = f"{task}-e{day}"
        api.ok(
            "POST",
            f"/tasks/{task}/entries",
            json={"id": entry, "kind": "time", "started_at": f"2026-10-{day:02d}T09:00:00+00:00"},
        )
        api.ok(
            "POST",
            f"/tasks/{task}/entries/{entry}/stop",
            json={"stopped_at": f"2026-10-{day:02d}T{9 + h:02d}:00:00+00:00"},
        )


def compile_items(api: Client) -> list[dict[str, Any]]:
    op = api.ok("POST", "/billable-items/compile", json={}, expect=202)
    assert api.wait_operation(op["operation_id"])["status"] == "succeeded"
    return list(api.ok("GET", "/billable-items?status=pending")["items"])


def generate(api: Client, item_ids: list[str], **extra: Any) -> dict[str, Any]:
    op = api.ok("POST", "/invoices/generate", json={"item_ids": item_ids, **extra}, expect=202)
    done = api.wait_operation(op["operation_id"])
    assert done["status"] == "succeeded", done
    return dict(done["result"])


def invoice_badge(api: Client, invoice_id: str, badge: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        invoice = api.ok("GET", f"/invoices/{invoice_id}")
        return invoice if invoice["badge"] == badge else None

    return dict(wait_for(reached, timeout=60, interval=0.2, what=f"invoice badge {badge}"))


def ours(stack: Any, realm: str) -> list[dict[str, Any]]:
    return [
        e
        for e in stack.emulator.entities(realm, "Invoice")
        if str(e.get("PrivateNote", "")).startswith("fieldbill:invoice:")
    ]


def test_destination_and_badges_for_invoices_and_services(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    log_work(api, "c-local", "t-local", [1, 2])
    log_work(api, "c-qbo", "t-qbo", [1])
    log_work(api, "c-skip", "t-skip", [3])
    items = compile_items(api)
    by_contact: dict[str, list[str]] = {}
    for item in items:
        by_contact.setdefault(item["contact_id"], []).append(item["id"])
    # Not invoiced yet, every service shows where its invoice will go: QuickBooks (the company uses it)
    assert {i["badge"] for i in items} == {"QBO"} and all(i["badge_detail"] is None for i in items)

    # A service marked not billable shows Unbillable, and only it; it can become billable again
    (skip,) = by_contact["c-skip"]
    marked = api.ok("PATCH", f"/billable-items/{skip}", json={"status": "unbillable", "reason": "warranty"})
    assert (marked["status"], marked["badge"]) == ("unbillable", "Unbillable")
    assert [i["id"] for i in api.ok("GET", "/billable-items?status=unbillable")["items"]] == [skip]
    assert api.ok("PATCH", f"/billable-items/{skip}", json={"status": "pending"})["badge"] == "QBO"
    api.ok("PATCH", f"/billable-items/{skip}", json={"status": "unbillable"})
    refused = api.patch(f"/billable-items/{skip}", json={"status": "invoiced"})
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["field"] == "status"

    # A local invoice: kept here, badge Local on it and on its services, nothing sent to QuickBooks
    local = generate(api, by_contact["c-local"], destination="local")
    assert local["destination"] == "local" and local["queued_for_quickbooks"] == 0
    (local_id,) = local["invoice_ids"]
    local_invoice = api.ok("GET", f"/invoices/{local_id}")
    assert (local_invoice["destination"], local_invoice["badge"]) == ("local", "Local")

    # An invoice for QuickBooks (the default when connected) is queued at once: Pending, then QBO
    qbo = generate(api, by_contact["c-qbo"])
    assert qbo["destination"] == "quickbooks" and qbo["queued_for_quickbooks"] == 1
    (qbo_id,) = qbo["invoice_ids"]
    assert api.ok("GET", f"/invoices/{qbo_id}")["badge"] in ("Pending", "QBO")
    synced = invoice_badge(api, qbo_id, "QBO")
    assert [q["Id"] for q in ours(stack, realm)] == [synced["qbo_id"]]

    # Unless the drafts are to be reviewed first: then nothing is queued until a sync request
    log_work(api, "c-draft", "t-draft", [1])
    drafts = [i["id"] for i in api.ok("GET", "/billable-items?status=pending&contact_id=c-draft")["items"]]
    assert not drafts  # not compiled yet
    drafts = [i["id"] for i in compile_items(api) if i["contact_id"] == "c-draft"]
    held = generate(api, drafts, sync=False)
    assert (held["destination"], held["queued_for_quickbooks"]) == ("quickbooks", 0)
    (draft_id,) = held["invoice_ids"]
    draft = api.ok("GET", f"/invoices/{draft_id}")
    assert (draft["sync_status"], draft["badge"]) == ("not_synced", "Pending")
    api.ok("POST", f"/invoices/{draft_id}/sync", expect=202)
    invoice_badge(api, draft_id, "QBO")

    # The billing page: invoiced services carry their invoice's badge, filtered by destination
    invoiced = {i["id"]: i for i in api.ok("GET", "/billable-items?status=invoiced")["items"]}
    assert {invoiced[i]["badge"] for i in by_contact["c-local"]} == {"Local"}
    assert {invoiced[i]["badge"] for i in by_contact["c-qbo"]} == {"QBO"}
    only_local = api.ok("GET", "/billable-items?status=invoiced&destination=local")["items"]
    assert sorted(i["id"] for i in only_local) == sorted(by_contact["c-local"])
    bad = api.get("/billable-items?destination=desktop")
    assert bad.status_code == 400 and "destination" in bad.text  # a malformed query parameter
    # and the invoice list shows each invoice's badge
    listed = {i["id"]: i["badge"] for i in api.ok("GET", "/invoices")["items"]}
    assert listed == {local_id: "Local", qbo_id: "QBO", draft_id: "QBO"}


def test_error_badge_names_the_missing_setting_until_setup_is_done(stack, client: Client):
    api = client
    # Before any connection, invoices default to local and QuickBooks cannot be chosen
    log_work(api, "c-1", "t-1", [2])
    (item,) = compile_items(api)
    assert item["badge"] == "Local"
    refused = api.post("/invoices/generate", json={"item_ids": [item["id"]], "destination": "quickbooks"})
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["field"] == "destination"
    assert api.ok("GET", "/billable-items?status=pending")["items"][0]["status"] == "pending"  # unchanged

    # Connected but the set-up (default accounts) not done: the invoice shows Error with the reason
    realm = connect_quickbooks(stack, api, settings=False)
    assert api.ok("GET", f"/billable-items/{item['id']}")["badge"] == "QBO"
    (invoice_id,) = generate(api, [item["id"]])["invoice_ids"]
    failed = invoice_badge(api, invoice_id, "Error")
    assert failed["badge_detail"]["code"] == "fieldbill.settings_incomplete"
    assert failed["badge_detail"]["element"] == "default_income_account"
    assert "PUT /quickbooks/settings" in failed["badge_detail"]["detail"]
    assert api.ok("GET", f"/billable-items/{item['id']}")["badge"] == "Error"
    assert ours(stack, realm) == []

    # When the settings are chosen, the refused invoice goes on by itself
    choose_settings(api)
    synced = invoice_badge(api, invoice_id, "QBO")
    assert [q["Id"] for q in ours(stack, realm)] == [synced["qbo_id"]]


def test_edits_of_customers_and_products_reach_quickbooks_at_once(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]

    def customer_named(name: str) -> dict[str, Any] | None:
        return next((c for c in stack.emulator.entities(realm, "Customer") if c["DisplayName"] == name), None)

    def item_named(name: str) -> dict[str, Any] | None:
        return next((i for i in stack.emulator.entities(realm, "Item") if i["Name"] == name), None)

    # A product added here is created in QuickBooks on the chosen default income account
    settings = api.ok("GET", "/quickbooks/connection")["settings"]
    api.ok(
        "POST",
        "/products",
        json={"id": "p-acid", "name": "Acid wash", "kind": "service", "default_unit_price": "150.00"},
    )
    created = wait_for(lambda: item_named("Acid wash"), timeout=30, what="item created in QuickBooks")
    assert created["IncomeAccountRef"]["value"] == settings["default_income_account"]
    assert str(created["UnitPrice"]) in ("150", "150.0", "150.00")
    product = wait_for(lambda: (p := api.ok("GET", "/products/p-acid"))["qbo_id"] and p, what="product link")
    assert product["qbo_id"] == created["Id"]

    # Its new price and name follow, as a sparse update of the same item
    api.ok("PATCH", "/products/p-acid", json={"name": "Acid wash (full)", "default_unit_price": "175.00"})
    renamed = wait_for(lambda: item_named("Acid wash (full)"), timeout=30, what="item renamed in QuickBooks")
    assert renamed["Id"] == created["Id"] and str(renamed["UnitPrice"]) in ("175", "175.0", "175.00")
    assert item_named("Acid wash") is None

    # A customer's edit here reaches QuickBooks: created if it was not there yet, then updated
    api.ok("POST", "/contacts", json={"id": "c-edit", "name": "Edit Pools", "email": "a@example.com"})
    api.ok("PATCH", "/contacts/c-edit", json={"email": "office@example.com"})
    # (created at once, issue 15: the edit that follows reaches it too)
    customer = wait_for(
        lambda: (
            (c := customer_named("Edit Pools"))
            and c["PrimaryEmailAddr"]["Address"] == "office@example.com"
            and c
        ),
        timeout=30,
        what="customer in QuickBooks with the edited email",
    )
    wait_for(lambda: api.ok("GET", "/contacts/c-edit")["qbo_id"], what="contact link")
    api.ok("PATCH", "/contacts/c-edit", json={"name": "Edit Pools & Spas"})
    moved = wait_for(lambda: customer_named("Edit Pools & Spas"), timeout=30, what="customer renamed")
    assert moved["Id"] == customer["Id"]
    assert len([c for c in stack.emulator.entities(realm, "Customer") if c["Id"] == customer["Id"]]) == 1
