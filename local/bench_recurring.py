"""`make bench` section "recurring" (issue 16): draft invoices for 2,000 accounts of one bill
profile and period (seconds on the local stack, DynamoDB requests per invoice, goal <= 2), and
the seed's balance filters over 10,000 invoices (DynamoDB requests per page of 100, goal <= 3).

Requests are counted where moto serves them (local/moto_dynamodb.REQUESTS): every request of every
client, retries included. Timings on moto are not DynamoDB's; the counts carry over.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

# The issue's sizes; smaller ones only to check the section runs (FIELDBILL_BENCH_RECURRING_*).
ACCOUNTS = int(os.environ.get("FIELDBILL_BENCH_RECURRING_ACCOUNTS", "2000"))
INVOICES = int(os.environ.get("FIELDBILL_BENCH_RECURRING_INVOICES", "10000"))
PAGE = 100
PROFILE = "bp-bench"


def _seed_accounts(tenant: str, accounts: int) -> None:
    """Contacts on one profile, each with a weekly service (a tenth start mid-period: prorated),
    a fifth with a pending billable item, a third with an account balance."""
    from fieldbill.domain import recurring
    from fieldbill.store import recurring as store
    from fieldbill.store.models import (
        META,
        AccountBalance,
        BillableItem,
        Contact,
        Entity,
        Product,
        RecurringService,
    )

    rng = random.Random(16)
    store.create_profile(
        tenant,
        recurring.BillProfile(
            id=PROFILE, name="Residential", cadence=recurring.Cadence.MONTHLY, start_date=date(2026, 1, 1)
        ),
        "bench",
    )
    with Entity.batch_write() as batch:
        batch.save(
            Product(
                Product.key(tenant, "p-cart"),
                META,
                tenant_id=tenant,
                id="p-cart",
                gsi1pk=Product.list_key(tenant),
                gsi1sk="cart#p-cart",
                name="Cart pickup",
            )
        )
        for n in range(accounts):
            contact_id = f"c{n:05d}"
            batch.save(
                Contact(
                    Contact.key(tenant, contact_id),
                    META,
                    tenant_id=tenant,
                    id=contact_id,
                    gsi1pk=Contact.list_key(tenant),
                    gsi1sk=f"customer {n}#{contact_id}",
                    name=f"Customer {n}",
                    bill_profile_id=PROFILE,
                )
            )
            start = date(2026, 11, 1) + timedelta(days=rng.randrange(30)) if n % 10 == 0 else date(2026, 1, 1)
            service = recurring.RecurringService(
                id=f"s{n:05d}",
                contact_id=contact_id,
                name="Weekly cart pickup",
                product_id="p-cart",
                product_name="Cart pickup",
                rate=Decimal(rng.randrange(2_000, 12_000)) / 100,
                basis=recurring.RateBasis.PERIOD,
                start_date=start,
            )
            batch.save(
                RecurringService(
                    RecurringService.key(tenant, service.id),
                    META,
                    tenant_id=tenant,
                    id=service.id,
                    gsi1pk=RecurringService.list_key(tenant),
                    gsi1sk=RecurringService.list_sort_key(contact_id, service.id),
                    contact_id=contact_id,
                    name=service.name,
                    product_id=service.product_id,
                    product_name=service.product_name,
                    rate=service.rate,
                    basis=str(service.basis),
                    start_date=service.start_date.isoformat(),
                )
            )
            if n % 5 == 0:
                price = Decimal(rng.randrange(1_000, 9_000)) / 100
                item_id = f"e{n:05d}.task_entry"
                batch.save(
                    BillableItem(
                        BillableItem.key(tenant, item_id),
                        META,
                        tenant_id=tenant,
                        id=item_id,
                        gsi1pk=BillableItem.status_key(tenant, "pending"),
                        gsi1sk=BillableItem.status_sort_key(contact_id, "2026-11-05", item_id),
                        entry_id=f"e{n:05d}",
                        task_id=f"t{n:05d}",
                        contact_id=contact_id,
                        line_kind="task_entry",
                        description="Bulk pickup",
                        product_id="p-cart",
                        product_name="Cart pickup",
                        quantity=Decimal(1),
                        unit_price=price,
                        amount=price,
                        product_scope="task",
                        price_source="task",
                        work_date="2026-11-05",
                    )
                )
            if n % 3 == 0:
                batch.save(
                    AccountBalance(
                        AccountBalance.key(tenant),
                        contact_id,
                        tenant_id=tenant,
                        id=contact_id,
                        balance=Decimal(rng.randrange(1_000, 50_000)) / 100,
                    )
                )


def _say(message: str) -> None:
    print(f"[bench recurring] {message}", file=sys.stderr, flush=True)


def bench_drafts(results: dict[str, Any]) -> None:
    from fieldbill.domain.model import Destination
    from fieldbill.store import recurring as store
    from fieldbill.workflows.recurring import drafts
    from local import moto_dynamodb

    tenant = "bench-recurring"
    started = time.perf_counter()
    _seed_accounts(tenant, ACCOUNTS)
    seeded = time.perf_counter() - started
    _say(f"seeded {ACCOUNTS} accounts in {seeded:.1f}s")
    request = drafts.DraftsRequest(bill_profile_id=PROFILE, period="2026-11", destination=Destination.LOCAL)

    moto_dynamodb.REQUESTS.clear()
    started = time.perf_counter()
    shown = drafts.preview(tenant, request)
    preview_seconds = time.perf_counter() - started
    preview_requests = sum(moto_dynamodb.REQUESTS.values())
    _say(f"preview in {preview_seconds:.1f}s, {preview_requests} requests")

    moto_dynamodb.REQUESTS.clear()
    started = time.perf_counter()
    result, more = drafts.commit(tenant, "bench", request, lambda _p: None)
    seconds = time.perf_counter() - started
    by_action = dict(moto_dynamodb.REQUESTS)
    total = sum(by_action.values())
    created = int(result["counts"]["created"])
    _say(f"commit: {created} invoices in {seconds:.1f}s, {total} requests")

    moto_dynamodb.REQUESTS.clear()
    started = time.perf_counter()
    again, _ = drafts.commit(tenant, "bench", request, lambda _p: None)
    rerun_seconds = time.perf_counter() - started
    rerun_requests = sum(moto_dynamodb.REQUESTS.values())
    written = len(store.period_invoices(tenant, PROFILE, "2026-11"))
    results["recurring_drafts"] = {
        "accounts": ACCOUNTS,
        "invoices_created": created,
        "invoices_in_table": written,
        "seconds": round(seconds, 2),
        "invoices_per_second": round(created / seconds, 1),
        "dynamodb_requests": total,
        "dynamodb_requests_by_action": by_action,
        "dynamodb_requests_per_invoice": round(total / max(created, 1), 3),
        "goal_requests_per_invoice": 2,
        "preview_seconds": round(preview_seconds, 2),
        "preview_dynamodb_requests": preview_requests,
        "preview_invoices": shown.totals["invoices"],
        "rerun_created": int(again["counts"]["created"]),
        "rerun_seconds": round(rerun_seconds, 2),
        "rerun_dynamodb_requests": rerun_requests,
        "handed_over": more is not None,
        "seed_seconds": round(seeded, 2),
    }


def _seed_invoices(tenant: str, count: int, accounts: int) -> None:
    """`count` invoices of `accounts` contacts over five months: a third paid ($0 balance), a
    third open, a third drafts of which half are $0 (balance-only accounts)."""
    from fieldbill.domain import model as dm
    from fieldbill.store import account_balances
    from fieldbill.store.billing import invoice_record
    from fieldbill.store.models import Entity

    rng = random.Random(13)
    with Entity.batch_write() as batch:
        for n in range(count):
            issued = date(2026, 7 + n % 5, 1)
            kind = n % 3
            price = Decimal(0) if kind == 2 and n % 2 else Decimal(rng.randrange(2_000, 20_000)) / 100
            line = dm.InvoiceLine(
                line_no=1,
                item_id=f"i{n}",
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
                id=f"inv{n:05d}",
                tenant_id=tenant,
                run_id="bench",
                contact_id=f"c{rng.randrange(accounts):05d}",
                grouping=dm.GroupingMode.PER_CONTACT,
                group_key="bench",
                issue_date=issued,
                due_date=issued + timedelta(days=30),
                lines=(line,),
                subtotal=price,
                total=price,
                destination=dm.Destination.LOCAL,
            )
            record = invoice_record(invoice)
            if kind == 0:
                record.status, record.balance, record.amount_paid = "paid", Decimal(0), price
            elif kind == 1:
                record.status = "open"
            batch.save(record)
    account_balances.rebuild(tenant)


def _pages(tenant: str, wanted: Any, name: str, pages: int = 5) -> dict[str, Any]:
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
    _say(f"{name}: requests per page {counts}, invoices per page {sizes}")
    return {
        "pages": len(counts),
        "invoices_per_page": sizes,
        "dynamodb_requests_per_page": counts,
        "max_requests_per_page": max(counts),
        "seconds": round(time.perf_counter() - started, 2),
    }


def bench_balance_filters(results: dict[str, Any]) -> None:
    from fieldbill.store import invoices

    tenant = "bench-balances"
    started = time.perf_counter()
    _seed_invoices(tenant, INVOICES, ACCOUNTS)
    seeded = time.perf_counter() - started
    _say(f"seeded {INVOICES} invoices in {seeded:.1f}s")

    def amount(field: str, text: str) -> Any:
        return invoices.amount_filter(field, text)

    today = date(2026, 12, 3)
    seed_filters = {
        "balance_eq_0_and_account_balance_eq_0": invoices.InvoiceFilter(
            balance=amount("balance", "eq:0"), account_balance=amount("account_balance", "eq:0"), today=today
        ),
        "balance_lt_0_01": invoices.InvoiceFilter(balance=amount("balance", "lt:0.01"), today=today),
        "balance_eq_0_and_account_balance_gt_0": invoices.InvoiceFilter(
            balance=amount("balance", "eq:0"), account_balance=amount("account_balance", "gt:0"), today=today
        ),
        "account_balance_gte_100_sorted_by_balance": invoices.InvoiceFilter(
            account_balance=amount("account_balance", "gte:100"), sort="-balance", today=today
        ),
    }
    results["recurring_balance_filters"] = {
        "invoices": INVOICES,
        "accounts": ACCOUNTS,
        "page": PAGE,
        "seed_seconds": round(seeded, 2),
        **{name: _pages(tenant, wanted, name) for name, wanted in seed_filters.items()},
        "goal_requests_per_page": 3,
    }


def run(results: dict[str, Any]) -> None:
    from local.stack import LocalStack, StackOptions

    with LocalStack(StackOptions(log_level="WARNING", metrics=False)):
        bench_drafts(results)
        bench_balance_filters(results)


def summary(results: dict[str, Any]) -> str:
    d = results["recurring_drafts"]
    f = results["recurring_balance_filters"]
    # The seed's filters (goal <= 3); a list sorted by balance reads every match, apart.
    worst = max(v["max_requests_per_page"] for k, v in f.items() if isinstance(v, dict) and "sorted" not in k)
    ordered = max(v["max_requests_per_page"] for k, v in f.items() if isinstance(v, dict) and "sorted" in k)
    return (
        f"recurring drafts: {d['invoices_created']} invoices for {d['accounts']} accounts"
        f" in {d['seconds']} s,"
        f" {d['dynamodb_requests_per_invoice']} DynamoDB requests per invoice (goal <= 2)\n"
        f"balance filters over {f['invoices']} invoices: at most {worst} DynamoDB requests per page"
        f" of {f['page']} (goal <= 3); sorted by balance: {ordered} (every match is read)"
    )
