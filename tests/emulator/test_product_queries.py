"""Every query shape the product sends, sent by the product's own code to the emulator.

The emulator refuses a property QuickBooks does not know or cannot filter on (4001, as QuickBooks
does), so a query here that names a wrong property fails instead of answering "nothing found" and
letting the caller create a duplicate. Each test also checks that the query finds what it looks for.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fieldbill.api import routes_quickbooks
from fieldbill.quickbooks import cdc, mapping
from fieldbill.quickbooks import client as client_module
from fieldbill.quickbooks.client import QboClient
from fieldbill.quickbooks.errors import InvalidQuery
from fieldbill.settings.model import Settings
from fieldbill.workflows.qbo_sync import invoices, references
from tests.emulator.conftest import Qbo

TENANT = "t-queries"


@pytest.fixture
def client(emu, realm: str, tokens: dict[str, Any]) -> QboClient:
    settings = Settings(TABLE_NAME="unused", QBO_API_BASE=emu.api_base)  # type: ignore[call-arg]
    return QboClient(
        TENANT,
        token_provider=lambda rejected: (tokens["access_token"], realm),
        settings=settings,
        use_limiter=False,
    )


@pytest.fixture
def tenant(client: QboClient) -> Any:
    # the part of workflows.qbo_sync.tenants.Tenant the look-ups read
    return SimpleNamespace(client=client, tenant_id=TENANT, customers={}, items={})


def test_the_pulls_full_reads_of_every_data_type(client: QboClient, qbo: Qbo):
    # Given a customer, a service and a non-inventory item, an inactive customer, and an invoice
    cust = qbo.customer("Pull Co")
    gone = qbo.customer("Gone Co")
    qbo.post("customer", {"Id": gone["Id"], "SyncToken": gone["SyncToken"], "sparse": True, "Active": False})
    service = qbo.item("Weekly service")
    goods = qbo.item("Chlorine", Type="NonInventory")
    invoice = qbo.invoice(cust["Id"], service["Id"], [(1, 10)])
    # When the pull reads each data type in full (cdc.full: the product's query text)
    read = {data_type: cdc.full(client, data_type) for data_type in cdc.ENTITIES}
    # Then every query was accepted and found its records, inactive ones included
    ids = {
        data_type: {str(r["Id"]) for rows in c.rows.values() for r in rows} for data_type, c in read.items()
    }
    assert ids["customers"] == {cust["Id"], gone["Id"]}
    assert ids["service_types"] == {service["Id"]}
    assert ids["items"] == {goods["Id"]}
    assert ids["invoices"] == {invoice["Id"]}


def test_name_look_ups_of_customers_and_items(tenant: Any, qbo: Qbo):
    # Given an active customer and an inactive item
    cust = qbo.customer("Look Up Co")
    item = qbo.item("Old service")
    qbo.post("item", {"Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True, "Active": False})
    # When the sync engine looks them up by name (an inactive one is reactivated)
    found = references.find_by_name(tenant, "Customer", "DisplayName", "Look Up Co", include_inactive=True)
    revived = references.find_by_name(tenant, "Item", "Name", "Old service (deleted)", include_inactive=True)
    # Then both queries were accepted and found them
    assert found is not None and found["Id"] == cust["Id"]
    assert revived is not None and revived["Id"] == item["Id"] and revived["Active"] is True


def test_many_contacts_are_linked_by_one_display_name_query(tenant: Any, qbo: Qbo, monkeypatch):
    # Given two contacts whose customers already exist in QuickBooks
    made = {n: qbo.customer(n)["Id"] for n in ("Ann One", "Bob Two")}
    contacts = {
        f"c{i}": SimpleNamespace(id=f"c{i}", name=n, email=None, qbo_id=None) for i, n in enumerate(made)
    }
    monkeypatch.setattr(references.qbo_links, "contacts", lambda tenant_id, wanted: contacts)
    linked: dict[str, str] = {}
    monkeypatch.setattr(
        references, "link_contact", lambda t, rec, row: linked.__setitem__(rec.name, row["Id"])
    )
    # When the sync engine links them (references.ensure_customers: DisplayName IN (...))
    failed = references.ensure_customers(tenant, list(contacts))
    # Then the one query found both: nothing to create
    assert failed == {} and linked == made


@pytest.mark.parametrize("with_doc_number", [True, False])
def test_invoice_look_ups_after_a_lost_answer(tenant: Any, qbo: Qbo, with_doc_number: bool):
    # Given our invoice in QuickBooks, found again by DocNumber, or by customer and date
    cust, item = qbo.customer("Lost Answer Co"), qbo.item()
    ours = SimpleNamespace(tenant_id=TENANT, id="inv-1")
    marker = mapping.invoice_marker(TENANT, "inv-1")
    extra: dict[str, Any] = {"PrivateNote": marker, "TxnDate": "2026-11-30"}
    if with_doc_number:
        extra["DocNumber"] = "FB-1"
    created = qbo.invoice(cust["Id"], item["Id"], [(1, 10)], **extra)
    body = {"CustomerRef": {"value": cust["Id"]}, **extra}
    # When the sync engine looks it up, alone and in a group
    one = invoices.find_invoice(tenant, ours, body)  # type: ignore[arg-type]
    many = invoices.find_invoices(tenant, [(ours, body)])  # type: ignore[list-item]
    # Then both queries were accepted and found it
    assert one is not None and one["Id"] == created["Id"]
    assert many["inv-1"]["Id"] == created["Id"]


def test_the_account_lists_of_the_settings(client: QboClient, monkeypatch):
    monkeypatch.setattr(routes_quickbooks, "_connected", lambda tenant: None)
    monkeypatch.setattr(client_module, "QboClient", lambda tenant: client)
    for account_type in routes_quickbooks.ACCOUNT_TYPES:
        rows = routes_quickbooks.live_accounts(TENANT, account_type)
        assert rows and {r["account_type"] for r in rows} <= set(
            routes_quickbooks.ACCOUNT_TYPES[account_type]
        )


def test_a_look_up_naming_a_wrong_property_raises_and_is_never_taken_for_not_found(tenant: Any, qbo: Qbo):
    # Given a customer the look-up should have found
    qbo.customer("Typo Co")
    # When a look-up names a property QuickBooks does not have
    # Then it raises (4001) instead of answering None, on which the caller would create a duplicate
    with pytest.raises(InvalidQuery) as info:
        references.find_by_name(tenant, "Customer", "DisplyName", "Typo Co")
    assert info.value.code == "4001"
    assert len(qbo.query("select * from Customer where DisplayName = 'Typo Co'")["Customer"]) == 1
