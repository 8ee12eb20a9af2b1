"""Issue 13: an edit QuickBooks refuses is shown with QuickBooks' reason, and the invoice keeps its
last good version (the one QuickBooks holds): lines, totals and the items a removed line released."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.conftest import Client, wait_for
from tests.e2e.test_invoice_lifecycle import _pending, _run, _work

REFUSAL = {
    "Fault": {
        "Error": [
            {
                "Message": "A business validation error has occurred while processing your request",
                "Detail": "Business Validation Error: You can't edit transactions in a closed period.",
                "code": "6000",
                "element": "",
            }
        ],
        "type": "ValidationFault",
    },
    "time": "2026-12-03T08:00:00.000-08:00",
}


def test_an_edit_quickbooks_refuses_shows_why_and_keeps_the_last_good_version(
    stack, connected_client: Client
):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api, entries=2)
    (invoice,) = _run(api)
    assert (invoice["sync_status"], invoice["total"], len(invoice["lines"])) == ("synced", "160.00", 2)
    before = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    # Given QuickBooks refuses the next change of the invoice
    stack.emulator.add_fault(
        realm,
        kind="status",
        status=400,
        count=1,
        body=json.dumps(REFUSAL),
        match={"method": "POST", "path_regex": r"/invoice$"},
    )
    # When one line is removed and the other changed here
    edited = api.ok(
        "PATCH",
        f"/invoices/{invoice['id']}",
        json={"lines": [{"line_no": 1, "quantity": "2.25"}]},
    )
    assert (edited["total"], len(edited["lines"])) == ("180.00", 1)

    # Then the invoice shows QuickBooks' reason ...
    def refused() -> dict[str, Any] | None:
        ours = api.ok("GET", f"/invoices/{invoice['id']}")
        return ours if ours["sync_status"] == "error" else None

    ours = wait_for(refused, timeout=30, what="the edit refused")
    assert "closed period" in json.dumps(ours["sync_error"])
    # ... and is again the version QuickBooks holds: its lines, totals and both items
    assert (ours["total"], ours["balance"], len(ours["lines"])) == ("160.00", "160.00", 2)
    assert [ln["quantity"] for ln in ours["lines"]] == [ln["quantity"] for ln in invoice["lines"]]
    assert sorted(ours["item_ids"]) == sorted(invoice["item_ids"])
    assert ours["version"] > edited["version"]
    assert _pending(api) == []
    after = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert (after["SyncToken"], Decimal(str(after["TotalAmt"]))) == (
        before["SyncToken"],
        Decimal(str(before["TotalAmt"])),
    )
    # And a later edit goes through once QuickBooks takes it
    api.ok(
        "PATCH",
        f"/invoices/{invoice['id']}",
        json={"lines": [{"line_no": 1}, {"line_no": 2, "quantity": "0.5"}]},
    )

    def synced() -> dict[str, Any] | None:
        ours = api.ok("GET", f"/invoices/{invoice['id']}")
        return (
            ours
            if ours["sync_status"] == "synced" and ours["qbo_synced_version"] == ours["version"]
            else None
        )

    ours = wait_for(synced, timeout=30, what="the next edit synced")
    assert ours["total"] == "120.00" and ours.get("sync_error") is None
