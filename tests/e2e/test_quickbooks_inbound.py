"""Issue #5: changes made in QuickBooks reach us, by the schedules and (sooner) by webhooks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fieldbill.store import qbo_pulls
from tests.conftest import Client, wait_for


def contact_linked_to(api: Client, qbo_id: str) -> dict[str, Any] | None:
    contacts = api.ok("GET", "/contacts?limit=200")["items"]
    return next((c for c in contacts if c.get("qbo_id") == qbo_id), None)


def test_a_customer_edited_in_quickbooks_arrives_with_the_customers_schedule(stack, connected_client: Client):
    api = connected_client
    emu = stack.emulator
    stack.aws.drain()  # the first pulls after connecting
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    emu.configure(realm, webhooks_enabled=False)  # only the schedule may bring the change
    # Given a customer created in QuickBooks and pulled by the customers schedule
    customer = emu.user_create(
        realm, "Customer", {"DisplayName": "Pat Pools", "PrimaryEmailAddr": {"Address": "pat@example.com"}}
    )
    assert contact_linked_to(api, customer["Id"]) is None
    stack.aws.fire_schedule("CustomersSync")
    stack.aws.drain()
    contact = contact_linked_to(api, customer["Id"])
    assert contact is not None and contact["name"] == "Pat Pools" and contact["email"] == "pat@example.com"
    # When a user edits it in QuickBooks
    emu.user_edit(realm, "Customer", customer["Id"], {"DisplayName": "Pat's Pool Care"})
    # Then nothing changes here before the schedule (no webhook) ...
    assert contact_linked_to(api, customer["Id"])["name"] == "Pat Pools"  # type: ignore[index]
    # ... and the next customers sync brings it, by change data capture
    stack.aws.fire_schedule("CustomersSync")
    stack.aws.drain()
    contact = contact_linked_to(api, customer["Id"])
    assert contact is not None and contact["name"] == "Pat's Pool Care" and contact["active"] is True
    status = api.ok("GET", "/quickbooks/connection")
    assert status["last_sync"]["customers"]["mode"] == "cdc"
    assert status["last_sync"]["customers"]["counts"]["updated"] == 1
    # Made inactive in QuickBooks: inactive here (its name without QuickBooks' " (deleted)")
    emu.user_edit(realm, "Customer", customer["Id"], {"Active": False})
    stack.aws.fire_schedule("CustomersSync")
    stack.aws.drain()
    contact = contact_linked_to(api, customer["Id"])
    assert contact is not None and contact["active"] is False and contact["name"] == "Pat's Pool Care"
    # The items schedule does not touch customers, and applies items
    item = emu.user_create(
        realm,
        "Item",
        {
            "Name": "Chlorine 5 gal",
            "Type": "Inventory",
            "UnitPrice": "30",
            "QtyOnHand": 5,
            "IncomeAccountRef": {"value": "2"},
            "ExpenseAccountRef": {"value": "4"},
            "AssetAccountRef": {"value": "7"},
            "InvStartDate": "2026-01-01",
        },
    )
    stack.aws.fire_schedule("InventorySync")
    stack.aws.drain()
    products = api.ok("GET", "/products?kind=inventory")["items"]
    assert [(p["name"], p["qbo_id"]) for p in products] == [("Chlorine 5 gal", item["Id"])]


def test_a_customer_edited_in_quickbooks_arrives_sooner_by_webhook(stack, connected_client: Client):
    api = connected_client
    emu = stack.emulator
    stack.aws.drain()
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a customer of ours already in QuickBooks (created there, linked here by its webhook)
    customer = emu.user_create(realm, "Customer", {"DisplayName": "Webhook Pools"})
    emu.flush_webhooks()
    stack.aws.drain()
    assert contact_linked_to(api, customer["Id"]) is not None
    # When a user edits it in QuickBooks, and QuickBooks calls our webhook
    emu.user_edit(
        realm,
        "Customer",
        customer["Id"],
        {"DisplayName": "Webhook Pool Service", "PrimaryEmailAddr": {"Address": "hi@webhook.example"}},
    )
    assert emu.flush_webhooks()
    stack.aws.drain()
    # Then the change is here without any schedule firing
    contact = contact_linked_to(api, customer["Id"])
    assert contact is not None
    assert (contact["name"], contact["email"]) == ("Webhook Pool Service", "hi@webhook.example")
    deliveries = [d for d in emu.webhook_deliveries() if d["realm"] == realm]
    assert deliveries and all(d["status"] == 200 for d in deliveries)


def synced_invoice(api: Client, contact_id: str, name: str) -> dict[str, Any]:
    """An invoice of 120.00 (1.5 h at 80.00) made by a billing run and synced to QuickBooks."""
    task = f"task-{contact_id}"
    api.ok("POST", "/contacts", json={"id": contact_id, "name": name})
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": task,
            "title": "Pool service",
            "client_contact_id": contact_id,
            "billable": True,
            "status": "done",
            "unit_price": "80.00",
        },
    )
    api.ok(
        "POST",
        f"/tasks/{task}/entries",
        json={"id": "e-1", "kind": "time", "started_at": "2026-10-05T09:00:00+00:00"},
    )
    api.ok("POST", f"/tasks/{task}/entries/e-1/stop", json={"stopped_at": "2026-10-05T10:30:00+00:00"})
    run = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    assert api.wait_run(run["id"])["status"] == "succeeded"
    invoice = api.ok("GET", "/invoices")["items"][0]
    assert invoice["sync_status"] == "synced" and invoice["total"] == "120.00"
    return dict(invoice)


def test_an_invoice_paid_in_quickbooks_shows_its_new_balance_here(stack, connected_client: Client):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given an invoice of 120.00 made by a billing run and synced to QuickBooks
    invoice = synced_invoice(api, "c-paid", "Paying Pools")
    emu.flush_webhooks()
    stack.aws.drain()
    # When the customer pays 20.00 in QuickBooks
    emu.pay_invoice(realm, invoice["qbo_id"], Decimal("20.00"))
    assert emu.flush_webhooks()
    stack.aws.drain()
    # Then the invoice here shows the open balance, still unpaid
    invoice = api.ok("GET", f"/invoices/{invoice['id']}")
    assert Decimal(invoice["balance"]) == Decimal("100.00") and invoice["status"] != "paid"
    # and the contact's account balance follows QuickBooks
    assert Decimal(api.ok("GET", "/contacts/c-paid")["balance"]) == Decimal("100.00")
    # When the rest is paid, the invoice is paid here
    emu.pay_invoice(realm, invoice["qbo_id"])
    assert emu.flush_webhooks()
    stack.aws.drain()
    invoice = wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{invoice['id']}"))["status"] == "paid" and i,
        timeout=5,
        what="paid invoice",
    )
    assert Decimal(invoice["balance"]) == 0
    assert Decimal(api.ok("GET", "/contacts/c-paid")["balance"]) == 0


def test_an_invoice_paid_in_quickbooks_without_a_webhook_is_picked_up_by_the_hourly_backfill(
    stack, connected_client: Client
):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a synced invoice, and a company whose webhooks never reach us (a lost delivery)
    invoice = synced_invoice(api, "c-quiet", "Quiet Pools")
    stack.aws.drain()
    emu.configure(realm, webhooks_enabled=False)
    # When the customer pays 20.00 in QuickBooks, nothing changes here before the backfill ...
    emu.pay_invoice(realm, invoice["qbo_id"], Decimal("20.00"))
    stack.aws.drain()
    assert api.ok("GET", f"/invoices/{invoice['id']}")["balance"] in (None, "120.00")
    # ... and the invoices backfill brings the balance (the first one reads every invoice)
    stack.aws.fire_schedule("InvoicesBackfill")
    stack.aws.drain()
    invoice = api.ok("GET", f"/invoices/{invoice['id']}")
    assert Decimal(invoice["balance"]) == Decimal("100.00") and invoice["status"] != "paid"
    # When the rest is paid, the next backfill (change data capture since the last) marks it paid
    emu.pay_invoice(realm, invoice["qbo_id"])
    stack.aws.fire_schedule("InvoicesBackfill")
    stack.aws.drain()
    invoice = api.ok("GET", f"/invoices/{invoice['id']}")
    assert Decimal(invoice["balance"]) == 0 and invoice["status"] == "paid"
    assert qbo_pulls.watermarks(api.tenant_id)["invoices"]["mode"] == "cdc"
    # through QuickBooks' machine for invoices, with the reason in the history
    history = api.ok("GET", f"/history/invoice/{invoice['id']}")["history"]
    paid = [h for h in history if h["to"] == "paid"]
    assert len(paid) == 1 and paid[0]["actor"] == "quickbooks_inbound" and "balance 0" in paid[0]["reason"]


# ---- issue 17: a customer's phone and billing address, both ways, without ping-pong
def test_phone_and_address_come_in_from_quickbooks_and_ours_go_there_and_back_unchanged(
    stack, connected_client: Client
):
    api = connected_client
    emu = stack.emulator
    stack.aws.drain()
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    emu.configure(realm, webhooks_enabled=False)
    # Given a customer made in QuickBooks with a phone and a structured billing address
    made = emu.user_create(
        realm,
        "Customer",
        {
            "DisplayName": "Theta Pools",
            "PrimaryPhone": {"FreeFormNumber": "(813) 555-0100"},
            "BillAddr": {
                "Line1": "12 Palm Road",
                "City": "Tampa",
                "CountrySubDivisionCode": "FL",
                "PostalCode": "33602",
            },
        },
    )
    stack.aws.fire_schedule("CustomersSync")
    stack.aws.drain()
    theirs = contact_linked_to(api, made["Id"])
    assert theirs is not None
    assert (theirs["phone"], theirs["address"]) == ("(813) 555-0100", "12 Palm Road\nTampa, FL 33602")
    # And our contact with a phone and an address, in QuickBooks at once
    ours = api.ok(
        "POST",
        "/contacts",
        json={"name": "Iota Pools", "phone": "813-555-0111", "address": "1 Bay St\nTampa, FL 33602"},
    )
    customer = wait_for(
        lambda: (
            (c := api.ok("GET", f"/contacts/{ours['id']}", expect=200))["qbo_id"]
            and not c["qbo_dirty_since"]
            and c
        ),
        timeout=30,
        what="contact in QuickBooks",
    )
    sent = emu.entity(realm, "Customer", customer["qbo_id"])
    assert (
        sent["BillAddr"]["Line2"] == "Tampa, FL 33602"
        and sent["PrimaryPhone"]["FreeFormNumber"] == "813-555-0111"
    )
    # When QuickBooks changes its email only and the customers sync brings it back
    emu.user_edit(
        realm, "Customer", customer["qbo_id"], {"PrimaryEmailAddr": {"Address": "iota@example.com"}}
    )
    token = emu.entity(realm, "Customer", customer["qbo_id"])["SyncToken"]
    stack.aws.fire_schedule("CustomersSync")
    stack.aws.drain()
    # Then ours keeps its phone and address, takes the email, and nothing is pushed back
    back = api.ok("GET", f"/contacts/{ours['id']}", expect=200)
    assert (back["phone"], back["address"], back["email"]) == (
        "813-555-0111",
        "1 Bay St\nTampa, FL 33602",
        "iota@example.com",
    )
    assert back["qbo_dirty_since"] is None
    assert emu.entity(realm, "Customer", customer["qbo_id"])["SyncToken"] == token
