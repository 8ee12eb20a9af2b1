"""CreditMemo as Intuit's Accounting API reference describes it: create, read, query, sparse update,
delete and void; TotalAmt / Balance / RemainingCredit; the customer's Balance lowered by the credit
not yet applied; applied to an invoice by a Payment linking both; CDC and webhooks name it CreditMemo."""

from __future__ import annotations

from decimal import Decimal

from tests.emulator.conftest import Qbo, assert_fault, sales_line
from tests.emulator.test_cdc import cdc
from tests.emulator.test_webhooks import _setup


def memo_body(customer_id: str, item_id: str, qty: float, price: float, **extra) -> dict:
    return {"CustomerRef": {"value": customer_id}, "Line": [sales_line(item_id, qty, price)], **extra}


def balance(qbo: Qbo, customer_id: str) -> Decimal:
    return Decimal(str(qbo.get(f"customer/{customer_id}").json()["Customer"]["Balance"]))


def test_create_read_query_and_computed_fields(qbo: Qbo):
    cust, item = qbo.customer("Credit Carl"), qbo.item()
    memo = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 2, 10, PrivateNote="m1"))
    assert memo["SyncToken"] == "0" and memo["TotalAmt"] == 20
    assert memo["Balance"] == 20 and memo["RemainingCredit"] == 20
    assert memo["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert memo["CustomerRef"] == {"value": cust["Id"], "name": "Credit Carl"}
    got = qbo.get(f"creditmemo/{memo['Id']}").json()["CreditMemo"]
    assert got["DocNumber"] == memo["DocNumber"] and got["TotalAmt"] == 20
    rows = qbo.query(f"select * from CreditMemo where CustomerRef = '{cust['Id']}'")["CreditMemo"]
    assert [r["Id"] for r in rows] == [memo["Id"]]
    # computed fields sent by a client are ignored, as for Invoice.TotalAmt
    other = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 5, TotalAmt=999, Balance=1))
    assert other["TotalAmt"] == 5 and other["Balance"] == 5


def test_required_fields_and_bad_references(qbo: Qbo):
    cust, item = qbo.customer("Req"), qbo.item()
    assert_fault(qbo.post("creditmemo", {"Line": [sales_line(item["Id"], 1, 1)]}), 400, "2020")
    assert_fault(qbo.post("creditmemo", {"CustomerRef": {"value": cust["Id"]}}), 400, "2020")
    assert_fault(qbo.post("creditmemo", memo_body("999", item["Id"], 1, 1)), 400, "2500")
    assert_fault(
        qbo.post("creditmemo", memo_body(cust["Id"], item["Id"], 2, 3, TxnDate="3/4/2026")), 400, "2010"
    )


def test_customer_balance_is_open_invoices_minus_unapplied_credit(qbo: Qbo):
    cust, item = qbo.customer("Bal"), qbo.item()
    qbo.invoice(cust["Id"], item["Id"], [(1, 100)])
    memo = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 30))
    assert balance(qbo, cust["Id"]) == 70
    # a sparse update changes the credit: the balance follows
    changed = qbo.create(
        "CreditMemo",
        {"Id": memo["Id"], "SyncToken": "0", "sparse": True, "Line": [sales_line(item["Id"], 1, 40)]},
    )
    assert (
        changed["SyncToken"] == "1"
        and changed["TotalAmt"] == 40
        and changed["DocNumber"] == memo["DocNumber"]
    )
    assert balance(qbo, cust["Id"]) == 60
    assert_fault(
        qbo.post("creditmemo", {"Id": memo["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"}),
        400,
        "5010",
    )


def test_a_payment_applies_the_credit_to_an_invoice(qbo: Qbo):
    cust, item = qbo.customer("Apply"), qbo.item()
    inv = qbo.invoice(cust["Id"], item["Id"], [(1, 100)])
    memo = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 30))
    link = qbo.create(
        "Payment",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TotalAmt": 0,
            "Line": [
                {"Amount": 30, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]},
                {"Amount": 30, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
            ],
        },
    )
    assert link["UnappliedAmt"] == 0
    assert qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]["Balance"] == 70
    applied = qbo.get(f"creditmemo/{memo['Id']}").json()["CreditMemo"]
    assert applied["Balance"] == 0 and applied["RemainingCredit"] == 0 and applied["TotalAmt"] == 30
    assert balance(qbo, cust["Id"]) == 70  # the same number, now on the invoice
    # more credit than is left on the memo is refused
    assert_fault(
        qbo.post(
            "payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": 0,
                "Line": [
                    {"Amount": 1, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]},
                    {"Amount": 1, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
                ],
            },
        ),
        400,
        "6000",
    )
    # deleting the applying payment frees the credit again
    qbo.post("payment", {"Id": link["Id"], "SyncToken": link["SyncToken"]}, operation="delete")
    assert qbo.get(f"creditmemo/{memo['Id']}").json()["CreditMemo"]["RemainingCredit"] == 30
    assert qbo.get(f"invoice/{inv['Id']}").json()["Invoice"]["Balance"] == 100
    assert balance(qbo, cust["Id"]) == 70


def test_delete_and_void(qbo: Qbo):
    cust, item = qbo.customer("Gone"), qbo.item()
    qbo.invoice(cust["Id"], item["Id"], [(1, 50)])
    deleted = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 10))
    voided = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 15))
    assert balance(qbo, cust["Id"]) == 25
    resp = qbo.post("creditmemo", {"Id": deleted["Id"], "SyncToken": "0"}, operation="delete")
    assert resp.json()["CreditMemo"] == {"domain": "QBO", "status": "Deleted", "Id": deleted["Id"]}
    assert_fault(qbo.get(f"creditmemo/{deleted['Id']}"), 400, "610")
    assert balance(qbo, cust["Id"]) == 35
    void = qbo.post("creditmemo", {"Id": voided["Id"], "SyncToken": "0"}, operation="void").json()[
        "CreditMemo"
    ]
    assert void["TotalAmt"] == 0 and void["Balance"] == 0 and void["RemainingCredit"] == 0
    assert void["SyncToken"] == "1"
    assert balance(qbo, cust["Id"]) == 50


def test_cdc_and_webhooks_name_the_entity_credit_memo(emu, receiver):
    _realm, qbo = _setup(emu, receiver, "hook-credit", "legacy")
    emu.advance(60)
    since = emu.clock.now_dt().isoformat()
    emu.advance(1)
    cust, item = qbo.customer("Hooks"), qbo.item()
    memo = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 10))
    qbo.post("creditmemo", {"Id": memo["Id"], "SyncToken": "0"}, operation="delete")
    other = qbo.create("CreditMemo", memo_body(cust["Id"], item["Id"], 1, 7))
    got = cdc(qbo, "CreditMemo", since)
    assert {r["Id"]: r.get("status") for r in got["CreditMemo"]} == {memo["Id"]: "Deleted", other["Id"]: None}
    assert emu.flush_webhooks(5)
    events = [
        (e["name"], e["id"], e["operation"])
        for payload in receiver.payloads()
        for e in payload["eventNotifications"][0]["dataChangeEvent"]["entities"]
        if e["name"] == "CreditMemo"
    ]
    assert events == [
        ("CreditMemo", memo["Id"], "Create"),
        ("CreditMemo", memo["Id"], "Delete"),
        ("CreditMemo", other["Id"], "Create"),
    ]
