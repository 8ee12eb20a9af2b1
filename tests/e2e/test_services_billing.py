"""The billing page of completed services over HTTP (issue 17, seed 000): a pool company's
services, the grouped view and its filters, one customer's invoice edited and dated, bulk
invoices for three selected customers, and the three "services not appearing" answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.conftest import Client

DAY = "2026-11-{:02d}"


def _setup(api: Client, default_invoice_type: str = "local") -> None:
    api.ok(
        "PUT",
        "/billing-settings",
        json={"default_invoice_type": default_invoice_type, "default_terms_days": 30},
    )
    for worker in ("ana", "ben", "cy"):
        api.ok("POST", "/workers", json={"id": worker, "name": worker.title()}, expect=201)
    api.ok(
        "POST",
        "/inventory-items",
        json={"id": "chlorine", "name": "Chlorine tabs", "price": "12.00", "taxable": True},
        expect=201,
    )
    api.ok(
        "POST",
        "/service-types",
        json={"id": "trip", "name": "Trip fee", "price": "15.00", "is_trip_fee": True},
        expect=201,
    )
    api.ok(
        "POST",
        "/service-types",
        json={
            "id": "weekly",
            "name": "Weekly cleaning",
            "billing_method": "fixed",
            "price": "85.00",
            "trip_fee_id": "trip",
        },
        expect=201,
    )
    api.ok(
        "POST",
        "/service-types",
        json={
            "id": "repair",
            "name": "Equipment repair",
            "billing_method": "hourly_per_worker",
            "price": "60.00",
            "taxable": True,
            "round_up_minutes": 15,
            "minimum_hours": "1",
        },
        expect=201,
    )
    for n, (cid, tags) in enumerate(
        [
            ("alba", ["residential"]),
            ("bay", ["commercial"]),
            ("cove", ["residential", "vip"]),
            ("dune", ["commercial"]),
        ]
    ):
        api.ok(
            "POST",
            "/contacts",
            json={"id": cid, "name": f"{cid.title()} Pools", "email": f"{cid}@example.com", "tags": tags},
            expect=201,
        )
        del n
    api.ok("PUT", "/contacts/cove/prices/weekly", json={"unit_price": "70.00"})


def _service(
    api: Client, sid: str, contact: str, day: int, stype: str = "weekly", workers=("ana",), **extra: Any
) -> dict:
    hours, minutes = extra.pop("hours", 1), extra.pop("minutes", 0)
    body = {
        "id": sid,
        "contact_id": contact,
        "service_date": DAY.format(day),
        "started_at": f"{DAY.format(day)}T09:00:00+00:00",
        "ended_at": f"{DAY.format(day)}T{9 + hours:02d}:{minutes:02d}:00+00:00",
        "service_type_id": stype,
        "worker_ids": list(workers),
        "completed": True,
    } | extra
    return api.ok("POST", "/services", json=body, expect=201)


def _view(api: Client, query: str = "") -> dict:
    return api.ok("GET", "/billing" + (f"?{query}" if query else ""))


def _services_of(view: dict) -> dict[str, dict]:
    return {s["service_id"]: s for c in view["customers"] for s in c["services"]}


def test_the_seed_walk_through_over_http(stack, client: Client):
    api = client
    _setup(api)
    _service(api, "s1", "alba", 3, inventory=[{"item_id": "chlorine", "quantity": "2"}])
    _service(api, "s2", "alba", 10, stype="repair", workers=("ana", "ben"), minutes=50)  # 1h50 -> 2h x 2
    _service(api, "s3", "bay", 4, workers=("ben",))
    _service(api, "s4", "cove", 5)  # cove's own price 70.00 for weekly
    _service(api, "s5", "dune", 6, workers=("cy",), billing_status="qbd")
    _service(api, "s6", "dune", 7, workers=("cy",), billing_status="unbillable")
    api.ok(
        "POST",
        "/services",
        json={
            "id": "s7",
            "contact_id": "bay",
            "service_date": DAY.format(8),
            "service_type_id": "weekly",
            "worker_ids": ["ben"],
        },
        expect=201,
    )  # not completed

    # The page: customers with their services, amounts, badges and totals
    view = _view(api)
    by_customer = {c["contact_id"]: c for c in view["customers"]}
    assert list(by_customer) == ["alba", "bay", "cove", "dune"]
    alba = by_customer["alba"]
    assert (alba["name"], alba["email"], alba["tags"]) == ("Alba Pools", "alba@example.com", ["residential"])
    services = _services_of(view)
    # weekly 85 + trip fee 15 + chlorine 2 x 12 = 124; repair 2h (rounded up) x 2 workers x 60 = 240
    assert services["s1"]["amount"] == "124.00"
    assert services["s2"]["amount"] == "240.00"
    assert alba["total"] == "364.00"
    assert services["s4"]["amount"] == "85.00"  # 70 (customer price) + 15 trip fee
    s4_service = next(ln for ln in services["s4"]["lines"] if ln["line_kind"] == "service")
    assert (s4_service["price_source"], s4_service["price_detail"]["list_price"]) == ("customer", "85.00")
    assert {s: services[s]["badge"] for s in ("s1", "s5")} == {"s1": "Local", "s5": "QBD"}
    assert "s6" not in services and "s7" not in services
    assert services["s2"]["workers"] == ["Ana", "Ben"]
    assert Decimal(view["total"]) == sum(Decimal(c["total"]) for c in view["customers"])
    assert {ln["line_kind"]: ln["taxable"] for ln in services["s1"]["lines"]} == {
        "service": False,
        "trip_fee": False,
        "inventory": True,
    }

    # Filters: date range, billing status, service types, tags (any / all), workers
    assert set(_services_of(_view(api, "date_from=2026-11-04&date_to=2026-11-05"))) == {"s3", "s4"}
    assert set(_services_of(_view(api, "billing_status=quickbooks"))) == {"s5"}
    assert set(_services_of(_view(api, "billing_status=local"))) == {"s1", "s2", "s3", "s4"}
    assert set(_services_of(_view(api, "billing_status=unbillable"))) == {"s6"}
    assert set(_services_of(_view(api, "service_type=repair"))) == {"s2"}
    assert set(_services_of(_view(api, "tag=vip,commercial"))) == {"s3", "s4", "s5"}
    assert set(_services_of(_view(api, "tag=vip,residential&tag_match=all"))) == {"s4"}
    assert set(_services_of(_view(api, "worker=ben"))) == {"s2", "s3"}
    assert set(_services_of(_view(api, "worker=cy&service_type=weekly"))) == {"s5"}
    # several service types and several workers in one query (any of them)
    assert set(_services_of(_view(api, "service_type=repair,weekly&worker=ben,cy"))) == {"s2", "s3", "s5"}
    assert set(_services_of(_view(api, "service_type=repair,trip"))) == {"s2"}
    # Paged by customer
    first = _view(api, "limit=2")
    assert [c["contact_id"] for c in first["customers"]] == ["alba", "bay"] and first["next_cursor"]
    second = _view(api, f"limit=2&cursor={first['next_cursor']}")
    assert [c["contact_id"] for c in second["customers"]] == ["cove", "dune"] and second[
        "next_cursor"
    ] is None
    # Every filter value validated: unknown -> 400 naming the parameter
    for query, name in (
        ("service_type=nope", "service_type"),
        ("worker=ghost", "worker"),
        ("billing_status=paper", "billing_status"),
        ("tag_match=some", "tag_match"),
        ("date_from=yesterday", "date_from"),
        ("colour=red", "colour"),
    ):
        response = api.get(f"/billing?{query}")
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["fields"][0]["field"] == name

    # One customer's invoice from some of their services, a line edited, a due date
    created = api.ok(
        "POST",
        "/billing/customers/alba/invoices",
        json={"service_ids": ["s1"], "issue_date": "2026-11-30", "due_date": "2026-12-15"},
        expect=201,
    )
    (invoice,) = created["invoices"]
    assert (invoice["destination"], invoice["status"], invoice["due_date"], invoice["total"]) == (
        "local",
        "draft",
        "2026-12-15",
        "124.00",
    )
    assert {ln["line_kind"] for ln in invoice["lines"]} == {"service", "trip_fee", "inventory"}
    lines = [{"line_no": ln["line_no"]} for ln in invoice["lines"]]
    service_line = next(ln for ln in invoice["lines"] if ln["line_kind"] == "service")
    for ln in lines:
        if ln["line_no"] == service_line["line_no"]:
            ln["unit_price"] = "80.00"  # the office adjusts the price before sending
    edited = api.ok(
        "PATCH", f"/invoices/{invoice['id']}", json={"version": invoice["version"], "lines": lines}
    )
    assert edited["total"] == "119.00"
    assert "s1" not in _services_of(_view(api)) and "s2" in _services_of(_view(api))

    # The three "services not appearing" cases, answered
    assert api.ok("GET", "/services/s7/billing-status")["reason"] == "not_completed"
    assert api.ok("GET", "/services/s6/billing-status")["reason"] == "not_billable"
    invoiced = api.ok("GET", "/services/s1/billing-status")
    assert (invoiced["reason"], invoiced["invoice_ids"]) == ("invoiced", [invoice["id"]])
    # "already invoiced on invoice N": the number the office knows it by
    assert invoice["number"] and invoiced["invoice_numbers"] == [invoice["number"]]
    assert f"invoice {invoice['number']}" in invoiced["message"]
    assert api.ok("GET", "/services/s3/billing-status?date_to=2026-11-03")["reason"] == "outside_range"
    assert api.ok("GET", "/services/s3/billing-status")["reason"] == "billable"

    # Bulk: three selected customers, one invoice per destination each; dune has a QBD service
    op = api.ok(
        "POST",
        "/billing/invoices",
        json={"contact_ids": ["alba", "bay", "dune"], "issue_date": "2026-11-30"},
        expect=202,
    )
    result = api.wait_operation(op["operation_id"])
    assert result["status"] == "succeeded", result
    per_customer = {r["contact_id"]: r for r in result["result"]["results"]}
    assert {c: r["status"] for c, r in per_customer.items()} == {
        "alba": "invoiced",
        "bay": "invoiced",
        "dune": "invoiced",
    }
    dune = api.ok("GET", f"/invoices/{per_customer['dune']['invoice_ids'][0]}")
    assert (dune["destination"], dune["badge"], dune["sync_status"]) == (
        "quickbooks_desktop",
        "QBD",
        "not_synced",
    )
    left = _view(api)
    assert [c["contact_id"] for c in left["customers"]] == ["cove"]

    # Deleting an invoice puts its services back on the page
    api.ok("DELETE", f"/invoices/{invoice['id']}")
    assert "s1" in _services_of(_view(api))
    assert api.ok("GET", "/services/s1/billing-status")["reason"] == "billable"


def test_bulk_reports_each_customer_and_one_failure_does_not_stop_the_others(stack, client: Client):
    api = client
    _setup(api)
    _service(api, "q1", "alba", 3, billing_status="qbo")  # QuickBooks not connected: this one fails
    _service(api, "l1", "bay", 4)
    _service(api, "l2", "cove", 4)
    op = api.ok("POST", "/billing/invoices", json={"issue_date": "2026-11-30"}, expect=202)
    result = api.wait_operation(op["operation_id"])["result"]
    statuses = {r["contact_id"]: r["status"] for r in result["results"]}
    assert statuses == {"alba": "failed", "bay": "invoiced", "cove": "invoiced"}
    assert "QuickBooks is not connected" in result["results"][0]["error"]["message"]
    assert set(_services_of(_view(api))) == {"q1"}
    # an unknown filter value is refused before any work
    bad = api.post("/billing/invoices", json={"filters": {"worker_ids": ["ghost"]}})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "filters.worker"


def test_quickbooks_services_sync_at_once_and_void_brings_them_back(stack, connected_client: Client):
    api = connected_client
    _setup(api, default_invoice_type="qbo")
    _service(api, "v1", "bay", 3)
    (invoice,) = api.ok(
        "POST", "/billing/customers/bay/invoices", json={"issue_date": "2026-11-30"}, expect=201
    )["invoices"]
    assert invoice["destination"] == "quickbooks"

    from tests.conftest import wait_for

    synced = wait_for(
        # synced, then opened by the same consumer right after
        lambda: (
            ((i := api.ok("GET", f"/invoices/{invoice['id']}"))["sync_status"], i["status"])
            == ("synced", "open")
            and i
        ),
        timeout=60,
        what="the invoice in QuickBooks",
    )
    assert synced["badge"] == "QBO" and synced["status"] == "open"
    api.ok("POST", f"/invoices/{invoice['id']}/void", json={})
    assert set(_services_of(_view(api))) == {"v1"}


def test_a_service_has_an_audit_trail_and_its_items_filter_by_kind(client: Client):
    api = client
    _setup(api)
    _service(api, "v-audit", "bay", 2)
    # Its history says who recorded and completed it
    history = api.ok("GET", "/history/service/v-audit")["history"]
    assert history and history[-1]["to"] == "completed", history
    # Its billable items list by their line kind like task work does
    items = api.ok("GET", "/billable-items?line_kind=service")["items"]
    assert [i["line_kind"] for i in items] == ["service"] and items[0]["id"].startswith("v-audit.")
    assert api.get("/billable-items?line_kind=nonsense").status_code == 400


# ---- The gaps the audit of issue 17 found (/work/prompts/audit17.md)
def test_the_due_date_defaults_to_the_customers_terms_else_the_companys(stack, client: Client):
    # Given a company on Net 45 and one customer (bay) with its own Net 15
    api = client
    _setup(api)
    api.ok("PUT", "/billing-settings", json={"default_invoice_type": "local", "default_terms_days": 45})
    api.ok("PUT", "/contacts/bay/bill-profile", json={"bill_profile_id": None, "terms_days": 15})
    for sid, contact in (("t1", "alba"), ("t2", "bay"), ("t3", "bay"), ("t4", "cove")):
        _service(api, sid, contact, 3)

    def due(contact: str, **body: Any) -> str:
        (invoice,) = api.ok(
            "POST",
            f"/billing/customers/{contact}/invoices",
            json={"issue_date": "2026-11-30"} | body,
            expect=201,
        )["invoices"]
        return invoice["due_date"]

    # When each is invoiced without a due date, Then the customer's terms come first, else the company's
    assert due("alba") == "2027-01-14"  # +45
    assert due("bay", service_ids=["t2"]) == "2026-12-15"  # +15
    # and what the request says wins over both
    assert due("bay", service_ids=["t3"], terms_days=7) == "2026-12-07"
    # the bulk applies the same rule per customer
    op = api.ok("POST", "/billing/invoices", json={"issue_date": "2026-11-30"}, expect=202)
    result = api.wait_operation(op["operation_id"])["result"]
    (cove,) = result["results"]
    assert api.ok("GET", f"/invoices/{cove['invoice_ids'][0]}")["due_date"] == "2027-01-14"


def test_save_and_send_emails_each_invoice_and_a_customer_without_email_is_refused_first(
    stack, client: Client
):
    import requests

    api = client
    _setup(api)
    api.ok("POST", "/contacts", json={"id": "quiet", "name": "Quiet Pools"}, expect=201)
    _service(api, "m1", "alba", 3)
    _service(api, "m2", "quiet", 3)
    # Save and send: the invoice goes out by the invoice's own send (email with its PDF): open
    (invoice,) = api.ok(
        "POST",
        "/billing/customers/alba/invoices",
        json={"issue_date": "2026-11-30", "send": True},
        expect=201,
    )["invoices"]
    assert (invoice["status"], invoice["sent_via"], invoice["delivery_status"]) == ("open", "email", "sent")
    outbox = requests.get(stack.outbox_url, params={"to": "alba@example.com"}, timeout=30).json()["items"]
    assert len(outbox) == 1
    # A customer with no email address: 422 naming send, and nothing is written
    refused = api.post("/billing/customers/quiet/invoices", json={"issue_date": "2026-11-30", "send": True})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0]["field"] == "send"
    assert api.ok("GET", "/services/m2/billing-status")["reason"] == "billable"
    # Save as draft (the default) sends nothing
    (draft,) = api.ok(
        "POST", "/billing/customers/quiet/invoices", json={"issue_date": "2026-11-30"}, expect=201
    )["invoices"]
    assert (draft["status"], draft["sent_via"]) == ("draft", None)
    # The bulk sends too, and reports a customer it could not send to without stopping the others
    _service(api, "m3", "bay", 4)
    _service(api, "m4", "quiet", 4)
    op = api.ok("POST", "/billing/invoices", json={"issue_date": "2026-11-30", "send": True}, expect=202)
    results = {r["contact_id"]: r for r in api.wait_operation(op["operation_id"])["result"]["results"]}
    assert results["bay"]["status"] == "invoiced" and results["bay"]["sent"] == results["bay"]["invoice_ids"]
    assert results["quiet"]["status"] == "invoiced" and results["quiet"]["sent"] == []
    assert results["quiet"]["send_error"]["field"] == "to"
    bay = api.ok("GET", f"/invoices/{results['bay']['invoice_ids'][0]}")
    assert (bay["status"], bay["sent_via"]) == ("open", "email")


def test_service_invoices_are_taxed_on_taxable_lines_only_one_invoice_per_destination(stack, client: Client):
    # Given a default tax code of 7.25 % and a customer with a Local and a QBD service
    api = client
    _setup(api)
    api.ok(
        "POST",
        "/tax-codes",
        json={"id": "ca", "name": "California", "rate": "7.25", "is_default": True},
        expect=201,
    )
    _service(
        api, "x1", "alba", 3, inventory=[{"item_id": "chlorine", "quantity": "3"}]
    )  # 85 + 15 + 36 taxable
    _service(api, "x2", "alba", 4, stype="repair", workers=("ana",), minutes=5, billing_status="qbd")
    # When the customer is invoiced
    invoices = api.ok(
        "POST", "/billing/customers/alba/invoices", json={"issue_date": "2026-11-30"}, expect=201
    )["invoices"]
    # Then one invoice per destination
    by_destination = {i["destination"]: i for i in invoices}
    assert set(by_destination) == {"local", "quickbooks_desktop"}
    local, qbd = by_destination["local"], by_destination["quickbooks_desktop"]
    # tax only on the taxable lines (chlorine 36.00 x 7.25 % = 2.61), half-up to cents, in the total
    assert {ln["line_kind"]: ln["taxable"] for ln in local["lines"]} == {
        "service": False,
        "trip_fee": False,
        "inventory": True,
    }
    assert (local["subtotal"], local["tax_total"], local["total"]) == ("136.00", "2.61", "138.61")
    # repair is taxable: 1h05 -> 1h15 (15-minute round-up) x 60 = 75.00, tax 5.44 (5.4375 half-up)
    assert (qbd["subtotal"], qbd["tax_total"], qbd["total"]) == ("75.00", "5.44", "80.44")
    # The QBD invoice says it waits for the Desktop connection (it is not sent to QuickBooks Online)
    got = api.ok("GET", f"/invoices/{qbd['id']}")
    assert got["sync_status"] == "not_synced"
    assert got["sync_wait"]["reason"] == "desktop_connection", got["sync_wait"]
    # Each visit line's billable item says why it costs what it costs
    item = api.ok("GET", "/billable-items/x2.service")
    assert (item["visit_id"], item["price_detail"]["billing_method"]) == ("x2", "hourly_per_worker")
    assert (item["price_detail"]["rounded_minutes"], item["price_detail"]["minimum_applied"]) == (
        "75",
        "false",
    )


def test_a_completed_services_billing_status_can_be_changed_until_it_is_invoiced(stack, client: Client):
    api = client
    _setup(api)
    _service(api, "z1", "bay", 3, inventory=[{"item_id": "chlorine", "quantity": "1"}])
    # The office decides the visit is a courtesy: Unbillable, every line of it
    changed = api.ok("PATCH", "/services/z1", json={"billing_status": "unbillable"})
    assert (changed["billing_status"], changed["status"]) == ("unbillable", "completed")
    assert "z1" not in _services_of(_view(api))
    assert set(_services_of(_view(api, "billing_status=unbillable"))) == {"z1"}
    assert api.ok("GET", "/services/z1/billing-status")["reason"] == "not_billable"
    assert {i["status"] for i in api.ok("GET", "/billable-items?status=unbillable")["items"]} == {
        "unbillable"
    }
    # Then billable again, to QuickBooks Desktop this time: back on the page with the QBD badge
    api.ok("PATCH", "/services/z1", json={"billing_status": "qbd"})
    (row,) = _services_of(_view(api)).values()
    assert (row["service_id"], row["badge"], row["amount"]) == ("z1", "QBD", "112.00")
    history = api.ok("GET", "/history/service/z1")["history"]
    assert [h["reason"] for h in history[-2:]] == ["billing status unbillable", "billing status qbd"]
    # Anything else of a completed service stays as it was billed (409)
    assert api.request("PATCH", "/services/z1", json={"notes": "late"}).status_code == 409
    # Once invoiced, its billing status is its invoice's: 409, nothing changes
    (invoice,) = api.ok("POST", "/billing/customers/bay/invoices", json={}, expect=201)["invoices"]
    refused = api.request("PATCH", "/services/z1", json={"billing_status": "local"})
    assert refused.status_code == 409, refused.text
    assert invoice["id"] in refused.text or invoice["number"] in refused.text
    assert api.ok("GET", "/services/z1")["billing_status"] == "qbd"


def test_a_worker_is_linked_to_one_user_of_the_tenant_and_that_user_finds_their_worker(client: Client):
    api = client  # signed in as the JWT subject "user-1"
    assert api.request("GET", "/workers/me").status_code == 404  # not linked yet
    api.ok("POST", "/workers", json={"id": "w1", "name": "Ana", "user_id": "user-1"}, expect=201)
    assert api.ok("GET", "/workers/me")["id"] == "w1"
    # One user is one worker: a second link is refused and writes nothing
    taken = api.post("/workers", json={"id": "w2", "name": "Ana again", "user_id": "user-1"})
    assert taken.status_code == 409 and "w1" in taken.text, taken.text
    assert api.request("GET", "/workers/w2").status_code == 404
    api.ok("POST", "/workers", json={"id": "w2", "name": "Ben", "user_id": "user-2"}, expect=201)
    assert api.request("PATCH", "/workers/w2", json={"user_id": "user-1"}).status_code == 409
    assert api.ok("GET", "/workers/w2")["user_id"] == "user-2"
    # Moving the link frees the old user; deleting the worker frees its user
    api.ok("PATCH", "/workers/w1", json={"user_id": "user-3"})
    api.ok("PATCH", "/workers/w2", json={"user_id": "user-1"})
    assert api.ok("GET", "/workers/me")["id"] == "w2"
    api.ok("DELETE", "/workers/w1")
    api.ok("POST", "/workers", json={"id": "w3", "name": "Cy", "user_id": "user-3"}, expect=201)
    # Unlinking (null) frees it too
    api.ok("PATCH", "/workers/w2", json={"user_id": None})
    assert api.request("GET", "/workers/me").status_code == 404


def test_bulk_for_selected_customers_bills_only_their_services_the_filters_show(stack, client: Client):
    # The seed's bulk: filter the page, then tick customers: each gets what the filtered page showed
    api = client
    _setup(api)
    _service(api, "f1", "alba", 3)
    _service(api, "f2", "alba", 20)
    _service(api, "f3", "bay", 4, stype="repair")
    _service(api, "f4", "bay", 5)
    _service(api, "f5", "cove", 5)
    filters = {"date_to": "2026-11-10", "service_type_ids": ["weekly"]}
    shown = _services_of(_view(api, "date_to=2026-11-10&service_type=weekly"))
    assert set(shown) == {"f1", "f4", "f5"}
    op = api.ok(
        "POST",
        "/billing/invoices",
        json={"contact_ids": ["alba", "bay"], "filters": filters, "issue_date": "2026-11-30"},
        expect=202,
    )
    results = {r["contact_id"]: r for r in api.wait_operation(op["operation_id"])["result"]["results"]}
    assert set(results) == {"alba", "bay"}
    invoiced = {
        item_id.split(".")[0]
        for r in results.values()
        for invoice_id in r["invoice_ids"]
        for item_id in api.ok("GET", f"/invoices/{invoice_id}")["item_ids"]
    }
    assert invoiced == {"f1", "f4"}
    # what the filters hid, and the customer not ticked, stay on the page
    assert set(_services_of(_view(api))) == {"f2", "f3", "f5"}


def test_the_page_shows_each_customers_phone_and_address_which_quickbooks_gets_too(
    stack, connected_client: Client
):
    from tests.conftest import wait_for

    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    _setup(api)
    api.ok(
        "PATCH",
        "/contacts/bay",
        json={"phone": "(555) 010-2233", "address": "12 Harbor Rd\nBay City, CA 94000"},
    )
    _service(api, "p1", "bay", 3)
    (bay,) = [c for c in _view(api)["customers"] if c["contact_id"] == "bay"]
    assert (bay["phone"], bay["address"]) == ("(555) 010-2233", "12 Harbor Rd\nBay City, CA 94000")
    assert api.ok("GET", "/contacts/bay")["phone"] == "(555) 010-2233"
    # QuickBooks' customer carries them (PrimaryPhone, BillAddr one line per line)
    customer = wait_for(
        lambda: next(
            (
                c
                for c in stack.emulator.entities(realm, "Customer")
                if c["DisplayName"] == "Bay Pools" and c.get("PrimaryPhone")
            ),
            None,
        ),
        timeout=30,
        what="Bay Pools with its phone in QuickBooks",
    )
    assert customer["PrimaryPhone"] == {"FreeFormNumber": "(555) 010-2233"}
    assert (customer["BillAddr"]["Line1"], customer["BillAddr"]["Line2"]) == (
        "12 Harbor Rd",
        "Bay City, CA 94000",
    )
    # a phone QuickBooks cannot hold (over 30 characters) is refused here, naming the field
    bad = api.request("PATCH", "/contacts/bay", json={"phone": "1" * 31})
    assert bad.status_code in (400, 422) and bad.json()["error"]["fields"][0]["field"].endswith("phone")
