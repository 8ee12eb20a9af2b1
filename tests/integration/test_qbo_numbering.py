"""Invoice numbers in QuickBooks (issue 15 item 4): with custom transaction numbers on we number
and send DocNumber; a number already taken there (6140) is resolved, never resent blind."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.transactions import TransactWrite

from fieldbill.quickbooks import tokens
from fieldbill.store import numbering
from fieldbill.store.models import META, Entity, Invoice
from tests.integration.test_qbo_sync import (
    load_invoice,
    ours,
    qbo_connect,
    qbo_tenant,
    seed_contact,
    seed_invoice,
    seed_product,
    send,
    wait_settled,
)

pytestmark = pytest.mark.integration


def numbered_invoice(tenant: str) -> Invoice:
    """A seeded invoice that takes the tenant's next number, as generate does."""
    invoice = seed_invoice(tenant)

    def write(tx: TransactWrite, number: str | None) -> None:
        record = Invoice(Invoice.key(tenant, invoice.id), META)
        tx.update(record, actions=[Invoice.number.set(number)], condition=Entity.pk.exists())

    numbering.write_numbered(tenant, "invoice", invoice.id, write, mode=numbering.Mode.AUTOMATIC_FIXED)
    return load_invoice(tenant, invoice.id)


def custom_numbers_company(stack: Any) -> tuple[str, str]:
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant, custom_txn_numbers=True)
    tokens.save_settings(tenant, {"custom_txn_numbers": True}, "test")
    seed_contact(tenant, "Numbered Owner")
    seed_product(tenant, "Service")
    return tenant, realm


def test_custom_numbers_on_sends_our_number_as_docnumber(stack):
    tenant, realm = custom_numbers_company(stack)
    invoice = numbered_invoice(tenant)
    assert invoice.number == "1001"
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    assert synced.sync_status == "synced", synced.sync_error
    (qbo,) = ours(stack, realm)
    assert qbo["DocNumber"] == "1001" == synced.qbo_doc_number == synced.number


def test_a_number_taken_in_quickbooks_6140_renumbers_ours_and_keeps_the_old_one_used(stack):
    tenant, realm = custom_numbers_company(stack)
    # Given someone typed invoice 1001 in QuickBooks (our next number)
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": "Walk-in"})
    income = next(a for a in stack.emulator.entities(realm, "Account") if a["AccountType"] == "Income")
    item = stack.emulator.user_create(
        realm,
        "Item",
        {"Name": "Counter sale", "Type": "Service", "IncomeAccountRef": {"value": income["Id"]}},
    )
    typed = stack.emulator.user_create(
        realm,
        "Invoice",
        {
            "DocNumber": "1001",
            "CustomerRef": {"value": customer["Id"]},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 5,
                    "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 5},
                }
            ],
        },
    )
    invoice = numbered_invoice(tenant)
    # When our invoice 1001 syncs (QuickBooks answers 6140)
    send(stack, tenant, invoice.id)
    (synced,) = wait_settled(tenant, [invoice.id])
    # Then ours took the next number and went in with it; the typed one is untouched
    assert synced.sync_status == "synced", synced.sync_error
    assert synced.number == "1002" == synced.qbo_doc_number
    (qbo,) = ours(stack, realm)
    assert qbo["DocNumber"] == "1002"
    assert numbering.owner_of(tenant, "invoice", "1001") == f"quickbooks:Invoice:{typed['Id']}"
    assert numbering.next_number(tenant, "invoice") == 1003
    assert any("renumbered 1002" in (h.reason or "") for h in synced.history)
