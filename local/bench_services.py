"""`make bench` section "services" (issue 17): the billing page over 10,000 unbilled visits of 500
customers with two filters (date range and service types), DynamoDB requests and milliseconds per
page of 50 customers; then bulk invoices for those 500 customers, DynamoDB requests per invoice.

Requests are counted where moto serves them (local/moto_dynamodb.REQUESTS): every request of every
client, retries included. Timings are moto's, not DynamoDB's; the request counts carry over.

Where a page's milliseconds go (cProfile of one page, 100 customers x 20 visits,): moto
about two thirds (an index query walks every item of the table for its partition, sizes and
deep-copies each item it evaluates before the filter), botocore's parse of the answer ~10%,
PynamoDB making models of the lines the page shows ~7%, our code (grouping, badges) 0.3%: a page
reads its customers' lines and little more. A page costs more as the table grows (moto's walk), not
as the page does (2.6 s a page of 50 customers over 2,000 visits, 6.9 s over 10,000, on a shared
2-core machine at load 1-3.4). Asking for fewer attributes (ProjectionExpression) made a page 3x
slower on moto (its projection copies and converts each attribute), so the page reads whole items.
"""

from __future__ import annotations

import random
import time
from datetime import date
from typing import Any

CUSTOMERS = 500
VISITS = 10_000
PAGE_CUSTOMERS = 50


def _pages(tenant: str, filters: Any) -> dict[str, Any]:
    from fieldbill.workflows.services import billing
    from local import moto_dynamodb

    cursor: str | None = None
    requests: list[int] = []
    millis: list[float] = []
    customers = services = 0
    while True:
        moto_dynamodb.REQUESTS.clear()
        started = time.perf_counter()
        view = billing.billing_view(tenant, filters, PAGE_CUSTOMERS, cursor)
        millis.append((time.perf_counter() - started) * 1000)
        requests.append(sum(moto_dynamodb.REQUESTS.values()))
        customers += len(view.customers)
        services += sum(len(c.services) for c in view.customers)
        cursor = view.next_cursor
        if not cursor:
            break
    return {
        "pages": len(requests),
        "customers": customers,
        "services": services,
        "dynamodb_requests_per_page_max": max(requests),
        "dynamodb_requests_per_page_avg": round(sum(requests) / len(requests), 2),
        "ms_per_page_avg": round(sum(millis) / len(millis), 1),
        "ms_per_page_max": round(max(millis), 1),
        "goal_requests_per_page": 5,
    }


def run(results: dict[str, Any], customers: int = CUSTOMERS, visits: int = VISITS) -> None:
    from fieldbill.workflows.services import billing
    from local import moto_dynamodb
    from local.stack import LocalStack, StackOptions
    from tests.integration.seed_services import seed_services

    with LocalStack(StackOptions(log_level="WARNING", metrics=False)):
        tenant = "bench-services"
        started = time.perf_counter()
        seeded = seed_services(tenant, customers, visits // customers, rng=random.Random(3))
        seed_seconds = time.perf_counter() - started

        two_filters = billing.Filters(
            date_from=date(2026, 11, 1), date_to=date(2026, 11, 21), service_type_ids=["weekly", "repair"]
        )
        filtered = _pages(tenant, two_filters)

        moto_dynamodb.REQUESTS.clear()
        started = time.perf_counter()
        done = billing.run_bulk(
            tenant,
            "bench",
            "bench-services",
            billing.BulkServicesRequest(issue_date=date(2026, 11, 30)),
            lambda partial: None,
        )
        bulk_seconds = time.perf_counter() - started
        bulk_requests = dict(moto_dynamodb.REQUESTS)
        bulk_total = sum(bulk_requests.values())
        left = billing.billing_view(tenant, billing.Filters(), PAGE_CUSTOMERS).customers

    results["services"] = {
        "customers": customers,
        "visits": len(seeded.visit_ids),
        "items": len(seeded.item_ids),
        "seed_seconds": round(seed_seconds, 2),
        "view_two_filters": filtered | {"filters": "date 2026-11-01..21, service types weekly+repair"},
        "bulk": {
            "customers": done["customers"],
            "invoices": done["invoices"],
            "failed": done["failed"],
            "customers_left_on_page": len(left),
            "seconds": round(bulk_seconds, 2),
            "dynamodb_requests": bulk_total,
            "dynamodb_requests_by_action": bulk_requests,
            "dynamodb_requests_per_invoice": round(bulk_total / max(done["invoices"], 1), 3),
            "goal_requests_per_invoice": 2,
        },
    }


def summary(results: dict[str, Any]) -> str:
    s = results["services"]
    view, bulk = s["view_two_filters"], s["bulk"]
    return (
        f"services view: {s['visits']} visits / {s['customers']} customers, two filters:"
        f" {view['dynamodb_requests_per_page_max']} DynamoDB requests per page of {PAGE_CUSTOMERS} customers"
        f" at most (goal <= {view['goal_requests_per_page']}), {view['ms_per_page_avg']} ms per page\n"
        f"services bulk: {bulk['invoices']} invoices,"
        f" {bulk['dynamodb_requests_per_invoice']} DynamoDB requests per invoice"
        f" (goal <= {bulk['goal_requests_per_invoice']}), {bulk['failed']} failed"
    )
