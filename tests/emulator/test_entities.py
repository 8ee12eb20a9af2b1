"""Entity rules: ids and SyncTokens, validation codes and fault shapes, invoice arithmetic, payments."""

from __future__ import annotations

from decimal import Decimal

from tests.emulator.conftest import Qbo, assert_fault, invoice_body, sales_line


def test_create_read_and_metadata(qbo: Qbo):
    cust = qbo.customer("Ann Smith", PrimaryEmailAddr={"Address": "ann@example.com"})
    assert cust["Id"].isdigit() and cust["SyncToken"] == "0"
    assert {"CreateTime", "LastUpdatedTime"} <= set(cust["MetaData"])
    got = qbo.get(f"customer/{cust['Id']}").json()
    assert got["Customer"]["DisplayName"] == "Ann Smith"
    assert "time" in got


def test_read_missing_is_610(qbo: Qbo):
    assert_fault(qbo.get("invoice/999"), 400, "610")


def test_full_and_sparse_update_and_stale_synctoken(qbo: Qbo):
    cust = qbo.customer("Bob", CompanyName="Bob's Pools", Notes="vip")
    sparse = qbo.create("Customer", {"Id": cust["Id"], "SyncToken": "0", "sparse": True, "Notes": "gold"})
    assert sparse["SyncToken"] == "1" and sparse["CompanyName"] == "Bob's Pools" and sparse["Notes"] == "gold"
    full = qbo.create("Customer", {"Id": cust["Id"], "SyncToken": "1", "DisplayName": "Bob"})
    assert full["SyncToken"] == "2" and "CompanyName" not in full  # full update nulls omitted fields
    err = assert_fault(
        qbo.post("customer", {"Id": cust["Id"], "SyncToken": "1", "sparse": True, "Notes": "x"}), 400, "5010"
    )
    assert err["Message"] == "Stale Object Error"


def test_customer_name_rules(qbo: Qbo):
    qbo.customer("Carol")
    err = assert_fault(qbo.post("customer", {"DisplayName": "carol"}), 400, "6240")
    assert err["Message"] == "Duplicate Name Exists Error"
    assert_fault(qbo.post("customer", {"DisplayName": "A:B"}), 400, "2040")
    assert_fault(qbo.post("customer", {"DisplayName": "x" * 501}), 400, "2050")
    assert qbo.customer("y" * 500)["DisplayName"] == "y" * 500
    assert qbo.create("Customer", {"GivenName": "Dan", "FamilyName": "Lee"})["DisplayName"] == "Dan Lee"


def test_customers_cannot_be_deleted_only_inactive(qbo: Qbo, emu, realm):
    cust = qbo.customer("Eve")
    assert_fault(qbo.post("customer", {"Id": cust["Id"], "SyncToken": "0"}, operation="delete"), 400, "500")
    gone = qbo.create("Customer", {"Id": cust["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert gone["Active"] is False and gone["DisplayName"] == "Eve (deleted)"
    assert qbo.customer("Eve")["Id"] != cust["Id"]  # the name is free again
    assert "Customer" not in qbo.query("select * from Customer where DisplayName = 'Eve (deleted)'")
    inactive = qbo.query("select * from Customer where Active = false")["Customer"]
    assert [c["Id"] for c in inactive] == [cust["Id"]]


def test_item_rules(qbo: Qbo):
    qbo.item("Filter clean")
    assert_fault(
        qbo.post("item", {"Name": "FILTER CLEAN", "Type": "Service", "IncomeAccountRef": {"value": "1"}}),
        400,
        "6240",
    )
    assert_fault(
        qbo.post("item", {"Name": "n" * 101, "Type": "Service", "IncomeAccountRef": {"value": "1"}}),
        400,
        "2050",
    )
    err = assert_fault(qbo.post("item", {"Name": "No account", "Type": "Service"}), 400, "6000")
    assert err["element"] == "IncomeAccountRef"
    assert_fault(
        qbo.post("item", {"Name": "Bad acct", "Type": "Service", "IncomeAccountRef": {"value": "999"}}),
        400,
        "2500",
    )
    item = qbo.item("Chlorine", price="12.345")
    assert item["IncomeAccountRef"] == {"value": "1", "name": "Services"}


def test_seeded_accounts_and_taxcodes(qbo: Qbo):
    income = qbo.query("select * from Account where AccountType = 'Income'")["Account"]
    assert "Services" in {a["Name"] for a in income}
    names = {a["Name"] for a in qbo.query("select * from Account")["Account"]}
    assert {"Cost of Goods Sold", "Services"} <= names
    codes = {t["Id"] for t in qbo.query("select * from TaxCode")["TaxCode"]}
    assert codes == {"TAX", "NON"}
    prefs = qbo.get("preferences").json()["Preferences"]
    assert prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is False


def test_invoice_arithmetic_subtotal_and_docnumber(qbo: Qbo):
    cust = qbo.customer()
    item = qbo.item()
    inv = qbo.invoice(cust["Id"], item["Id"], [(3, "19.99"), ("1.5", "33.33"), (1, "0.1"), (1, "0.2")])
    amounts = [Decimal(str(line["Amount"])) for line in inv["Line"]]
    assert amounts[:4] == [
        Decimal("59.97"),
        Decimal("50.00"),
        Decimal("0.1"),
        Decimal("0.2"),
    ]  # 49.995 -> 50.00
    subtotal = inv["Line"][-1]
    assert subtotal["DetailType"] == "SubTotalLineDetail"
    assert Decimal(str(subtotal["Amount"])) == Decimal("110.27")
    assert Decimal(str(inv["TotalAmt"])) == Decimal("110.27") == Decimal(str(inv["Balance"]))
    assert inv["DocNumber"] == "1001"
    assert inv["CustomerRef"]["name"] == "Jane Doe"
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 10)])["DocNumber"] == "1002"


def test_invoice_validation(qbo: Qbo):
    cust = qbo.customer()
    item = qbo.item()
    bad_amount = {
        "CustomerRef": {"value": cust["Id"]},
        "Line": [sales_line(item["Id"], 2, "10.005", amount=20.0)],
    }
    err = assert_fault(qbo.post("invoice", bad_amount), 400, "6070")
    assert "Amount is not equal to UnitPrice * Qty" in err["Detail"]
    assert_fault(qbo.post("invoice", invoice_body("999", item["Id"], [(1, 1)])), 400, "2500")
    assert_fault(qbo.post("invoice", invoice_body(cust["Id"], "999", [(1, 1)])), 400, "2500")
    assert_fault(qbo.post("invoice", {"CustomerRef": {"value": cust["Id"]}, "Line": []}), 400, "2020")
    assert_fault(
        qbo.post("invoice", invoice_body(cust["Id"], item["Id"], [(1, 1)], PrivateNote="p" * 4001)),
        400,
        "2050",
    )
    assert_fault(
        qbo.post("invoice", invoice_body(cust["Id"], item["Id"], [(1, 1)], DocNumber="x" * 22)), 400, "2050"
    )
    need = invoice_body(cust["Id"], item["Id"], [(1, 1)], EmailStatus="NeedToSend")
    assert_fault(qbo.post("invoice", need), 400, "6000")
    assert "Invoice" not in qbo.query("select * from Invoice")  # nothing half-created


def test_duplicate_docnumber(qbo: Qbo):
    cust, item = qbo.customer(), qbo.item()
    qbo.invoice(cust["Id"], item["Id"], [(1, 5)], DocNumber="INV-7")
    err = assert_fault(
        qbo.post("invoice", invoice_body(cust["Id"], item["Id"], [(1, 5)], DocNumber="INV-7")), 400, "6140"
    )
    assert "INV-7" in err["Detail"]
    dup = qbo.create(
        "Invoice",
        invoice_body(cust["Id"], item["Id"], [(1, 5)], DocNumber="INV-7"),
        include="allowduplicatedocnum",
    )
    assert dup["DocNumber"] == "INV-7"


def test_custom_transaction_numbers(emu, tokens):
    realm = emu.create_company(custom_txn_numbers=True)
    qbo = Qbo(emu, realm, emu.connect("test-client", realm)["access_token"])
    cust, item = qbo.customer(), qbo.item()
    inv = qbo.invoice(cust["Id"], item["Id"], [(1, 5)])
    assert inv.get("DocNumber") is None
    assert qbo.invoice(cust["Id"], item["Id"], [(1, 5)], DocNumber="A-1")["DocNumber"] == "A-1"
    assert qbo.get("preferences").json()["Preferences"]["SalesFormsPrefs"]["CustomTxnNumbers"] is True


def test_payment_void_and_delete(qbo: Qbo, emu, realm):
    cust, item = qbo.customer(), qbo.item()
    inv = qbo.invoice(cust["Id"], item["Id"], [(2, "50.25")])
    pay = qbo.create(
        "Payment",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TotalAmt": 60,
            "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert Decimal(str(pay["UnappliedAmt"])) == 20
    after = qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]
    assert Decimal(str(after["Balance"])) == Decimal("60.50") and after["SyncToken"] == "1"
    assert after["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert emu.entity(realm, "Customer", cust["Id"])["Balance"] == Decimal("60.5")
    too_much = {
        "CustomerRef": {"value": cust["Id"]},
        "TotalAmt": 100,
        "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
    }
    assert_fault(qbo.post("payment", too_much), 400, "6000")
    # deleting the payment restores the balance
    deleted = qbo.post("payment", {"Id": pay["Id"], "SyncToken": pay["SyncToken"]}, operation="delete").json()
    assert deleted["Payment"] == {"domain": "QBO", "status": "Deleted", "Id": pay["Id"]}
    assert Decimal(str(qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]["Balance"])) == Decimal("100.50")
    # void the invoice
    current = qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]
    assert_fault(qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="void"), 400, "5010")
    voided = qbo.post(
        "invoice", {"Id": inv["Id"], "SyncToken": current["SyncToken"]}, operation="void"
    ).json()["Invoice"]
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0 and voided["PrivateNote"] == "Voided"
    # delete an invoice
    other = qbo.invoice(cust["Id"], item["Id"], [(1, 1)])
    resp = qbo.post("invoice", {"Id": other["Id"], "SyncToken": "0"}, operation="delete")
    assert resp.json()["Invoice"]["status"] == "Deleted"
    assert_fault(qbo.get(f"invoice/{other['Id']}"), 400, "610")


def test_unknown_params_and_minorversion_are_accepted(qbo: Qbo):
    assert qbo.get("preferences", minorversion=70, foo="bar").status_code == 200
    assert (
        qbo.get(f"companyinfo/{qbo.realm}", minorversion=75).json()["CompanyInfo"]["CompanyName"]
        == "Demo Pool Co"
    )
