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
