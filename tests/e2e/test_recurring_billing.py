"""Seed 001 over HTTP on the whole local stack (issue 16): create draft invoices for a bill
profile and period with $0 invoices allowed; the seed's three filters; delete the true $0 ones;
put the balance-only ones in a new invoice group; mark the rest sent; the group's charts and
totals after a payment made in QuickBooks (the emulator)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import requests

from fieldbill.domain.invoice_groups import aging_bucket
from tests.conftest import Client, wait_for


def _account(api: Client, contact_id: str, name: str) -> None:
    api.ok("POST", "/contacts", json={"id": contact_id, "name": name, "email": f"{contact_id}@example.com"})
    api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-res"})


def _service(api: Client, contact_id: str, rate: str, end: str | None = None) -> None:
    body: dict[str, Any] = {
        "id": f"s-{contact_id}",
        "contact_id": contact_id,
        "name": "Weekly cart pickup",
        "product_id": "p-cart",
        "rate": rate,
        "basis": "period",
        "start_date": "2026-10-01",
    }
    if end:
        body["end_date"] = end
    api.ok("POST", "/recurring-services", json=body, expect=201)


def _drafts(api: Client, period: str, **body: Any) -> dict[str, Any]:
    accepted = api.ok("POST", f"/bill-profiles/bp-res/periods/{period}/drafts", json=body, expect=202)
    operation = api.wait_operation(accepted["operation_id"])
    assert operation["status"] == "succeeded", operation
    return dict(operation["result"])


def _bulk(api: Client, action: str, invoice_ids: list[str], **extra: Any) -> dict[str, Any]:
    body = {"action": action, "invoice_ids": invoice_ids, **extra}
    operation = api.wait_operation(api.ok("POST", "/invoices/bulk", json=body, expect=202)["operation_id"])
    assert operation["status"] == "succeeded", operation
    assert operation["result"]["refused"] == [], operation
    return dict(operation["result"])


def _listed(api: Client, query: str) -> dict[str, dict[str, Any]]:
    page = api.ok("GET", f"/invoices?period=2026-11&limit=200&{query}")
    return {i["contact_id"]: i for i in page["items"]}


def test_seed_001_account_balance_invoices_from_drafts_to_a_paid_group(stack, connected_client: Client):
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    # Given a bill profile and four accounts: served (A), served and owing (B), owing only (C), idle (D)
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    profile = api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    assert "2026-11" in [p["key"] for p in profile["periods"]] or profile["periods"]
    for contact_id, name in (("c-a", "Avery"), ("c-b", "Blake"), ("c-c", "Casey"), ("c-d", "Drew")):
        _account(api, contact_id, name)
    _service(api, "c-a", "90.00")
    _service(api, "c-b", "60.00")
    _service(api, "c-c", "40.00", end="2026-10-31")
    # and October's invoices of B and C were sent (B owes 60.00, C owes 40.00), C's synced to QuickBooks
    october = _drafts(api, "2026-10", contact_ids=["c-b", "c-c"], destination="quickbooks")
    assert october["counts"]["created"] == 2
    before = {i["contact_id"]: i for i in api.ok("GET", "/invoices?period=2026-10")["items"]}
    for invoice in before.values():
        api.ok("POST", f"/invoices/{invoice['id']}/mark-sent")
    api.ok("POST", f"/invoices/{before['c-c']['id']}/sync", expect=202)
    stack.aws.drain()
    c_october = wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{before['c-c']['id']}"))["sync_status"] == "synced" and i,
        what="C's October invoice in QuickBooks",
    )

    # When the back office previews, then creates November's drafts with $0 invoices allowed
    preview = api.ok("POST", "/bill-profiles/bp-res/periods/2026-11/preview", json={"skip_zero": False})
    shown = {a["contact_id"]: a for a in preview["accounts"]}
    assert {c: (a["total"], a["balance_forward"]) for c, a in shown.items()} == {
        "c-a": ("90.00", "0.00"),
        "c-b": ("60.00", "60.00"),
        "c-c": ("0.00", "40.00"),
        "c-d": ("0.00", "0.00"),
    }
    assert "no_active_services" in shown["c-c"]["exceptions"] and "zero_invoice" in shown["c-d"]["exceptions"]
    done = _drafts(api, "2026-11", skip_zero=False, preview_fingerprint=preview["fingerprint"])
    assert (done["stale"], done["counts"]["created"]) == (False, 4)
    # Then every account has a November invoice dated the 1st, showing its ACCOUNT BALANCE
    november = _listed(api, "")
    assert set(november) == {"c-a", "c-b", "c-c", "c-d"}
    assert {i["issue_date"] for i in november.values()} == {"2026-11-01"}
    assert {c: (i["total"], i["account_balance"]) for c, i in november.items()} == {
        "c-a": ("90.00", "0.00"),
        "c-b": ("60.00", "60.00"),
        "c-c": ("0.00", "40.00"),
        "c-d": ("0.00", "0.00"),
    }
    assert {c: i["id"] for c, i in november.items()} == {c: a["invoice_id"] for c, a in shown.items()}
    # and running the period again creates nothing
    assert _drafts(api, "2026-11")["counts"]["created"] == 0

    # The seed's three filters
    true_zero = _listed(api, "balance=eq:0&account_balance=eq:0")
    assert set(true_zero) == {"c-d"}
    assert set(_listed(api, "balance=lt:0.01")) == {"c-c", "c-d"}
    balance_only = _listed(api, "balance=eq:0.00&account_balance=gt:0.00")
    assert set(balance_only) == {"c-c"}

    # Delete the true $0 ones; the balance-only ones go to a new group; mark the rest sent
    _bulk(api, "delete", [true_zero["c-d"]["id"]])
    grouped = _bulk(api, "add_to_group", [balance_only["c-c"]["id"]], group_name="Balance only")
    group_id = grouped["group_id"]
    rest = [i["id"] for c, i in _listed(api, "").items() if c in ("c-a", "c-b")]
    _bulk(api, "mark_sent", rest)
    assert api.ok("GET", f"/invoices/{true_zero['c-d']['id']}")["status"] == "deleted"
    assert set(_listed(api, "status=open")) == {"c-a", "c-b"}
    # The group also follows C's October invoice (what C owes)
    api.ok("POST", f"/invoice-groups/{group_id}/invoices", json={"invoice_ids": [c_october["id"]]})
    group = api.ok("GET", f"/invoice-groups/{group_id}")["group"]
    late = aging_bucket(date.fromisoformat(c_october["due_date"]), date.today())
    assert group["name"] == "Balance only" and group["invoices"] == 2
    assert group["by_status"]["draft"] == {"count": 1, "amount": "0.00"}
    assert group["by_status"]["unpaid"] == {"count": 1, "amount": "40.00"}
    assert group["aging"][late] == {"count": 1, "amount": "40.00"}
    assert (group["collected"], group["uncollected"]) == ("0.00", "40.00")
    assert group["email"] == {"not_sent": 2}

    # When Casey pays October's invoice in QuickBooks
    emu.flush_webhooks()
    stack.aws.drain()
    emu.pay_invoice(realm, c_october["qbo_id"])
    assert emu.flush_webhooks()
    stack.aws.drain()
    # Then the group's charts and totals, and Casey's account balance, say so
    group = wait_for(
        lambda: (
            (g := api.ok("GET", f"/invoice-groups/{group_id}")["group"])["by_status"]["paid"]["count"] == 1
            and g
        ),
        timeout=10,
        what="the group's paid invoice",
    )
    assert group["by_status"]["paid"] == {"count": 1, "amount": "40.00"}
    assert group["by_status"]["unpaid"] == {"count": 0, "amount": "0.00"}
    assert (group["collected"], group["uncollected"]) == ("40.00", "0.00")
    assert sum(b["count"] for b in group["aging"].values()) == 0
    assert _listed(api, "q=casey")["c-c"]["account_balance"] == "0.00"
    assert set(_listed(api, "account_balance=gt:0")) == {"c-a", "c-b"}


def test_each_filter_and_sort_the_invoice_list_adds(client: Client):
    """Issue 13 item 6 / issue 16 item 5: tag, account balance (=, <, >, <=, >=), a search on the
    number and the customer name, the period, and sorting by date, number, total, balance."""
    api = client
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    for contact_id, name, tags, rate in (
        ("c-1", "Alpha Pools", ["vip"], "10.00"),
        ("c-2", "Beta Pools", ["vip"], "20.00"),
        ("c-3", "Gamma Lawn", [], "30.00"),
        ("c-4", "Delta Lawn", [], None),
    ):
        api.ok("POST", "/contacts", json={"id": contact_id, "name": name, "tags": tags})
        api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-res"})
        if rate:
            _service(api, contact_id, rate)
    assert _drafts(api, "2026-11")["counts"]["created"] == 4
    made = _listed(api, "")
    api.ok("POST", f"/invoices/{made['c-1']['id']}/mark-sent")
    api.ok("POST", f"/invoices/{made['c-3']['id']}/mark-sent")
    api.ok("POST", f"/invoices/{made['c-3']['id']}/payments", json={"amount": "5.00"})
    # account balances now: c-1 10.00, c-2 0, c-3 25.00, c-4 0

    def ids(query: str) -> list[str]:
        return sorted(_listed(api, query))

    def order(query: str) -> list[str]:
        return [i["contact_id"] for i in api.ok("GET", f"/invoices?period=2026-11&{query}")["items"]]

    assert ids("tag=vip") == ["c-1", "c-2"]
    assert ids("tag=none-such") == []
    assert ids("account_balance=eq:0") == ["c-2", "c-4"]
    assert ids("account_balance=lt:10") == ["c-2", "c-4"]
    assert ids("account_balance=lte:10") == ["c-1", "c-2", "c-4"]
    assert ids("account_balance=gt:10") == ["c-3"]
    assert ids("account_balance=gte:10") == ["c-1", "c-3"]
    assert ids("q=lawn") == ["c-3", "c-4"]
    assert ids(f"q={made['c-2']['id'][:13]}") == ["c-2"]
    assert ids("tag=vip&account_balance=gt:0") == ["c-1"]
    assert ids("bill_profile_id=bp-res") == ["c-1", "c-2", "c-3", "c-4"]
    assert ids("bill_profile_id=other") == []
    assert _listed(api, "")["c-3"]["account_balance"] == "25.00"
    assert order("sort=total") == ["c-4", "c-1", "c-2", "c-3"]
    assert order("sort=-total") == ["c-3", "c-2", "c-1", "c-4"]
    assert order("sort=balance") == ["c-4", "c-1", "c-2", "c-3"]
    # (local invoices are numbered by us: the tenant's sequence, in the order they were written)
    by_number = sorted(made.values(), key=lambda i: int(i["number"]))
    assert order("sort=number") == [i["contact_id"] for i in by_number]
    assert order("sort=-date") == list(reversed(order("sort=date")))
    # A sorted list pages with its cursor
    first = api.ok("GET", "/invoices?period=2026-11&sort=-balance&limit=3")
    rest = api.ok("GET", f"/invoices?period=2026-11&sort=-balance&limit=3&cursor={first['next_cursor']}")
    assert [i["contact_id"] for i in first["items"] + rest["items"]] == ["c-3", "c-2", "c-1", "c-4"]
    assert rest["next_cursor"] is None
    # A filtered list pages too (one invoice a page)
    seen, cursor = [], None
    while True:
        page = api.ok(
            "GET",
            "/invoices?period=2026-11&account_balance=eq:0&limit=1" + (f"&cursor={cursor}" if cursor else ""),
        )
        seen += [i["contact_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == ["c-2", "c-4"]
    # Unknown filters and bad values name themselves
    for query, name in (
        ("colour=red", "colour"),
        ("sort=colour", "sort"),
        ("account_balance=ne:1", "account_balance"),
    ):
        response = api.get(f"/invoices?{query}")
        assert response.status_code in (400, 422) and name in response.text, (query, response.text)


def test_an_invoice_groups_actions(stack, client: Client):
    """Rename, add and remove; email unpaid (the one send command: the outbox holds each email);
    mark drafts sent; regenerate drafts from current data (bill once kept); download all."""
    api = client
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    for contact_id in ("g-1", "g-2", "g-3"):
        address = f"{contact_id}+{api.tenant_id}@customer.example.org"
        api.ok("POST", "/contacts", json={"id": contact_id, "name": f"Group {contact_id}", "email": address})
        api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-res"})
        _service(api, contact_id, "50.00")
    _drafts(api, "2026-11")
    made = _listed(api, "")
    ids = [made[c]["id"] for c in ("g-1", "g-2", "g-3")]
    group = api.ok("POST", "/invoice-groups", json={"name": "Route 9", "invoice_ids": ids}, expect=201)
    assert group["invoices"] == 3 and group["by_status"]["draft"] == {"count": 3, "amount": "150.00"}
    assert api.ok("PATCH", f"/invoice-groups/{group['id']}", json={"name": "Route 9 north"})["name"] == (
        "Route 9 north"
    )
    assert (
        api.ok("POST", f"/invoice-groups/{group['id']}/invoices/remove", json={"invoice_ids": [ids[2]]})[
            "invoices"
        ]
        == 2
    )
    listed = api.ok("GET", "/invoice-groups")["items"]
    assert [g["name"] for g in listed] == ["Route 9 north"]

    def act(action: str) -> dict[str, Any]:
        accepted = api.ok(
            "POST", f"/invoice-groups/{group['id']}/actions", json={"action": action}, expect=202
        )
        operation = api.wait_operation(accepted["operation_id"])
        assert operation["status"] == "succeeded" and operation["result"]["refused"] == [], operation
        return dict(operation["result"])

    # Regenerate drafts: a second service since the drafts were made joins each draft, once
    api.ok(
        "POST",
        "/recurring-services",
        json={
            "id": "s-g-1-extra",
            "contact_id": "g-1",
            "name": "Extra cart",
            "product_id": "p-cart",
            "rate": "5.00",
            "basis": "period",
            "start_date": "2026-11-01",
        },
        expect=201,
    )
    assert sorted(act("regenerate_drafts")["done"]) == sorted(ids[:2])
    assert api.ok("GET", f"/invoices/{ids[0]}")["total"] == "55.00"
    assert api.ok("GET", f"/invoices/{ids[1]}")["total"] == "50.00"
    act("regenerate_drafts")
    assert api.ok("GET", f"/invoices/{ids[0]}")["total"] == "55.00"
    assert _drafts(api, "2026-11")["counts"]["created"] == 0
    # Email unpaid: each of the two is emailed with its PDF (and becomes open)
    assert sorted(act("email_unpaid")["done"]) == sorted(ids[:2])
    for contact_id in ("g-1", "g-2"):
        address = f"{contact_id}+{api.tenant_id}@customer.example.org"
        outbox = requests.get(stack.outbox_url, params={"to": address}, timeout=30).json()["items"]
        assert len(outbox) == 1
    view = api.ok("GET", f"/invoice-groups/{group['id']}")
    assert view["group"]["by_status"]["unpaid"] == {"count": 2, "amount": "105.00"}
    assert view["group"]["email"] == {"sent": 2}
    assert {i["contact_id"]: i["account_balance"] for i in view["invoices"]} == {
        "g-1": "55.00",
        "g-2": "50.00",
    }
    # Mark drafts sent: nothing left to mark
    response = api.post(f"/invoice-groups/{group['id']}/actions", json={"action": "mark_drafts_sent"})
    assert response.status_code == 422 and "action" in response.text
    # Download all: one PDF of the group's invoices
    printed = api.ok("POST", f"/invoice-groups/{group['id']}/print")
    assert printed["invoice_count"] == 2
    pdf = requests.get(printed["url"], timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


# ---------------------------------------------------------------------------- Issue 16 gaps
def _scheduled_report(stack, api: Client) -> dict[str, Any]:
    """What the daily schedule finds: the Reconciliation rule fires, its operation holds the report."""
    fired = stack.aws.fire_schedule("Reconciliation")
    operation = api.wait_operation(fired["operations"][api.tenant_id])
    assert operation["status"] == "succeeded", operation
    return dict(operation["result"])


def _balance_kinds(report: dict[str, Any]) -> set[str]:
    return {d["kind"] for d in report["differences"]} & {"balance", "customer_balance"}


def test_schedules_reconcile_a_period_invoice_paid_then_unpaid_in_quickbooks(stack, connected_client: Client):
    """Must show (issue 16 item 7): a payment made in the emulator, then the schedules fire: the
    invoice's and the account's balances match QuickBooks'; a payment deleted in QuickBooks shows
    as a difference (invoice and customer, the invoice explaining it) until the scheduled pull."""
    api = connected_client
    emu = stack.emulator
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    today = date.today()
    period = f"{today.year:04d}-{today.month:02d}"
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    _account(api, "c-rec", "Reconcile Hauling")
    body = {
        "id": "s-c-rec",
        "contact_id": "c-rec",
        "name": "Weekly cart pickup",
        "product_id": "p-cart",
        "rate": "75.00",
        "basis": "period",
        "start_date": "2026-01-01",
    }
    api.ok("POST", "/recurring-services", json=body, expect=201)
    # Given this period's invoice, dated today (not the 1st: the invoice date was changed), sent and synced
    done = _drafts(api, period, destination="quickbooks", invoice_date=today.isoformat())
    assert done["counts"]["created"] == 1
    (invoice,) = api.ok("GET", f"/invoices?period={period}")["items"]
    assert invoice["issue_date"] == today.isoformat()
    api.ok("POST", f"/invoices/{invoice['id']}/mark-sent")
    api.ok("POST", f"/invoices/{invoice['id']}/sync", expect=202)
    stack.aws.drain()
    invoice = wait_for(
        lambda: (i := api.ok("GET", f"/invoices/{invoice['id']}"))["sync_status"] == "synced" and i,
        what="the period invoice in QuickBooks",
    )
    emu.flush_webhooks()
    stack.aws.drain()
    emu.configure(realm, webhooks_enabled=False)  # only the schedules bring QuickBooks' changes
    # When the customer pays 30.00 in QuickBooks and the hourly pull, then the daily report, fire
    payment = emu.pay_invoice(realm, invoice["qbo_id"], Decimal("30.00"))
    stack.aws.fire_schedule("InvoicesBackfill")
    stack.aws.drain()
    # Then the invoice's and the account's balances are QuickBooks' and the report finds no difference
    listed = _listed_period(api, period)["c-rec"]
    assert (listed["balance"], listed["account_balance"]) == ("45.00", "45.00")
    assert _balance_kinds(_scheduled_report(stack, api)) == set()
    # When the payment is deleted in QuickBooks, the next report shows it, the invoice explaining it
    emu.user_delete(realm, "Payment", payment["Id"])
    report = _scheduled_report(stack, api)
    balance = next(d for d in report["differences"] if d["kind"] == "balance")
    assert (balance["invoice_id"], balance["ours"], balance["quickbooks"]) == (
        invoice["id"],
        "45.00",
        "75.00",
    )
    customer = next(d for d in report["differences"] if d["kind"] == "customer_balance")
    assert (customer["ours"], customer["quickbooks"]) == ("45.00", "75.00")
    assert [i["invoice_id"] for i in customer["invoices"]] == [invoice["id"]]
    assert _balance_kinds(_scheduled_report(stack, api)) == {"balance", "customer_balance"}  # until pulled
    # When the hourly pull fires, the balances follow QuickBooks and the report is clean again
    stack.aws.fire_schedule("InvoicesBackfill")
    stack.aws.drain()
    listed = _listed_period(api, period)["c-rec"]
    assert (listed["balance"], listed["account_balance"]) == ("75.00", "75.00")
    assert _balance_kinds(_scheduled_report(stack, api)) == set()


def _listed_period(api: Client, period: str) -> dict[str, dict[str, Any]]:
    return {i["contact_id"]: i for i in api.ok("GET", f"/invoices?period={period}&limit=200")["items"]}


def _seed_drafts(tenant: str, count: int) -> list[str]:
    """`count` local draft invoices of 10.00 written straight to the table (a big group, quickly)."""
    from fieldbill.domain import model as dm
    from fieldbill.store.billing import invoice_record
    from fieldbill.store.models import Entity

    ids = []
    issued = date(2026, 11, 1)
    with Entity.batch_write() as batch:
        for n in range(count):
            price = Decimal("10.00")
            line = dm.InvoiceLine(
                line_no=1,
                item_id=f"big{n}",
                line_kind=dm.LineKind.RECURRING,
                work_date=issued,
                description="Weekly cart pickup",
                product_id="p-cart",
                product_name="Cart pickup",
                unit=None,
                quantity=Decimal(1),
                unit_price=price,
                amount=price,
            )
            invoice = dm.Invoice(
                id=f"big{n:04d}",
                tenant_id=tenant,
                run_id="big",
                contact_id=f"c-big{n % 7}",
                grouping=dm.GroupingMode.PER_CONTACT,
                group_key="big",
                issue_date=issued,
                due_date=issued,
                lines=(line,),
                subtotal=price,
                total=price,
                destination=dm.Destination.LOCAL,
            )
            batch.save(invoice_record(invoice))
            ids.append(invoice.id)
    return ids


def test_a_group_action_reaches_every_invoice_of_a_group_over_one_selection(client: Client):
    """A group holds up to 5,000 invoices, a selection 500: the group's action must not stop at
    the 500th (mark drafts sent on 520 drafts marks 520)."""
    api = client
    ids = _seed_drafts(api.tenant_id, 520)
    group = api.ok(
        "POST", "/invoice-groups", json={"name": "Big route", "invoice_ids": ids[:500]}, expect=201
    )
    group = api.ok("POST", f"/invoice-groups/{group['id']}/invoices", json={"invoice_ids": ids[500:]})
    assert group["by_status"]["draft"] == {"count": 520, "amount": "5200.00"}
    accepted = api.ok(
        "POST", f"/invoice-groups/{group['id']}/actions", json={"action": "mark_drafts_sent"}, expect=202
    )
    operation = api.wait_operation(accepted["operation_id"], timeout=300)
    assert operation["status"] == "succeeded", operation
    assert (len(operation["result"]["done"]), operation["result"]["refused"]) == (520, [])
    group = api.ok("GET", f"/invoice-groups/{group['id']}")["group"]
    assert group["by_status"]["draft"]["count"] == 0 and group["by_status"]["unpaid"]["count"] == 520
    # Download all is one PDF of at most 500 invoices: a bigger group is told so, not cut short
    response = api.post(f"/invoice-groups/{group['id']}/print", json={})
    assert response.status_code == 422 and "group_id" in response.text and "500" in response.text


def test_add_to_an_existing_group_by_filter_then_email_all_and_mark_its_drafts_sent(stack, client: Client):
    """The seed's "add to an existing ... invoice group" on a filter and on a selection; the
    group's email ALL (paid ones too: a receipt) and a mark drafts sent that has drafts to mark."""
    api = client
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    addresses = {}
    for contact_id, rate in (("h-1", "30.00"), ("h-2", "20.00"), ("h-3", None)):
        addresses[contact_id] = f"{contact_id}+{api.tenant_id}@customer.example.org"
        api.ok(
            "POST",
            "/contacts",
            json={"id": contact_id, "name": f"Hauler {contact_id}", "email": addresses[contact_id]},
        )
        api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-res"})
        if rate:
            _service(api, contact_id, rate)
    _drafts(api, "2026-11")
    made = _listed(api, "")
    # h-1's invoice was sent and paid in full: its balance is 0, like h-3's $0 draft
    api.ok("POST", f"/invoices/{made['h-1']['id']}/mark-sent")
    api.ok("POST", f"/invoices/{made['h-1']['id']}/payments", json={"amount": "30.00"})
    group = api.ok("POST", "/invoice-groups", json={"name": "Route 5"}, expect=201)
    assert group["invoices"] == 0
    # When the invoices of balance < 0.01 are added to that existing group by a filter
    body = {
        "action": "add_to_group",
        "group_id": group["id"],
        "filter": {"period": "2026-11", "balance": "lt:0.01"},
    }
    operation = api.wait_operation(api.ok("POST", "/invoices/bulk", json=body, expect=202)["operation_id"])
    assert operation["status"] == "succeeded", operation
    assert operation["result"]["group_id"] == group["id"]
    assert sorted(operation["result"]["done"]) == sorted([made["h-1"]["id"], made["h-3"]["id"]])
    # and h-2's by a selection, to the same existing group
    assert _bulk(api, "add_to_group", [made["h-2"]["id"]], group_id=group["id"])["group_id"] == group["id"]
    assert [g["id"] for g in api.ok("GET", "/invoice-groups")["items"]] == [group["id"]]  # no new group
    view = api.ok("GET", f"/invoice-groups/{group['id']}")["group"]
    assert view["invoices"] == 3
    assert view["by_status"]["draft"] == {"count": 2, "amount": "20.00"}
    assert view["by_status"]["paid"] == {"count": 1, "amount": "30.00"}
    assert (view["collected"], view["uncollected"]) == ("30.00", "0.00")

    def act(action: str) -> dict[str, Any]:
        accepted = api.ok(
            "POST", f"/invoice-groups/{group['id']}/actions", json={"action": action}, expect=202
        )
        operation = api.wait_operation(accepted["operation_id"])
        assert operation["status"] == "succeeded" and operation["result"]["refused"] == [], operation
        return dict(operation["result"])

    # Mark drafts sent: the two drafts, and only them
    assert sorted(act("mark_drafts_sent")["done"]) == sorted([made["h-2"]["id"], made["h-3"]["id"]])
    view = api.ok("GET", f"/invoice-groups/{group['id']}")["group"]
    assert view["by_status"]["draft"]["count"] == 0
    assert api.ok("GET", f"/invoices/{made['h-2']['id']}")["status"] == "open"
    # Email all: every invoice of the group, the paid one too, each once
    assert sorted(act("email_all")["done"]) == sorted(i["id"] for i in made.values())
    for address in addresses.values():
        outbox = requests.get(stack.outbox_url, params={"to": address}, timeout=30).json()["items"]
        assert len(outbox) == 1, address
    assert api.ok("GET", f"/invoice-groups/{group['id']}")["group"]["email"] == {"sent": 3}


def test_a_groups_invoices_are_paged_its_charts_count_them_all(client: Client):
    """A group holds up to 5,000 invoices: its view pages them (one answer of 5,000 invoices
    would pass API Gateway's payload limit) while its charts and totals count every one."""
    api = client
    ids = _seed_drafts(api.tenant_id, 5)
    group = api.ok("POST", "/invoice-groups", json={"name": "Paged", "invoice_ids": ids}, expect=201)
    first = api.ok("GET", f"/invoice-groups/{group['id']}?limit=2")
    assert [i["id"] for i in first["invoices"]] == ids[:2]
    assert first["group"]["by_status"]["draft"] == {"count": 5, "amount": "50.00"}
    second = api.ok("GET", f"/invoice-groups/{group['id']}?limit=2&cursor={first['next_cursor']}")
    third = api.ok("GET", f"/invoice-groups/{group['id']}?limit=2&cursor={second['next_cursor']}")
    assert [i["id"] for i in second["invoices"] + third["invoices"]] == ids[2:]
    assert third["next_cursor"] is None
    assert api.ok("GET", f"/invoice-groups/{group['id']}")["next_cursor"] is None  # 100 a page
    # A cursor of another group, or none this API made, is refused naming it
    other = api.ok("POST", "/invoice-groups", json={"name": "Other", "invoice_ids": ids[:1]}, expect=201)
    for cursor in (first["next_cursor"], "bm90LWEtY3Vyc29y"):
        response = api.get(f"/invoice-groups/{other['id']}?cursor={cursor}")
        assert response.status_code == 422 and "cursor" in response.text, response.text


def test_a_bill_profile_s_terms_name_and_skip_zero_default_can_be_changed(client: Client):
    """A mistyped Net-N or a skip $0 default is fixed on the profile, not by a new
    profile and every account moved; its cadence and periods stay (invoices were made by them)."""
    api = client
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residental", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    _account(api, "k-1", "Served")
    _service(api, "k-1", "80.00")
    _account(api, "k-2", "Idle")
    changed = api.ok(
        "PATCH", "/bill-profiles/bp-res", json={"name": "Residential", "terms_days": 15, "skip_zero": True}
    )
    assert (changed["name"], changed["terms_days"], changed["skip_zero"]) == ("Residential", 15, True)
    assert api.ok("GET", "/bill-profiles/bp-res")["terms_days"] == 15
    preview = api.ok("POST", "/bill-profiles/bp-res/periods/2026-11/preview", json={})
    actions = {a["contact_id"]: a["action"] for a in preview["accounts"]}
    assert (preview["skip_zero"], actions) == (True, {"k-1": "create", "k-2": "skip_zero"})
    _drafts(api, "2026-11")
    (made,) = api.ok("GET", "/invoices?period=2026-11")["items"]
    assert (made["issue_date"], made["due_date"]) == ("2026-11-01", "2026-11-16")
    # The cadence is not changed here; an unknown profile is 404; nothing to change is 422
    assert api.patch("/bill-profiles/bp-res", json={"cadence": "yearly"}).status_code in (400, 422)
    assert api.patch("/bill-profiles/none-such", json={"terms_days": 10}).status_code == 404
    response = api.patch("/bill-profiles/bp-res", json={})
    assert response.status_code == 422 and "name" in response.text


def test_regenerating_a_taxed_draft_keeps_it_taxed_by_its_accounts_rule(stack, connected_client: Client):
    """Regenerate drafts plans a draft again as "create draft invoices" did, tax
    included: a draft taxed 10 % must not come back untaxed, nor a 5 % one at the default."""
    from fieldbill.quickbooks import tokens

    api = connected_client
    tokens.save_settings(api.tenant_id, {"automated_tax": False, "taxable_line_kinds": ["recurring"]}, "test")
    api.ok("POST", "/tax-codes", json={"id": "ten", "name": "Ten", "rate": "10", "is_default": True})
    api.ok("POST", "/tax-codes", json={"id": "low", "name": "Low", "rate": "5"})
    api.ok("POST", "/products", json={"id": "p-cart", "name": "Cart pickup"})
    api.ok(
        "POST",
        "/bill-profiles",
        json={"id": "bp-res", "name": "Residential", "cadence": "monthly", "start_date": "2026-01-01"},
        expect=201,
    )
    for contact_id, tax_setting in (("t-std", {}), ("t-low", {"tax_code_id": "low"})):
        api.ok("POST", "/contacts", json={"id": contact_id, "name": contact_id.title(), **tax_setting})
        api.ok("PUT", f"/contacts/{contact_id}/bill-profile", json={"bill_profile_id": "bp-res"})
        _service(api, contact_id, "100.00")
    _drafts(api, "2026-11", destination="local")
    made = _listed(api, "")
    assert {c: i["total"] for c, i in made.items()} == {"t-std": "110.00", "t-low": "105.00"}
    group = api.ok(
        "POST",
        "/invoice-groups",
        json={"name": "Taxed", "invoice_ids": [i["id"] for i in made.values()]},
        expect=201,
    )
    # When a second service starts on t-low and the group's drafts are regenerated
    api.ok(
        "POST",
        "/recurring-services",
        json={
            "id": "s-t-low-2",
            "contact_id": "t-low",
            "name": "Extra cart",
            "product_id": "p-cart",
            "rate": "50.00",
            "basis": "period",
            "start_date": "2026-11-01",
        },
        expect=201,
    )
    accepted = api.ok(
        "POST", f"/invoice-groups/{group['id']}/actions", json={"action": "regenerate_drafts"}, expect=202
    )
    operation = api.wait_operation(accepted["operation_id"])
    assert operation["status"] == "succeeded" and operation["result"]["refused"] == [], operation
    # Then each draft is taxed by its account's rule still
    after = {c: (i["tax_total"], i["total"]) for c, i in _listed(api, "").items()}
    assert after == {"t-std": ("10.00", "110.00"), "t-low": ("7.50", "157.50")}


def test_a_page_of_groups_stops_once_it_has_read_enough_invoices_for_their_charts(
    client: Client, monkeypatch
):
    """The list charts each group from all its invoices: a page of big groups ends early
    (its next_cursor goes on after the last group shown) instead of reading 20 x 5,000 invoices."""
    from fieldbill.api import routes_invoice_groups

    monkeypatch.setattr(routes_invoice_groups, "LIST_INVOICE_BUDGET", 4)
    api = client
    ids = _seed_drafts(api.tenant_id, 9)
    for n, name in enumerate(("Alpha", "Bravo", "Charlie")):
        api.ok(
            "POST", "/invoice-groups", json={"name": name, "invoice_ids": ids[3 * n : 3 * n + 3]}, expect=201
        )
    first = api.ok("GET", "/invoice-groups")
    assert [(g["name"], g["invoices"]) for g in first["items"]] == [("Alpha", 3), ("Bravo", 3)]
    rest = api.ok("GET", f"/invoice-groups?cursor={first['next_cursor']}")
    assert [g["name"] for g in rest["items"]] == ["Charlie"] and rest["next_cursor"] is None
