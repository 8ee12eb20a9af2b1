"""Issue 13 (wt-life): a credit memo can be removed. The invoice's balance and the contact's account
balance are restored in the same transaction, the invoice's status follows (paid back to open), the
credit memo is `removed` with who and why, a second DELETE answers the same; in QuickBooks its
applying Payment and then the CreditMemo are deleted through the sync queue."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.conftest import Client, refuse_next, wait_for
from tests.e2e.test_invoice_lifecycle import _pending, _run, _work


def _memo(invoice: dict[str, Any], credit_id: str) -> dict[str, Any]:
    return dict(next(c for c in invoice["credit_memos"] if c["id"] == credit_id))


def test_removing_a_credit_memo_restores_the_balance_status_and_items(client: Client):
    api = client
    _work(api, entries=2)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    api.ok("POST", f"{path}/mark-sent")
    items = sorted(invoice["item_ids"])
    partial = api.ok(
        "POST", f"{path}/credit-memos", json={"id": "cm-1", "amount": "40.00", "reason": "short"}
    )
    assert (partial["status"], partial["balance"]) == ("partially_paid", "120.00")
    # A full credit (the rest and 30.00 more, the contact's credit): paid, items billable again
    full = api.ok("POST", f"{path}/credit-memos", json={"id": "cm-2", "amount": "150.00", "reason": "redo"})
    assert (full["status"], full["balance"], _memo(full, "cm-2")["full"]) == ("paid", "0.00", True)
    assert _pending(api) == items
    assert api.ok("GET", "/contacts/c-1/balance")["account_balance"] == "-30.00"

    # When the full credit is removed
    removed = api.ok("DELETE", f"{path}/credit-memos/cm-2", json=None, params={"reason": "entered twice"})
    # Then the balance and status are back (paid -> partially paid), its items are on the invoice
    # again, the contact's credit is gone, and the credit memo says who removed it and why
    assert (removed["status"], removed["balance"], removed["amount_credited"]) == (
        "partially_paid",
        "120.00",
        "40.00",
    )
    memo = _memo(removed, "cm-2")
    assert memo["status"] == "removed" and memo["removed_reason"] == "entered twice" and memo["removed_by"]
    assert _memo(removed, "cm-1")["status"] == "live"
    assert _pending(api) == []
    assert api.ok("GET", "/contacts/c-1/balance")["account_balance"] == "120.00"
    history = api.ok("GET", f"/history/invoice/{invoice['id']}")["history"]
    assert any(
        (h["from"], h["to"]) == ("paid", "partially_paid")
        and "cm-2" in h["reason"]
        and "entered twice" in h["reason"]
        for h in history
    ), history
    # And a second DELETE answers the same, changing nothing
    again = api.ok("DELETE", f"{path}/credit-memos/cm-2", params={"reason": "entered twice"})
    assert {k: v for k, v in again.items() if k != "account_balance"} == {
        k: v for k, v in removed.items() if k != "account_balance"
    }
    # When the last credit is removed the invoice is open at its total
    opened = api.ok("DELETE", f"{path}/credit-memos/cm-1")
    assert (opened["status"], opened["balance"], opened["amount_credited"]) == ("open", "160.00", "0.00")
    assert api.ok("GET", "/contacts/c-1/balance")["account_balance"] == "160.00"
    # An unknown credit memo is 404; the id of a removed one cannot be recorded again
    missing = api.delete(f"{path}/credit-memos/nope")
    assert missing.status_code == 404 and "nope" in missing.text
    reused = api.post(f"{path}/credit-memos", json={"id": "cm-1", "amount": "40.00", "reason": "short"})
    assert reused.status_code == 409, reused.text
    assert api.ok("GET", path)["balance"] == "160.00"


def test_a_removed_credit_memo_is_deleted_in_quickbooks_with_its_applying_payment(
    stack, connected_client: Client
):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api, entries=2)
    (invoice,) = _run(api)
    assert (invoice["status"], invoice["sync_status"], invoice["total"]) == ("open", "synced", "160.00")
    path = f"/invoices/{invoice['id']}"
    api.ok("POST", f"{path}/credit-memos", json={"id": "cm-q", "amount": "60.00", "reason": "late"})

    def linked() -> dict[str, Any] | None:
        memo = _memo(api.ok("GET", path), "cm-q")
        return memo if memo.get("qbo_id") and memo.get("qbo_apply_id") else None

    memo = wait_for(linked, timeout=30, what="credit memo in QuickBooks")
    assert stack.emulator.entity(realm, "CreditMemo", memo["qbo_id"]) is not None
    # When it is removed here
    removed = api.ok("DELETE", f"{path}/credit-memos/cm-q", params={"reason": "wrong invoice"})
    assert (removed["status"], removed["balance"]) == ("open", "160.00")

    # Then QuickBooks holds neither the applying Payment nor the CreditMemo
    def gone() -> dict[str, Any] | None:
        ours = _memo(api.ok("GET", path), "cm-q")
        assert ours.get("qbo_error") is None, ours
        return ours if ours.get("qbo_removed") else None

    wait_for(gone, timeout=30, what="credit memo deleted in QuickBooks")
    assert stack.emulator.entity(realm, "Payment", memo["qbo_apply_id"]) is None
    assert stack.emulator.entity(realm, "CreditMemo", memo["qbo_id"]) is None
    qbo_invoice = stack.emulator.entity(realm, "Invoice", invoice["qbo_id"])
    assert Decimal(str(qbo_invoice["Balance"])) == Decimal("160.00")

    # And the balances agree: ours, the invoice's, and QuickBooks' customer balance
    def agreed() -> dict[str, Any] | None:
        balance = api.ok("GET", "/contacts/c-1/balance")
        ok = (balance["account_balance"], balance["differs_by"]) == ("160.00", "0.00")
        return balance if ok else None

    wait_for(agreed, timeout=90, what="balances agree")
    assert api.ok("GET", path)["balance"] == "160.00"


def test_a_removal_quickbooks_refuses_says_why_and_removing_again_retries_it(stack, connected_client: Client):
    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _work(api, entries=1)
    (invoice,) = _run(api)
    path = f"/invoices/{invoice['id']}"
    api.ok("POST", f"{path}/credit-memos", json={"id": "cm-r", "amount": "20.00", "reason": "x"})

    def linked() -> dict[str, Any] | None:
        memo = _memo(api.ok("GET", path), "cm-r")
        return memo if memo.get("qbo_apply_id") else None

    memo = wait_for(linked, timeout=30, what="credit memo in QuickBooks")
    # Given QuickBooks refuses the next Payment write (the applying Payment's delete)
    refuse_next(stack, realm, r"/payment$")
    # When the credit memo is removed: removed here at once
    removed = api.ok("DELETE", f"{path}/credit-memos/cm-r")
    assert (removed["balance"], _memo(removed, "cm-r")["status"]) == ("80.00", "removed")

    # Then the removed credit memo says why QuickBooks refused, and QuickBooks still holds both
    def refused() -> dict[str, Any] | None:
        ours = _memo(api.ok("GET", path), "cm-r")
        return ours if ours.get("qbo_error") else None

    ours = wait_for(refused, timeout=30, what="the refusal recorded")
    assert "period is closed" in json.dumps(ours["qbo_error"]) and not ours.get("qbo_removed")
    assert stack.emulator.entity(realm, "Payment", memo["qbo_apply_id"]) is not None
    assert stack.emulator.entity(realm, "CreditMemo", memo["qbo_id"]) is not None
    # When it is removed again (the period reopened): QuickBooks deletes both, the error clears
    again = api.ok("DELETE", f"{path}/credit-memos/cm-r")
    assert again["balance"] == "80.00"

    def gone() -> dict[str, Any] | None:
        now = _memo(api.ok("GET", path), "cm-r")
        return now if now.get("qbo_removed") else None

    done = wait_for(gone, timeout=30, what="deleted in QuickBooks on the second removal")
    assert done.get("qbo_error") is None
    assert stack.emulator.entity(realm, "Payment", memo["qbo_apply_id"]) is None
    assert stack.emulator.entity(realm, "CreditMemo", memo["qbo_id"]) is None
