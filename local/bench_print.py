"""`make bench`, print section: a 500-invoice "print many" laid out as one PDF.

Measured in a child process, so its peak memory is the print's own and not what the billing
section left behind: `rss_before_mb` is the child after importing the renderer and building the
invoices, `peak_rss_mb` its high-water mark after the print (resource.getrusage, no tracing: a
tracer would slow the layout it measures). The invoices look like the billing section's month:
500 customers, 20 lines each (10,000 entries).
"""

from __future__ import annotations

import io
import json
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pypdf import PdfReader

from fieldbill.documents import invoice_pdf
from fieldbill.documents.model import DocumentLine, InvoiceDocument
from fieldbill.domain.money import line_amount
from local.template import ROOT

INVOICES = 500
LINES = 20


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def documents(count: int, lines: int) -> list[InvoiceDocument]:
    rng = random.Random(20261203)
    docs = []
    for n in range(count):
        rows = []
        for k in range(lines):
            qty = Decimal(rng.randint(1, 40)) / 4
            price = Decimal(rng.choice(["45.00", "72.50", "80.00", "12.99", "0.65"]))
            day = date(2026, 11, 1) + timedelta(days=k % 30)
            rows.append(
                DocumentLine(
                    f"Pool service {day.isoformat()}, visit {k + 1}", qty, price, line_amount(qty, price)
                )
            )
        subtotal = sum((r.amount for r in rows), Decimal("0"))
        docs.append(
            InvoiceDocument(
                tenant_name="Bench Pools Inc.",
                customer_name=f"Customer {n:04d}",
                number=f"BENCH-{n:05d}",
                issue_date=date(2026, 11, 30),
                due_date=date(2026, 12, 30),
                status="open",
                lines=rows,
                subtotal=subtotal,
                tax=Decimal("0.00"),
                total=subtotal,
                amount_paid=Decimal("0.00"),
                balance=subtotal,
                billing_email=f"customer{n:04d}@example.com",
            )
        )
    return docs


def measure(count: int, lines: int) -> dict[str, Any]:
    docs = documents(count, lines)
    before = _rss_mb()
    started = time.perf_counter()
    pdf = invoice_pdf.render_many(docs)
    seconds = time.perf_counter() - started
    peak = _rss_mb()
    return {
        "invoices": count,
        "lines_per_invoice": lines,
        "seconds": round(seconds, 1),
        "ms_per_invoice": round(seconds * 1000 / count, 1),
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "pdf_bytes": len(pdf),
        "pages": len(PdfReader(io.BytesIO(pdf)).pages),
        "chunk": invoice_pdf.CHUNK,
    }


def run(results: dict[str, Any], count: int = INVOICES, lines: int = LINES) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "local.bench_print", str(count), str(lines)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    results["print_many"] = figures
    print(
        f"[bench] print many: {figures['invoices']} invoices x {figures['lines_per_invoice']} lines, "
        f"{figures['pages']} pages in {figures['seconds']} s, peak RSS {figures['peak_rss_mb']} MB",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
