"""`make bench` section "lists": find invoices among 10,000 by a balance filter and by an issue-date
range, DynamoDB requests per page of 100 (counted where moto serves them); and (issue 16) the same
balance filter with an account-balance filter, the list showing each contact's account balance."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

INVOICES = 10_000
PAGE = 100


def _seed(tenant: str, count: int) -> None:
    from fieldbill.domain import model as dm
    from fieldbill.store.billing import invoice_record
    from fieldbill.store.models import Entity

    rng = random.Random(5)
    start = date(2026, 1, 1)
    with Entity.batch_write() as batch:
        for n in range(count):
            issued = start + timedelta(days=rng.randrange(365))
            price = Decimal(rng.randrange(2_000, 200_000)) / 100
            line = dm.InvoiceLine(
                line_no=1,
                item_id=f"i{n}",
                line_kind=dm.LineKind.TASK_ENTRY,
                work_date=issued,
                description="Weekly pool service",
                product_id="p1",
                product_name="Service",
                unit="h",
                quantity=Decimal(1),
                unit_price=price,
                amount=price,
            )
            invoice = dm.Invoice(
                id=f"inv{n:05d}",
                tenant_id=tenant,
                run_id="bench",
                contact_id=f"c{n % 500:03d}",
                grouping=dm.GroupingMode.PER_CONTACT,
                group_key=f"c{n % 500:03d}",
                issue_date=issued,
                due_date=issued + timedelta(days=30),
                lines=(line,),
                subtotal=price,
                total=price,
                destination=dm.Destination.LOCAL,
            )
            record = invoice_record(invoice)
            record.status = "open"
            batch.save(record)


def _pages(tenant: str, wanted: Any, pages: int) -> dict[str, Any]:
    from fieldbill.store import invoices
    from local import moto_dynamodb

    counts, sizes, cursor = [], [], None
    started = time.perf_counter()
    for _ in range(pages):
        moto_dynamodb.REQUESTS.clear()
        found, cursor = invoices.find(tenant, wanted, PAGE, cursor)
        counts.append(sum(moto_dynamodb.REQUESTS.values()))
        sizes.append(len(found))
        if cursor is None:
            break
    return {
        "pages": len(counts),
        "invoices_per_page": sizes,
        "dynamodb_requests_per_page": counts,
        "max_requests_per_page": max(counts),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run(results: dict[str, Any]) -> None:
    from fieldbill.store import invoices
    from local.stack import LocalStack, StackOptions

    with LocalStack(StackOptions(log_level="WARNING", metrics=False)):
        tenant = "bench-lists"
        started = time.perf_counter()
        _seed(tenant, INVOICES)
        seeded = time.perf_counter() - started
        today = date(2026, 12, 3)
        # About one invoice in ten owes more than 1,800.00; one month of the twelve is a range.
        by_balance = invoices.InvoiceFilter(balance=invoices.amount_filter("balance", "gt:1800"), today=today)
        by_dates = invoices.InvoiceFilter(
            issue_date_from=date(2026, 6, 1), issue_date_to=date(2026, 6, 30), today=today
        )
        results["invoice_lists"] = {
            "invoices": INVOICES,
            "page": PAGE,
            "seed_seconds": round(seeded, 2),
            "balance_gt_1800": _pages(tenant, by_balance, 5),
            "issue_date_june": _pages(tenant, by_dates, 5),
            "goal_requests_per_page": 3,
        }
        # --- issue 16: account balances (maintained; rebuilt here from the seeded open invoices)
        from fieldbill.store import account_balances

        account_balances.rebuild(tenant)
        with_account = invoices.InvoiceFilter(
            balance=invoices.amount_filter("balance", "gt:1800"),
            account_balance=invoices.amount_filter("account_balance", "gt:0"),
            today=today,
        )
        results["invoice_lists"]["balance_gt_1800_and_account_balance_gt_0"] = _listed_pages(
            tenant, with_account, 5
        )


def _listed_pages(tenant: str, wanted: Any, pages: int) -> dict[str, Any]:
    """As `_pages`, through the list the API serves (account balances and contact filters)."""
    from fieldbill.store import invoices
    from local import moto_dynamodb

    counts, sizes, cursor = [], [], None
    started = time.perf_counter()
    for _ in range(pages):
        moto_dynamodb.REQUESTS.clear()
        listed = invoices.find_listed(tenant, wanted, PAGE, cursor)
        counts.append(sum(moto_dynamodb.REQUESTS.values()))
        sizes.append(len(listed.records))
        cursor = listed.next_cursor
        if cursor is None:
            break
    return {
        "pages": len(counts),
        "invoices_per_page": sizes,
        "dynamodb_requests_per_page": counts,
        "max_requests_per_page": max(counts),
        "seconds": round(time.perf_counter() - started, 2),
    }
