"""The billing page's reads against the local DynamoDB (docs/data-model.md, pattern S1): pages of
customers kept whole, a bounded number of DynamoDB requests per page, filters applied by DynamoDB."""

from __future__ import annotations

from collections import Counter
from datetime import date

from fieldbill.workflows.services import billing as services
from local import moto_dynamodb
from tests.integration.seed_services import seed_services


def _requests() -> int:
    return sum(moto_dynamodb.REQUESTS.values())


def test_pages_hold_whole_customers_in_at_most_five_requests_each(stack, tenant_id):
    seeded = seed_services(tenant_id, customers=55, visits_per_customer=4)
    filters = services.Filters(
        date_from=date(2026, 11, 1), date_to=date(2026, 11, 21), service_type_ids=["weekly"]
    )
    seen: Counter[str] = Counter()
    cursor, pages = None, 0
    while True:
        moto_dynamodb.REQUESTS.clear()
        view = services.billing_view(tenant_id, filters, 50, cursor)
        # one batch read (settings, filter values), the query pages, one batch read of the customers
        assert 3 <= _requests() <= 5, dict(moto_dynamodb.REQUESTS)
        pages += 1
        for customer in view.customers:
            seen[customer.contact_id] += 1
            for service in customer.services:
                assert service.service_type_id == "weekly"
                assert "2026-11-01" <= service.service_date <= "2026-11-21"
        cursor = view.next_cursor
        if not cursor:
            break
    assert pages == 2
    # every customer on exactly one page (a customer's services are never split)
    assert max(seen.values()) == 1 and set(seen) <= set(seeded.contact_ids)


def test_tags_any_and_all_and_workers_filter_the_page(stack, tenant_id):
    seed_services(tenant_id, customers=14, visits_per_customer=3)
    vip = services.billing_view(tenant_id, services.Filters(tags=["vip"]))
    assert [c.contact_id for c in vip.customers] == ["c00000", "c00007"]
    both = services.billing_view(tenant_id, services.Filters(tags=["vip", "commercial"], tag_match="all"))
    assert [c.contact_id for c in both.customers] == ["c00007"]
    ana = services.billing_view(tenant_id, services.Filters(worker_ids=["ana"]))
    assert ana.customers and all("ana" in s.worker_ids for c in ana.customers for s in c.services)


# ---- The bulk invoice's DynamoDB cost (make bench "services": goal <= 2 per invoice)
def test_bulk_invoices_cost_at_most_two_dynamodb_requests_per_invoice(stack, tenant_id):
    # Given 60 customers with unbilled services (two pages of the filter) and a default tax code,
    # so every invoice is numbered and taxed as in production
    from fieldbill.store import tax_codes

    seed_services(tenant_id, customers=60, visits_per_customer=3)
    tax_codes.create(
        tenant_id, "seed", {"id": "ca", "name": "California", "rate": "7.25", "is_default": True}
    )
    # When every customer matching the filter is invoiced in bulk
    moto_dynamodb.REQUESTS.clear()
    done = services.run_bulk(
        tenant_id,
        "bulk",
        "bulk-cost",
        services.BulkServicesRequest(issue_date=date(2026, 11, 30)),
        lambda partial: None,
    )
    # Then each customer has its invoice, for at most two requests an invoice: its transaction,
    # and a share of what a page reads once (the lines, the customers, the products, the rules)
    assert (done["failed"], done["customers"]) == (0, 60)
    assert done["invoices"] >= 60
    per_invoice = _requests() / done["invoices"]
    assert per_invoice <= 2, dict(moto_dynamodb.REQUESTS)
