"""`make bench`: compile and generate at month-end scale on the local stack, the sync benchmark,
a 500-invoice "print many" (local/bench_print.py), and finding invoices among 10,000 by a filter
(local/bench_lists.py).

Figures go to .bench/results.json (and stdout). DynamoDB requests are counted where moto serves
them (local/moto_dynamodb.REQUESTS), so every request of every client is counted, retries included.
Timings on moto are not DynamoDB's; the request counts are what carries over to AWS.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import sys
import time
from datetime import date
from typing import Any, TextIO

from local.template import ROOT

RESULTS = ROOT / ".bench" / "results.json"
LOG = ROOT / ".bench" / "bench.log"


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_billing(results: dict[str, Any], entries: int = 10_000, contacts: int = 500) -> None:
    from fieldbill.domain import model as dm
    from fieldbill.store.models import BillableItem, Entity
    from fieldbill.workflows.billing import pages as billing
    from local import moto_dynamodb
    from local.stack import LocalStack, StackOptions
    from tests.integration.seed import seed_work

    with LocalStack(StackOptions(log_level="WARNING", metrics=False)):
        tenant = "bench"
        per_contact = entries // contacts
        started = time.perf_counter()
        seed_work(
            tenant,
            contacts=contacts,
            entries_per_contact=per_contact,
            rng=random.Random(1),
            mileage_share=0.3,
        )
        seed_seconds = time.perf_counter() - started

        # ---- compile
        moto_dynamodb.REQUESTS.clear()
        rss_before = _rss_mb()
        started = time.perf_counter()
        done = billing.compile_all(tenant, "bench", billing.Scope(), run_id="bench")
        billed, items = done.entries_billed, done.items_created
        compile_seconds = time.perf_counter() - started
        compile_requests = dict(moto_dynamodb.REQUESTS)
        compile_total = sum(compile_requests.values())

        # ---- generate, one invoice per contact
        moto_dynamodb.REQUESTS.clear()
        started = time.perf_counter()
        cursor, invoices, lines = None, 0, 0
        while True:
            result = billing.generate_page(
                tenant,
                "bench",
                "bench",
                dm.GroupingMode.PER_CONTACT,
                billing.Scope(),
                date(2026, 11, 1),
                cursor=cursor,
                destination=dm.Destination.QUICKBOOKS,
            )
            invoices += len(result.invoice_ids)
            lines += result.items_invoiced
            cursor = result.cursor
            if not cursor:
                break
        generate_seconds = time.perf_counter() - started
        generate_requests = dict(moto_dynamodb.REQUESTS)
        generate_total = sum(generate_requests.values())
        pending_left = Entity.gsi1.count(BillableItem.status_key(tenant, "pending"))

    results["compile"] = {
        "entries": entries,
        "entries_billed": billed,
        "items_created": items,
        "seconds": round(compile_seconds, 2),
        "entries_per_second": round(billed / compile_seconds, 1),
        "dynamodb_requests": compile_total,
        "dynamodb_requests_by_action": compile_requests,
        "dynamodb_requests_per_entry": round(compile_total / max(billed, 1), 4),
        "goal_requests_per_entry": 0.05,
        "seed_seconds": round(seed_seconds, 2),
    }
    results["generate"] = {
        "contacts": contacts,
        "invoices": invoices,
        "lines": lines,
        "pending_items_left": pending_left,
        "seconds": round(generate_seconds, 2),
        "invoices_per_second": round(invoices / generate_seconds, 1),
        "dynamodb_requests": generate_total,
        "dynamodb_requests_by_action": generate_requests,
        "dynamodb_requests_per_invoice": round(generate_total / max(invoices, 1), 3),
        "goal_requests_per_invoice": 2,
        "average_lines_per_invoice": round(lines / max(invoices, 1), 1),
    }
    results["memory"] = {"peak_rss_mb": _rss_mb(), "rss_before_compile_mb": rss_before}


def summary(section: str, results: dict[str, Any]) -> str:
    """A few readable lines per section for the console; .bench/results.json keeps every figure."""
    if f"{section}_error" in results:
        return f"{section}: FAILED (traceback in {RESULTS.relative_to(ROOT)})"
    if section == "jobs":  # job-shop jobs (issue 14)
        from local import bench_jobs

        return bench_jobs.summary(results)
    if section == "imports":
        from local import importtime

        return importtime.table(results["handler_import_ms"])
    if section == "recurring":
        from local import bench_recurring

        return bench_recurring.summary(results)
    if section == "services":  # issue 17
        from local import bench_services

        return bench_services.summary(results)
    if section == "billing":
        c, g = results["compile"], results["generate"]
        return (
            f"compile: {c['entries_billed']} entries, {c['dynamodb_requests_per_entry']} DynamoDB requests"
            f" per entry (goal <= {c['goal_requests_per_entry']}), {c['entries_per_second']} entries/s\n"
            f"generate: {g['invoices']} invoices, {g['dynamodb_requests_per_invoice']} DynamoDB requests"
            f" per invoice (goal <= {g['goal_requests_per_invoice']}), {g['invoices_per_second']} invoices/s"
        )
    if section == "lists":
        figures = results["invoice_lists"]
        worst = {k: v["max_requests_per_page"] for k, v in figures.items() if isinstance(v, dict)}
        return (
            f"lists of {figures['invoices']} invoices, pages of {figures['page']}: at most "
            + ", ".join(f"{n} ({k})" for k, n in worst.items())
            + f" DynamoDB requests per page (goal <= {figures['goal_requests_per_page']})"
        )
    if section == "print":
        p = results["print_many"]
        return (
            f"print many: {p['invoices']} invoices x {p['lines_per_invoice']} lines in {p['seconds']} s,"
            f" peak {p['peak_rss_mb']} MB, {p['pages']} pages"
        )
    lines = []
    for scenario in ("no_faults", "faults", "naive"):
        figures = results.get("sync", {}).get(scenario, {})
        if "invoices_per_minute" in figures:
            lines.append(
                f"sync {scenario}: {figures['invoices_per_minute']} invoices/min"
                f" (ratio to ceiling {figures.get('ratio_to_ceiling')}),"
                f" duplicates {figures.get('duplicates')}"
            )
    return "\n".join(lines) or "sync: see the results file"


def _stdout_to_log() -> TextIO:
    """Handlers print JSON logs and EMF metric lines on stdout (as in Lambda): from here on they go
    to .bench/bench.log, and the console (the returned stream) shows only progress and summaries."""
    sys.stdout.flush()
    console = os.fdopen(os.dup(1), "w")
    LOG.parent.mkdir(exist_ok=True)
    with LOG.open("ab") as log:
        os.dup2(log.fileno(), 1)
    return console


def _save(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**previous, **results}, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import traceback

    parser = argparse.ArgumentParser(prog="python -m local.bench")
    # --- recurring billing (issue 16): "recurring" runs only when asked (--only recurring) or in
    # a full `make bench`.
    # "jobs": job-shop jobs (issue 14, local/bench_jobs.py); "services": the billing page of
    # completed services (issue 17).
    sections_all = ["imports", "billing", "sync", "print", "lists", "recurring", "jobs", "services"]
    parser.add_argument("--only", choices=sections_all, action="append")
    sections = parser.parse_args(argv).only or sections_all
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "note": "moto in-process; request counts carry over to DynamoDB, timings do not",
    }
    failed = False
    console = _stdout_to_log()
    for section in sections:
        started = time.perf_counter()
        try:
            if section == "imports":
                from local import importtime

                results["handler_import_ms"] = importtime.measure()
            elif section == "billing":
                bench_billing(results)
            elif section == "print":
                from local import bench_print

                bench_print.run(results)
            elif section == "lists":
                from local import bench_lists

                bench_lists.run(results)
            elif section == "recurring":
                from local import bench_recurring

                bench_recurring.run(results)
            elif section == "jobs":  # job-shop jobs (issue 14)
                from local import bench_jobs

                bench_jobs.run(results)
            elif section == "services":  # issue 17
                from local import bench_services

                bench_services.run(results)
            else:
                from local import bench_sync

                bench_sync.run(results)
            results.pop(f"{section}_error", None)  # an earlier run's failure is not this one's
        except Exception:
            failed = True
            results[f"{section}_error"] = traceback.format_exc()[-2000:]
        print(f"[bench] {section} done in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
        _save(results)
        print(summary(section, results), file=console, flush=True)
    print(f"all figures: {RESULTS.relative_to(ROOT)}; handler output: {LOG.relative_to(ROOT)}", file=console)
    console.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
