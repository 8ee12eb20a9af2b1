"""Reconciliation with QuickBooks (issue 15 item 6; issue 16 item 7; issue 13's balance check):
a report of every difference, with one-click repairs where safe."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fieldbill.quickbooks import tokens
from tests.conftest import Client, wait_for
from tests.e2e.test_quickbooks_inbound import synced_invoice

PERIOD = {
    "date_from": (date.today() - timedelta(days=60)).isoformat(),
    "date_to": (date.today() + timedelta(days=1)).isoformat(),
}


def reconcile(api: Client) -> dict[str, Any]:
    accepted = api.ok("POST", "/quickbooks/reconcile", json=PERIOD, expect=202)
    operation = api.wait_operation(accepted["operation_id"])
    assert operation["status"] == "succeeded", operation
    return dict(operation["result"])


def kinds(report: dict[str, Any], invoice_id: str | None = None) -> set[str]:
    return {
        d["kind"] for d in report["differences"] if invoice_id is None or d.get("invoice_id") == invoice_id
    }


def test_a_total_changed_in_quickbooks_is_listed_and_repaired_in_one_click(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    tokens.save_settings(api.tenant_id, {"automated_tax": False}, "test")  # the tax is ours: sent
    invoice = synced_invoice(api, "c-recon", "Recon Pools")
    stack.aws.drain()
    assert reconcile(api)["differences"] == []  # both sides agree
    # When someone adds 5.00 of tax to it in QuickBooks
    stack.emulator.user_edit(realm, "Invoice", invoice["qbo_id"], {"TxnTaxDetail": {"TotalTax": "5.00"}})
    report = reconcile(api)
    # Then the report lists the total and the tax, each with its repair (ours sent again)
    assert {"total", "tax"} <= kinds(report, invoice["id"])
    total = next(d for d in report["differences"] if d["kind"] == "total")
    assert (total["ours"], total["quickbooks"]) == ("120.00", "125.00")
    assert total["repair"] == {
        "kind": "sync_invoice",
        "invoice_id": invoice["id"],
        "qbo_id": invoice["qbo_id"],
    }
    # When the repair is clicked, ours goes back to QuickBooks and the difference is gone
    api.ok(
        "POST", "/quickbooks/repairs", json={"kind": "sync_invoice", "invoice_id": invoice["id"]}, expect=202
    )
    wait_for(
        lambda: (
            Decimal(str(stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])["TotalAmt"]))
            == Decimal("120")
        ),
        timeout=30,
        what="ours pushed again",
    )
    stack.aws.drain()
    assert "total" not in kinds(reconcile(api), invoice["id"])


def test_a_payment_deleted_in_quickbooks_shows_as_a_difference_until_pulled(stack, connected_client: Client):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    invoice = synced_invoice(api, "c-pay", "Payment Pools")
    stack.aws.drain()
    emu.configure(realm, webhooks_enabled=False)  # only the schedule brings QuickBooks' changes
    # Given a payment made in QuickBooks, brought here by the scheduled backfill
    payment = emu.pay_invoice(realm, invoice["qbo_id"], Decimal("20.00"))
    stack.aws.fire_schedule("InvoicesBackfill")
    stack.aws.drain()
    assert Decimal(api.ok("GET", f"/invoices/{invoice['id']}")["balance"]) == Decimal("100.00")
    # Then balances match, the customer's too
    report = reconcile(api)
    assert not kinds(report) & {"balance", "customer_balance"}, report["differences"]
    # When the payment is deleted in QuickBooks
    emu.user_delete(realm, "Payment", payment["Id"])
    report = reconcile(api)
    # Then the invoice's balance and the customer's balance differ, the invoice explaining it
    balance = next(d for d in report["differences"] if d["kind"] == "balance")
    assert (balance["ours"], balance["quickbooks"]) == ("100.00", "120.00")
    customer = next(d for d in report["differences"] if d["kind"] == "customer_balance")
    assert (customer["ours"], customer["quickbooks"]) == ("100.00", "120.00")
    assert [i["invoice_id"] for i in customer["invoices"]] == [invoice["id"]]
    # until it is pulled (the repair reads QuickBooks' invoice back)
    repair = balance["repair"]
    assert repair["kind"] == "pull_invoice"
    api.ok(
        "POST",
        "/quickbooks/repairs",
        json={"kind": repair["kind"], "invoice_id": repair["invoice_id"]},
        expect=202,
    )
    wait_for(
        lambda: Decimal(api.ok("GET", f"/invoices/{invoice['id']}")["balance"]) == 120,
        timeout=30,
        what="pulled",
    )
    assert not kinds(reconcile(api)) & {"balance", "customer_balance"}


def test_the_schedule_reconciles_every_connected_company(stack, connected_client: Client):
    api = connected_client
    synced_invoice(api, "c-sched", "Schedule Pools")
    stack.aws.drain()
    result = stack.aws.fire_schedule("Reconciliation")
    assert result["data_type"] == "reconcile" and result["companies"] >= 1
    operation_id = result["operations"][api.tenant_id]
    operation = api.wait_operation(operation_id)
    assert operation["status"] == "succeeded" and operation["result"]["differences"] == []
    assert operation["result"]["invoices_checked"] == 1
