"""python-quickbooks (an independent client) against the emulator."""

from __future__ import annotations

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.exceptions import QuickbooksException, ValidationException
from quickbooks.objects.account import Account
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

from tests.emulator.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI


@pytest.fixture
def qb(emu, realm, tokens, monkeypatch) -> QuickBooks:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # requests-oauthlib refuses http:// otherwise
    monkeypatch.setattr(QuickBooks, "sandbox_api_url_v3", emu.api_base)
    monkeypatch.setattr(QuickBooks, "api_url_v3", emu.api_base)
    auth = AuthClient(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
        environment=emu.discovery_url,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        realm_id=realm,
    )
    return QuickBooks(
        auth_client=auth, refresh_token=tokens["refresh_token"], company_id=realm, minorversion=75
    )


def _line(item: Item, qty, price) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = round(qty * price, 2)
    line.Description = "weekly service"
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    return line


def test_customer_item_invoice_roundtrip(qb, emu, realm):
    customer = Customer()
    customer.DisplayName = "Py Client"
    customer = customer.save(qb=qb)
    assert customer.Id and customer.SyncToken == "0"

    income = Account.where("AccountType = 'Income' AND Name = 'Services'", qb=qb)[0]
    item = Item()
    item.Name = "Weekly pool service"
    item.Type = "Service"
    item.UnitPrice = 85
    item.IncomeAccountRef = income.to_ref()
    item = item.save(qb=qb)

    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = [_line(item, 2, 85), _line(item, 1, 12.5)]
    invoice = invoice.save(qb=qb)
    assert invoice.DocNumber == "1001" and invoice.TotalAmt == 182.5

    assert [c.Id for c in Customer.filter(DisplayName="Py Client", qb=qb)] == [customer.Id]
    assert Item.get(item.Id, qb=qb).Name == "Weekly pool service"
    assert Customer.count(qb=qb) == 1
    (found,) = Invoice.query("SELECT * FROM Invoice WHERE TotalAmt > '100'", qb=qb)
    assert found.Id == invoice.Id and found.Balance == 182.5

    # update with the SyncToken it holds, then a stale one
    customer.Notes = "updated"
    customer.save(qb=qb)
    stale = Customer.get(customer.Id, qb=qb)
    stale.SyncToken = "0"
    with pytest.raises(QuickbooksException) as info:
        stale.save(qb=qb)
    assert info.value.error_code == 5010


def test_validation_errors_surface(qb):
    dup = Customer()
    dup.DisplayName = "Same"
    dup.save(qb=qb)
    again = Customer()
    again.DisplayName = "Same"
    with pytest.raises(QuickbooksException) as info:
        again.save(qb=qb)
    assert info.value.error_code == 6240
    item = Item()
    item.Name = "No income account"
    item.Type = "Service"
    with pytest.raises(QuickbooksException) as info:
        item.save(qb=qb)
    assert info.value.error_code == 6000
    bad_name = Customer()
    bad_name.DisplayName = "a:b"
    with pytest.raises(ValidationException):
        bad_name.save(qb=qb)


def test_batch_create(qb, emu, realm):
    customers = []
    for i in range(3):
        c = Customer()
        c.DisplayName = f"Batch {i}"
        customers.append(c)
    dup = Customer()
    dup.DisplayName = "Batch 0"
    result = batch_create([*customers, dup], qb=qb)
    assert len(result.successes) == 3 and len(result.faults) == 1
    assert result.faults[0].Error[0].code == "6240"
    assert len(emu.entities(realm, "Customer")) == 3
