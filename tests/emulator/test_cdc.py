"""Change data capture."""

from __future__ import annotations

from datetime import timedelta

from tests.emulator.conftest import Qbo, assert_fault


def cdc(qbo: Qbo, entities: str, since: str) -> dict[str, list]:
    resp = qbo.get("cdc", entities=entities, changedSince=since)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"CDCResponse", "time"}
    out: dict[str, list] = {}
    for block in body["CDCResponse"][0]["QueryResponse"]:
        for key, value in block.items():
            if isinstance(value, list):
                out[key] = value
    return out


def test_cdc_changes_deletes_and_inactive(emu, realm, qbo: Qbo):
    old = qbo.customer("Before")
    item = qbo.item()
    emu.advance(120)
    since = emu.clock.now_dt().isoformat()
    emu.advance(1)
    changed = qbo.customer("After")
    qbo.create("Customer", {"Id": old["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    inv = qbo.invoice(changed["Id"], item["Id"], [(1, 5)])
    qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="delete")

    got = cdc(qbo, "Customer,Item,Invoice", since)
    assert {c["Id"] for c in got["Customer"]} == {old["Id"], changed["Id"]}
    inactive = next(c for c in got["Customer"] if c["Id"] == old["Id"])
    assert inactive["Active"] is False
    assert "Item" not in got  # unchanged since
    assert got["Invoice"] == [
        {"domain": "QBO", "status": "Deleted", "Id": inv["Id"], "MetaData": got["Invoice"][0]["MetaData"]}
    ]


def test_cdc_lookback_and_cap(emu, realm, qbo: Qbo):
    too_old = (emu.clock.now_dt() - timedelta(days=31)).isoformat()
    assert_fault(qbo.get("cdc", entities="Customer", changedSince=too_old), 400, "2010")
    assert_fault(qbo.get("cdc", entities="Customer"), 400, "2020")
    since = (emu.clock.now_dt() - timedelta(days=29)).isoformat()
    for i in range(5):
        qbo.customer(f"Cap {i}")
    emu.configure(realm=realm, cdc_max_objects=3)
    assert len(cdc(qbo, "Customer", since)["Customer"]) == 3
