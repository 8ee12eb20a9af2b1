"""Bill once for completed services, against the local DynamoDB (moto), through the real store and
workflows: concurrent bulk creations put each service on at most one live invoice, a service
completed twice is compiled once, and a deleted or voided invoice puts its services back."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import date

import pytest

from fieldbill.domain.errors import Conflict
from fieldbill.store import services as store
from fieldbill.store.models import BillableItem, Entity, Invoice
from fieldbill.workflows.invoices import commands
from fieldbill.workflows.services import billing as services
from tests.integration.seed_services import seed_services

ISSUE = date(2026, 11, 30)


def _invoices(tenant: str) -> list[Invoice]:
    return [r for r in Entity.gsi1.query(Invoice.list_key(tenant)) if isinstance(r, Invoice)]


def _live_item_ids(tenant: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for invoice in _invoices(tenant):
        if invoice.status not in ("deleted", "void"):
            counts.update(str(i) for i in invoice.item_ids or [])
    return counts


def _bulk(tenant: str, operation_id: str, **request) -> dict:
    return services.run_bulk(
        tenant,
        f"op:{operation_id}",
        operation_id,
        services.BulkServicesRequest(issue_date=ISSUE, **request),
        lambda partial: None,
    )


def test_concurrent_bulk_creations_put_each_service_on_at_most_one_live_invoice(stack, tenant_id):
    # Given 30 customers with 4 completed services each
    seeded = seed_services(tenant_id, customers=30, visits_per_customer=4)
    # When three bulk creations over all customers run at the same time
    results: list[dict] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def bulk(n: int) -> None:
        try:
            start.wait()
            results.append(_bulk(tenant_id, f"race{n}-{uuid.uuid4().hex[:6]}"))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=bulk, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Then every service item is on exactly one live invoice
    live = _live_item_ids(tenant_id)
    assert set(live) == set(seeded.item_ids)
    assert max(live.values()) == 1
    # and each customer was invoiced by exactly one of the three (the others were told why not)
    invoiced = Counter(
        r["contact_id"] for res in results for r in res["results"] if r["status"] == "invoiced"
    )
    assert set(invoiced) == set(seeded.contact_ids) and max(invoiced.values()) == 1
    losers = [r for res in results for r in res["results"] if r["status"] == "failed"]
    # (a loser learns it from its items, or from the invoice-number counter the winners moved)
    assert all(
        "another request" in r["error"]["message"] or "sequence is busy" in r["error"]["message"]
        for r in losers
    ), losers
    # and nothing is left on the billing page
    assert services.billing_view(tenant_id, services.Filters()).customers == []
    # The writers reuse the counter their last commit left (numbering.Hint); racing, the
    # live invoices still hold distinct numbers without a gap
    numbers = sorted(int(i.number) for i in _invoices(tenant_id) if i.number)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_a_deleted_or_voided_invoice_puts_its_services_back_on_the_page(stack, tenant_id):
    seed_services(tenant_id, customers=3, visits_per_customer=2)
    done = _bulk(tenant_id, "first")
    by_contact = {r["contact_id"]: r["invoice_ids"][0] for r in done["results"]}
    assert services.billing_view(tenant_id, services.Filters()).customers == []
    # a draft deleted: its customer's services are back, billable
    commands.delete(tenant_id, by_contact["c00000"], "office", "wrong date")
    # an open invoice voided: the same
    commands.mark_sent(tenant_id, by_contact["c00001"], "office")
    commands.void(tenant_id, by_contact["c00001"], "office", "billed in error")
    back = services.billing_view(tenant_id, services.Filters())
    assert [c.contact_id for c in back.customers] == ["c00000", "c00001"]
    # and they can be invoiced again, once
    again = _bulk(tenant_id, "second")
    assert {r["contact_id"]: r["status"] for r in again["results"]} == {
        "c00000": "invoiced",
        "c00001": "invoiced",
    }
    assert max(_live_item_ids(tenant_id).values()) == 1


def test_a_service_completed_twice_is_compiled_once(stack, tenant_id):
    seed_services(tenant_id, customers=1, visits_per_customer=0)
    visit = store.create_visit(
        tenant_id,
        "tech",
        {
            "id": "v1",
            "contact_id": "c00000",
            "service_date": ISSUE,
            "service_type_id": "weekly",
            "worker_ids": ["ana"],
        },
    )
    errors: list[BaseException] = []
    done: list[str] = []
    start = threading.Barrier(2)

    def complete() -> None:
        try:
            start.wait()
            done.append(store.complete_visit(tenant_id, visit.id, "tech").status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done == ["completed"] and len(errors) == 1 and isinstance(errors[0], Conflict)
    items = [
        i
        for i in Entity.gsi1.query(BillableItem.status_key(tenant_id, "pending"))
        if isinstance(i, BillableItem)
    ]
    assert sorted(i.id for i in items) == ["v1.service", "v1.trip_fee"]
    with pytest.raises(Conflict):
        store.complete_visit(tenant_id, "v1", "tech")
