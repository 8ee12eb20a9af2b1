"""`make bench` section "jobs" (issue 14): a tenant with 1,000 job-shop jobs of 20 invoiceables
each; the suggested price and what is left of every job, DynamoDB requests per job (goal <= 1).

A job is one item with its invoiceables, so the job list (gsi1, whole items) returns ~200 jobs a
request, and one job alone is one GetItem. Requests are counted where moto serves them."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

JOBS = 1_000
INVOICEABLES = 20
PAGE = 200


def _jobs(tenant: str) -> list[Any]:
    from fieldbill.domain import jobs as dj

    rng = random.Random(14)
    out = []
    for n in range(JOBS):
        items = []
        for k in range(INVOICEABLES):
            charge = k % 2 == 1
            items.append(
                dj.Invoiceable(
                    id=f"i{k:02d}",
                    kind=dj.InvoiceableKind.CHARGE if charge else dj.InvoiceableKind.ORDER_ITEM,
                    description=f"{'Charge' if charge else 'Order item'} {k}",
                    product_id=f"p{k % 7}",
                    quantity=Decimal(rng.randint(1, 500)),
                    unit_price=Decimal(rng.randint(10, 9_999)) / 100,
                    category=("Press", "Bindery", "Alterations")[k % 3]
                    if charge
                    else dj.ORDER_ITEMS_CATEGORY,
                    charge_kind=rng.choice(list(dj.ChargeKind)) if charge else None,
                )
            )
        out.append(
            dj.Job(
                id=f"job-{n:04d}",
                tenant_id=tenant,
                customer_id=f"c{n % 100:03d}",
                billing_type=rng.choice(list(dj.BillingType)),
                invoiceables=tuple(items),
            )
        )
    return out


def run(results: dict[str, Any]) -> None:
    from fieldbill.domain import jobs as dj
    from fieldbill.store import jobs as store
    from local import moto_dynamodb
    from local.stack import LocalStack, StackOptions

    with LocalStack(StackOptions(log_level="WARNING", metrics=False)):
        tenant = "bench-jobs"
        started = time.perf_counter()
        store.put_many(_jobs(tenant))
        seeded = time.perf_counter() - started

        # Every job's suggested price and remaining, through the job list.
        moto_dynamodb.REQUESTS.clear()
        started = time.perf_counter()
        seen, cursor, total = 0, None, Decimal(0)
        while True:
            records, cursor = store.list_jobs(tenant, PAGE, cursor)
            for record in records:
                summary = dj.summarize(store.to_domain(record))
                total += summary.remaining
                seen += 1
            if cursor is None:
                break
        listed_requests = sum(moto_dynamodb.REQUESTS.values())
        listed_seconds = time.perf_counter() - started

        # One job at a time (a job page): one GetItem each.
        moto_dynamodb.REQUESTS.clear()
        started = time.perf_counter()
        sample = 100
        for n in range(sample):
            dj.summarize(store.to_domain(store.get(tenant, f"job-{n * 10:04d}")))
        single_requests = sum(moto_dynamodb.REQUESTS.values())
        single_seconds = time.perf_counter() - started

        results["jobs"] = {
            "jobs": seen,
            "invoiceables_per_job": INVOICEABLES,
            "seed_seconds": round(seeded, 2),
            "suggested_price_and_remaining_of_every_job": {
                "dynamodb_requests": listed_requests,
                "dynamodb_requests_per_job": round(listed_requests / max(seen, 1), 4),
                "seconds": round(listed_seconds, 2),
                "jobs_per_second": round(seen / max(listed_seconds, 1e-9), 1),
                "remaining_total": str(total),
            },
            "one_job_at_a_time": {
                "jobs": sample,
                "dynamodb_requests_per_job": round(single_requests / sample, 3),
                "ms_per_job": round(single_seconds / sample * 1000, 2),
            },
            "goal_requests_per_job": 1,
        }


def summary(results: dict[str, Any]) -> str:
    figures = results["jobs"]
    every = figures["suggested_price_and_remaining_of_every_job"]
    one = figures["one_job_at_a_time"]
    return (
        f"jobs: {figures['jobs']} jobs x {figures['invoiceables_per_job']} invoiceables, suggested price and "
        f"remaining of every job in {every['dynamodb_requests']} DynamoDB requests "
        f"({every['dynamodb_requests_per_job']} per job, goal <= {figures['goal_requests_per_job']}), "
        f"{every['jobs_per_second']} jobs/s; one job alone {one['dynamodb_requests_per_job']} request"
    )
