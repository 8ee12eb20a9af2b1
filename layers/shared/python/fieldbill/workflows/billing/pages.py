"""Compile and generate: the logic behind the billing-run steps and the API's async commands.

Both work a page at a time, so a Lambda never runs out of time and the state machine (or the
jobs worker) loops with a cursor. Both are safe to retry from any point: a page compiled twice
bills nothing twice, and a generate retried writes the same invoices (deterministic ids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from fieldbill.domain import compile as dcompile
from fieldbill.domain import invoicing, tax
from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict
from fieldbill.domain.products import Assignments, default_products_for
from fieldbill.observability import logger
from fieldbill.store import billing as store
from fieldbill.store import tax_codes
from fieldbill.workflows.billing.destination import invoice_rules

COMPILE_PAGE = 2000
GENERATE_PAGE = 1000
# An invoice's items move in the same transaction as the invoice (100 actions at most).
MAX_LINES_PER_INVOICE = store.TRANSACTION_MAX - 1 - store.NUMBERING_PARTS


@dataclass
class Scope:
    contact_ids: list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None

    def admits(self, contact_id: str | None, work_date: str) -> bool:
        if self.contact_ids is not None and contact_id not in self.contact_ids:
            return False
        if self.date_from and work_date < self.date_from:
            return False
        return not (self.date_to and work_date > self.date_to)


@dataclass
class CompileResult:
    entries_billed: int = 0
    items_created: int = 0
    entries_skipped: int = 0
    entries_seen: int = 0
    cursor: str | None = None
    item_ids: list[str] = field(default_factory=list)


def compile_page(
    tenant_id: str,
    actor: str,
    scope: Scope,
    cursor: str | None = None,
    run_id: str | None = None,
    limit: int = COMPILE_PAGE,
) -> CompileResult:
    """Compile one page of stopped, unbilled entries into pending billable items."""
    records, next_cursor = store.unbilled_entries(tenant_id, scope.date_from, scope.date_to, limit, cursor)
    result = CompileResult(entries_seen=len(records), cursor=next_cursor)
    if not records:
        return result
    context = store.load_compile_context(tenant_id, records)
    lookup = Assignments(context.assignments)
    candidates, items = [], []
    for record in records:
        task = context.tasks.get(record.task_id)
        if task is None or not scope.admits(task.client_contact_id, record.work_date):
            continue
        contact = context.contacts.get(task.client_contact_id or "")
        entry = store.entry_to_domain(record)
        compiled = dcompile.compile_task(
            task, contact, [entry], lookup, context.price_lists, context.products
        )
        if compiled:
            candidates.append(record)
            items.extend(compiled)
    # The context already lists the tenant's products: only a default it lacks is created.
    missing = [p for p in default_products_for(tenant_id, items) if p.id not in context.products]
    store.ensure_products(missing, actor)
    written = store.write_compiled(candidates, items, actor, run_id)
    result.entries_billed = len(written.billed_entries)
    result.items_created = len(written.items)
    result.entries_skipped = len(written.skipped_entries)
    result.item_ids = [i.id for i in written.items]
    logger.info(
        "compiled page",
        extra={
            "tenant_id": tenant_id,
            "run_id": run_id,
            "entries_billed": result.entries_billed,
            "items_created": result.items_created,
        },
    )
    return result


def compile_all(
    tenant_id: str,
    actor: str,
    scope: Scope,
    run_id: str | None = None,
    limit: int = COMPILE_PAGE,
    progress: Callable[[dict[str, int]], None] | None = None,
) -> CompileResult:
    """Compile page after page until no candidate is left; the counts are the pages' sums.
    `progress` hears the counts after each page but the last (an operation's progress write,
    where a cancelled operation stops: each page is whole, so it stops between pages)."""
    total = CompileResult()
    cursor = None
    while True:
        page = compile_page(tenant_id, actor, scope, cursor=cursor, run_id=run_id, limit=limit)
        total.entries_billed += page.entries_billed
        total.items_created += page.items_created
        total.entries_skipped += page.entries_skipped
        total.entries_seen += page.entries_seen
        total.item_ids += page.item_ids
        cursor = page.cursor
        if not cursor:
            return total
        if progress is not None:
            progress(
                {
                    "entries_billed": total.entries_billed,
                    "items_created": total.items_created,
                    "entries_skipped": total.entries_skipped,
                }
            )


@dataclass
class GenerateResult:
    invoice_ids: list[str] = field(default_factory=list)
    items_invoiced: int = 0
    conflicts: int = 0
    cursor: str | None = None


def generate(
    tenant_id: str,
    actor: str,
    run_id: str,
    grouping: dm.GroupingMode,
    items: Sequence,
    issue_date: date,
    destination: dm.Destination = dm.Destination.QUICKBOOKS,
) -> GenerateResult:
    """Draft invoices for these pending item records, one transaction per invoice. Production
    paths pass `destination` from destination.resolve; the default serves tests and benchmarks."""
    result = GenerateResult()
    rules = invoice_rules(tenant_id, destination)
    by_id = {rec.id: rec for rec in items}
    domain_items = [store.item_to_domain(rec) for rec in items if rec.status == "pending"]
    # issue 15: the page's contacts' and products' tax choices in a batch, not one read each
    tax_codes.prefetch(rules.tax, (i.contact_id for i in domain_items), (i.product_id for i in domain_items))
    groups = invoicing.group_items(domain_items, grouping)
    for group in groups.values():
        # An invoice never exceeds one transaction: very long groups become several invoices.
        for start in range(0, len(group), MAX_LINES_PER_INVOICE):
            part = group[start : start + MAX_LINES_PER_INVOICE]
            invoice = invoicing.build_invoice(
                part, run_id=run_id, grouping=grouping, issue_date=issue_date, destination=destination
            )
            invoice = tax.apply(invoice, rules.tax)
            try:
                store.write_invoice(invoice, [by_id[i.id] for i in part], actor, rules.numbering)
            except Conflict:
                result.conflicts += 1
                continue
            result.invoice_ids.append(invoice.id)
            result.items_invoiced += len(part)
    return result


def generate_page(
    tenant_id: str,
    actor: str,
    run_id: str,
    grouping: dm.GroupingMode,
    scope: Scope,
    issue_date: date,
    cursor: str | None = None,
    limit: int = GENERATE_PAGE,
    *,
    destination: dm.Destination,
) -> GenerateResult:
    """Generate for one page of pending items in scope (items come in contact order), for
    `destination` (destination.resolve decides it once per run)."""
    records, next_cursor = store.pending_items(
        tenant_id, scope.contact_ids, scope.date_from, scope.date_to, limit=limit, cursor=cursor
    )
    if next_cursor and records:
        # Keep a contact's items together: stop the page before the last contact, which the next
        # page starts with (its invoice must hold all its items for per-contact grouping).
        last_contact = records[-1].contact_id
        head = [r for r in records if r.contact_id != last_contact]
        if head:
            records = head
            next_cursor = store.common.cursor_after_gsi1(records[-1])
    result = generate(tenant_id, actor, run_id, grouping, records, issue_date, destination)
    result.cursor = next_cursor
    return result
