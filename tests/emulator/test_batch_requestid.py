"""Batch endpoint and requestid replay."""

from __future__ import annotations

from tests.emulator.conftest import Qbo, assert_fault, invoice_body


def test_batch_mixed_results(qbo: Qbo):
    cust, item = qbo.customer("Batch Co"), qbo.item()
    body = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "Invoice": invoice_body(cust["Id"], item["Id"], [(2, 10)])},
            {"bId": "2", "operation": "create", "Customer": {"DisplayName": "Batch Co"}},
            {"bId": "3", "Query": "select * from Customer where DisplayName = 'Batch Co'"},
            {
                "bId": "4",
                "operation": "update",
                "Customer": {"Id": cust["Id"], "SyncToken": "0", "sparse": True, "Notes": "n"},
            },
        ]
    }
    resp = qbo.post("batch", body)
    assert resp.status_code == 200
    out = {r["bId"]: r for r in resp.json()["BatchItemResponse"]}
    assert "time" in resp.json()
    assert out["1"]["Invoice"]["TotalAmt"] == 20
    assert out["2"]["Fault"]["Error"][0]["code"] == "6240" and out["2"]["Fault"]["type"] == "ValidationFault"
    assert out["3"]["QueryResponse"]["Customer"][0]["Id"] == cust["Id"]
    assert out["4"]["Customer"]["SyncToken"] == "1"


def test_batch_too_large_is_1040(qbo: Qbo, emu, realm):
    items = [{"bId": str(i), "Query": "select * from Customer"} for i in range(31)]
    assert_fault(qbo.post("batch", {"BatchItemRequest": items}), 400, "1040")
    assert qbo.post("batch", {"BatchItemRequest": items[:30]}).status_code == 200
    assert emu.calls(realm)["batch_requests"] == 2


def test_requestid_replays_the_original_response(qbo: Qbo, emu, realm):
    first = qbo.post("customer", {"DisplayName": "Once Only"}, requestid="req-0001")
    again = qbo.post("customer", {"DisplayName": "Once Only"}, requestid="req-0001")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(emu.entities(realm, "Customer")) == 1
    assert emu.calls(realm)["replayed"] == 1
    # a fault is remembered as well
    bad = qbo.post("customer", {"DisplayName": "A:B"}, requestid="req-0002")
    assert qbo.post("customer", {"DisplayName": "fine"}, requestid="req-0002").json() == bad.json()
    # another requestid performs the operation
    assert qbo.post("customer", {"DisplayName": "Twice"}, requestid="req-0003").status_code == 200


def test_requestid_length_limits(qbo: Qbo):
    assert_fault(qbo.post("customer", {"DisplayName": "L"}, requestid="x" * 51), 400, "2050")
    assert qbo.post("customer", {"DisplayName": "L"}, requestid="x" * 50).status_code == 200
    batch = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Customer"}]}
    assert_fault(qbo.post("batch", batch, requestid="b" * 37), 400, "2050")
    first = qbo.post("batch", batch, requestid="b" * 36)
    assert first.status_code == 200
    assert qbo.post("batch", batch, requestid="b" * 36).json() == first.json()


def test_requestid_plus_bid_over_50_characters_fails_each_item_with_6000(qbo: Qbo, emu, realm):
    # Given a batch whose requestid (32) plus each bId (a 36-character UUID) makes 68 characters
    request_id = "86e1e8438fd9413587c2bd17f4185b13"
    bids = ["8182e07b-ba3c-4c1e-9d8e-0123456789ab", "8182e07b-ba3c-4c1e-9d8e-0123456789ac"]
    body = {
        "BatchItemRequest": [
            {"bId": bid, "operation": "create", "Customer": {"DisplayName": f"Long {n}"}}
            for n, bid in enumerate(bids)
        ]
    }
    # When it is sent
    resp = qbo.post("batch", body, requestid=request_id)
    # Then the call answers 200 and every item is the 6000 business validation fault that names
    # the 50-character limit (intuit/QuickBooks-V3-Java-SDK#180), and nothing was created
    assert resp.status_code == 200
    items = resp.json()["BatchItemResponse"]
    assert [i["bId"] for i in items] == bids
    for item in items:
        (error,) = item["Fault"]["Error"]
        assert error["code"] == "6000" and "more than 50 characters" in error["Detail"]
        assert "68 characters" in error["Detail"]
    assert emu.entities(realm, "Customer") == []
    # And with 10-character bIds (Intuit blog 2015-04-06: 36 + 10) the same requestid's items pass
    short = {
        "BatchItemRequest": [
            {"bId": "b000000001", "operation": "create", "Customer": {"DisplayName": "Short"}}
        ]
    }
    ok = qbo.post("batch", short, requestid=request_id[:31] + "x")
    assert "Customer" in ok.json()["BatchItemResponse"][0]


def test_the_operations_of_one_batch_do_not_see_each_other(qbo: Qbo, emu, realm):
    # Given a customer named Before Co
    before = qbo.customer("Before Co", CompanyName="Old name")
    # When one batch creates a customer, renames the existing one, and queries both
    body = {
        "BatchItemRequest": [
            {"bId": "new", "operation": "create", "Customer": {"DisplayName": "Made In Batch"}},
            {
                "bId": "edit",
                "operation": "update",
                "Customer": {
                    "Id": before["Id"],
                    "SyncToken": before["SyncToken"],
                    "sparse": True,
                    "CompanyName": "New name",
                },
            },
            {"bId": "q-new", "Query": "select * from Customer where DisplayName = 'Made In Batch'"},
            {"bId": "q-edit", "Query": f"select * from Customer where Id = '{before['Id']}'"},
        ]
    }
    out = {r["bId"]: r for r in qbo.post("batch", body).json()["BatchItemResponse"]}
    # Then both writes happened, but the queries saw the company as it was before the batch
    # (Intuit blog 2017-07-27, batch operations; reference §4)
    assert out["new"]["Customer"]["DisplayName"] == "Made In Batch"
    assert out["edit"]["Customer"]["CompanyName"] == "New name"
    assert out["q-new"]["QueryResponse"] == {}
    assert out["q-edit"]["QueryResponse"]["Customer"][0]["CompanyName"] == "Old name"
    # And the next call sees both
    assert len(qbo.query("select * from Customer where DisplayName = 'Made In Batch'")["Customer"]) == 1
    assert emu.entity(realm, "Customer", before["Id"])["CompanyName"] == "New name"
