"""Billing access patterns: compile candidates, the bill-once writes, pending items, invoices.

Bill once is enforced by DynamoDB, not by reading first: an entry is marked billed only if it is
not billed yet, and its items are put only if they do not exist, in ONE transaction; an item is
moved to an invoice only if it is still pending, in the same transaction that puts the invoice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now, now_iso
from fieldbill.domain import model as dm
from fieldbill.domain import states
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import EntryStatus
from fieldbill.domain.states import ENTRY_MACHINE, INVOICE_MACHINE, ITEM_MACHINE, SYNC_MACHINE
from fieldbill.store import common, transitions
from fieldbill.store import numbering as numbers
from fieldbill.store.models import (
    META,
    BillableItem,
    Contact,
    Entity,
    Invoice,
    InvoiceLine,
    PriceList,
    Product,
    ProductAssignment,
    Task,
    TaskEntry,
)

TRANSACTION_MAX = 100
INVOICE_SEQUENCE = "invoice"  # the tenant's invoice numbers (store/numbering.py)
NUMBERING_PARTS = 2  # a numbered invoice's transaction also moves the counter and claims the number


# ---------------------------------------------------------------------------- mapping to the domain
def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def contact_to_domain(rec: Contact) -> dm.Contact:
    return dm.Contact(
        id=rec.id,
        tenant_id=rec.tenant_id,
        name=rec.name,
        membership_id=rec.membership_id,
        team_id=rec.team_id,
        price_list_id=rec.price_list_id,
    )


def task_to_domain(rec: Task) -> dm.Task:
    return dm.Task(
        id=rec.id,
        tenant_id=rec.tenant_id,
        title=rec.title,
        client_contact_id=rec.client_contact_id,
        billable=rec.billable,
        status=rec.status,  # type: ignore[arg-type]
        billing=dm.BillingContext(
            product_id=rec.product_id,
            price_list_id=rec.price_list_id,
            unit=rec.unit,
            unit_price=rec.unit_price,
        ),
    )


def entry_to_domain(rec: TaskEntry) -> dm.TaskEntry:
    started = _dt(rec.started_at) or datetime.fromisoformat(rec.work_date + "T00:00:00+00:00")
    return dm.TaskEntry(
        id=rec.id,
        tenant_id=rec.tenant_id,
        task_id=rec.task_id,
        kind=rec.kind,  # type: ignore[arg-type]
        started_at=started,
        stopped_at=_dt(rec.stopped_at),
        status=dm.EntryStatus.BILLED if rec.billed else dm.EntryStatus.UNBILLED,
        description=rec.description,
        product_id=rec.product_id,
        snapshot_unit_price=rec.snapshot_unit_price,
        distance_km=rec.distance_km,
        transport_minutes=rec.transport_minutes,
        transport_time_snapshot_unit_price=rec.transport_time_snapshot_unit_price,
        quantity=rec.quantity,
        unit_price=rec.unit_price,
    )


def product_to_domain(rec: Product) -> dm.Product:
    return dm.Product(
        id=rec.id,
        tenant_id=rec.tenant_id,
        name=rec.name,
        unit=rec.unit,
        default_unit_price=rec.default_unit_price,
        auto_created=rec.auto_created,
    )


def price_list_to_domain(rec: PriceList) -> dm.PriceList:
    prices = {k: Decimal(str(v)) for k, v in (rec.prices.as_dict() if rec.prices else {}).items()}
    return dm.PriceList(id=rec.id, tenant_id=rec.tenant_id, name=rec.name, prices=prices)


def assignment_to_domain(rec: ProductAssignment) -> dm.ProductAssignment:
    return dm.ProductAssignment(
        tenant_id=rec.tenant_id,
        scope=rec.scope,  # type: ignore[arg-type]
        scope_id=rec.scope_id,
        line_kind=rec.line_kind,  # type: ignore[arg-type]
        product_id=rec.product_id,
    )


def item_to_domain(rec: BillableItem) -> dm.BillableItem:
    return dm.BillableItem(
        id=rec.id,
        tenant_id=rec.tenant_id,
        entry_id=rec.entry_id or "",
        task_id=rec.task_id or "",
        contact_id=rec.contact_id,
        line_kind=rec.line_kind,  # type: ignore[arg-type]
        work_date=date.fromisoformat(rec.work_date),
        description=rec.description or "",
        product_id=rec.product_id or "",
        product_name=rec.product_name or "",
        product_scope=rec.product_scope,  # type: ignore[arg-type]
        unit=rec.unit,
        quantity=rec.quantity,
        unit_price=rec.unit_price,
        price_source=rec.price_source,  # type: ignore[arg-type]
        amount=rec.amount,
        status=dm.ItemStatus(rec.status),
        invoice_id=rec.invoice_id,
        taxable=bool(rec.taxable),  # issue 17: a visit's taxable line stays taxable on its invoice
    )  # type: ignore[arg-type]


def item_record(item: dm.BillableItem, run_id: str | None) -> BillableItem:
    work_date = item.work_date.isoformat()
    return BillableItem(
        pk=BillableItem.key(item.tenant_id, item.id),
        sk=META,
        tenant_id=item.tenant_id,
        id=item.id,
        gsi1pk=BillableItem.status_key(item.tenant_id, str(item.status)),
        gsi1sk=BillableItem.status_sort_key(item.contact_id, work_date, item.id),
        entry_id=item.entry_id,
        task_id=item.task_id,
        contact_id=item.contact_id,
        line_kind=str(item.line_kind),
        description=item.description,
        product_id=item.product_id,
        product_name=item.product_name,
        unit=item.unit,
        quantity=item.quantity,
        unit_price=item.unit_price,
        amount=item.amount,
        product_scope=str(item.product_scope),
        price_source=str(item.price_source),
        status=str(item.status),
        work_date=work_date,
        run_id=run_id,
        taxable=item.taxable,
    )


# ---------------------------------------------------------------------------- compile
def unbilled_entries(
    tenant_id: str, date_from: str | None, date_to: str | None, limit: int, cursor: str | None
) -> tuple[list[TaskEntry], str | None]:
    """Stopped, unbilled entries by work date (the sparse index holds nothing else)."""
    if date_from or date_to:
        condition = Entity.gsi2sk.between(date_from or "0000", (date_to or "9999") + "#\uffff")
    else:
        condition = None
    query = Entity.gsi2.query(
        TaskEntry.unbilled_key(tenant_id),
        condition,
        limit=limit,
        last_evaluated_key=common.decode_cursor(cursor),
    )
    records, next_cursor = common.page(query, limit)
    return [r for r in records if isinstance(r, TaskEntry)], next_cursor


@dataclass
class CompileContext:
    tasks: dict[str, dm.Task]
    contacts: dict[str, dm.Contact]
    assignments: list[dm.ProductAssignment]
    price_lists: dict[str, dm.PriceList]
    products: dict[str, dm.Product]


def load_compile_context(tenant_id: str, entries: Sequence[TaskEntry]) -> CompileContext:
    """Everything compile needs for these entries in a handful of requests (batch gets, one query each)."""
    task_records = common.batch_get(Task, ((Task.key(tenant_id, e.task_id), META) for e in entries))
    tasks = {rec.id: task_to_domain(rec) for rec in task_records.values()}
    contact_ids = {t.client_contact_id for t in tasks.values() if t.client_contact_id}
    contact_records = common.batch_get(Contact, ((Contact.key(tenant_id, c), META) for c in contact_ids))
    contacts = {rec.id: contact_to_domain(rec) for rec in contact_records.values()}
    assignments = [
        assignment_to_domain(r)
        for r in Entity.query(ProductAssignment.key(tenant_id))
        if isinstance(r, ProductAssignment)
    ]
    products = {
        r.id: product_to_domain(r)
        for r in Entity.gsi1.query(Product.list_key(tenant_id))
        if isinstance(r, Product)
    }
    price_lists = {
        r.id: price_list_to_domain(r)
        for r in Entity.gsi1.query(PriceList.list_key(tenant_id))
        if isinstance(r, PriceList)
    }
    return CompileContext(tasks, contacts, assignments, price_lists, products)


def ensure_products(specs: Iterable[dm.Product], actor: str) -> int:
    """Create the tenant's default products once; an existing one is reused, never overwritten."""
    created = 0
    for spec in specs:
        record = product_record(spec)
        try:
            common.create(record, actor, reason="auto-created default product")
            created += 1
        except Conflict:
            pass
    return created


def product_record(spec: dm.Product) -> Product:
    return Product(
        pk=Product.key(spec.tenant_id, spec.id),
        sk=META,
        tenant_id=spec.tenant_id,
        id=spec.id,
        gsi1pk=Product.list_key(spec.tenant_id),
        gsi1sk=f"{spec.name.lower()}#{spec.id}",
        name=spec.name,
        unit=spec.unit,
        default_unit_price=spec.default_unit_price,
        auto_created=spec.auto_created,
    )


@dataclass
class CompileWrite:
    billed_entries: list[str] = field(default_factory=list)
    items: list[dm.BillableItem] = field(default_factory=list)
    skipped_entries: list[str] = field(default_factory=list)  # billed by someone else meanwhile
    requests: int = 0


def write_compiled(
    entries: Sequence[TaskEntry], items: Sequence[dm.BillableItem], actor: str, run_id: str | None
) -> CompileWrite:
    """Mark entries billed and put their items, entry by entry atomically, many entries a transaction."""
    by_entry: dict[str, list[dm.BillableItem]] = {}
    for item in items:
        by_entry.setdefault(item.entry_id, []).append(item)
    groups = [(e, by_entry.get(e.id, [])) for e in entries]
    result = CompileWrite()
    batch: list[tuple[TaskEntry, list[dm.BillableItem]]] = []
    size = 0
    for group in groups:
        cost = 1 + len(group[1])
        if batch and size + cost > TRANSACTION_MAX:
            _write_batch(batch, actor, run_id, result)
            batch, size = [], 0
        batch.append(group)
        size += cost
    if batch:
        _write_batch(batch, actor, run_id, result)
    return result


def _write_batch(
    batch: list[tuple[TaskEntry, list[dm.BillableItem]]],
    actor: str,
    run_id: str | None,
    result: CompileWrite,
    attempt: int = 0,
) -> None:
    try:
        _transact(batch, actor, run_id)
        result.requests += 1
    except TransactWriteError as exc:
        result.requests += 1
        if common.transaction_conflict(exc) and attempt < 5:
            # Another transaction held one of these items at that instant: nothing was written, try again.
            time.sleep(0.05 * 2**attempt * random.random())
            _write_batch(batch, actor, run_id, result, attempt + 1)
            return
        if not common.conditional_failed(exc):
            raise
        if len(batch) == 1:
            # This entry was billed by a concurrent compile (or a retry already did it): not ours.
            result.skipped_entries.append(batch[0][0].id)
            return
        # Someone billed one of these entries meanwhile: retry them one by one.
        for group in batch:
            _write_batch([group], actor, run_id, result)
        return
    for entry, items in batch:
        result.billed_entries.append(entry.id)
        result.items.extend(items)


def _transact(batch: list[tuple[TaskEntry, list[dm.BillableItem]]], actor: str, run_id: str | None) -> None:
    stamp = now_iso()
    at = now()
    with TransactWrite(connection=common.connection()) as tx:
        for entry, items in batch:
            # The entry machine decides (unbilled -> billed); the write is conditional on it.
            ENTRY_MACHINE.transition(entry.id, EntryStatus.UNBILLED, EntryStatus.BILLED, at=at, actor=actor)
            tx.update(
                entry,
                actions=[
                    TaskEntry.billed.set(True),
                    TaskEntry.billed_at.set(stamp),
                    TaskEntry.billed_by.set(run_id or actor),
                    TaskEntry.updated_at.set(stamp),
                    TaskEntry.gsi2pk.remove(),
                    TaskEntry.gsi2sk.remove(),
                    TaskEntry.history.set(
                        TaskEntry.history.append(
                            [
                                common.history_entry(
                                    actor, "unbilled", "billed", f"compiled into {len(items)} item(s)"
                                )
                            ]
                        )
                    ),
                ],
                # Bill the entry as it was read: an edit in between makes this page retry it.
                condition=(TaskEntry.billed == False) & _unchanged_since_read(entry),  # noqa: E712
            )
            for item in items:
                record = item_record(item, run_id)
                born = ITEM_MACHINE.begin(item.id, dm.ItemStatus(record.status), at=at, actor=actor)
                record.created_at = record.updated_at = stamp
                record.history = [
                    common.history_entry(actor, None, born.to_status, f"compiled from entry {entry.id}")
                ]
                tx.save(record, condition=Entity.pk.does_not_exist())


def _unchanged_since_read(entry: TaskEntry) -> Any:
    if entry.updated_at is None:
        return TaskEntry.updated_at.does_not_exist()
    return TaskEntry.updated_at == entry.updated_at


# ---------------------------------------------------------------------------- generate
def pending_items(
    tenant_id: str,
    contact_ids: Sequence[str] | None,
    date_from: str | None,
    date_to: str | None,
    limit: int = 1000,
    cursor: str | None = None,
) -> tuple[list[BillableItem], str | None]:
    """Pending items, in contact order; for one contact the key condition narrows the read."""
    key = BillableItem.status_key(tenant_id, "pending")
    condition: Any = None
    if contact_ids and len(contact_ids) == 1:
        condition = Entity.gsi1sk.startswith(f"{contact_ids[0]}#")
    # Issue 17: a service visit's items are invoiced from the billing page, each to its own
    # destination (workflows/services), never by a billing run's generate.
    filters: Any = BillableItem.visit_id.does_not_exist()
    if contact_ids and len(contact_ids) > 1:
        filters = filters & BillableItem.contact_id.is_in(*contact_ids)
    if date_from:
        filters = (
            (filters & (BillableItem.work_date >= date_from))
            if filters is not None
            else (BillableItem.work_date >= date_from)
        )
    if date_to:
        filters = (
            (filters & (BillableItem.work_date <= date_to))
            if filters is not None
            else (BillableItem.work_date <= date_to)
        )
    query = Entity.gsi1.query(
        key, condition, filter_condition=filters, limit=limit, last_evaluated_key=common.decode_cursor(cursor)
    )
    records, next_cursor = common.page(query, limit)
    return [r for r in records if isinstance(r, BillableItem)], next_cursor


def items_by_id(tenant_id: str, item_ids: Iterable[str]) -> dict[str, BillableItem]:
    found = common.batch_get(BillableItem, ((BillableItem.key(tenant_id, i), META) for i in item_ids))
    return {rec.id: rec for rec in found.values()}


def set_item_status(
    tenant_id: str, item_id: str, target: str, actor: str, reason: str | None
) -> BillableItem:
    """Mark an item unbillable or billable again (pending): the domain's item machine decides, and
    the write is conditional on the status it decided from (a concurrent generate wins or loses
    cleanly). An item already at `target` is returned unchanged (a retried request)."""
    record = common.get(BillableItem, BillableItem.key(tenant_id, item_id), entity="billable item")
    wanted = dm.ItemStatus(target)
    if record.status == wanted:
        return record
    # The guarded rules (an invoiced item moves only with its invoice) live in the domain.
    states.set_item_status(item_to_domain(record), wanted, at=now(), actor=actor, reason=reason)
    transitions.apply(
        record,
        "status",
        ITEM_MACHINE,
        str(wanted),
        actor=actor,
        reason=reason,
        extra=[BillableItem.gsi1pk.set(BillableItem.status_key(tenant_id, str(wanted)))],
    )
    return record


def get_item(tenant_id: str, item_id: str) -> BillableItem:
    return common.get(BillableItem, BillableItem.key(tenant_id, item_id), entity="billable item")


def list_items(
    tenant_id: str,
    status: str,
    limit: int,
    cursor: str | None = None,
    *,
    contact_id: str | None = None,
    task_id: str | None = None,
    line_kind: str | None = None,
    destination: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[list[BillableItem], str | None]:
    """A page of billable items by status (pattern 7): a contact's through the sort key prefix,
    the other filters on the page read (a page may come back short; the cursor goes on)."""
    filters: Any = None

    def both(a: Any, b: Any) -> Any:
        return b if a is None else a & b

    if task_id:
        filters = both(filters, BillableItem.task_id == task_id)
    if line_kind:
        filters = both(filters, BillableItem.line_kind == line_kind)
    if date_from:
        filters = both(filters, BillableItem.work_date >= date_from.isoformat())
    if date_to:
        filters = both(filters, BillableItem.work_date <= date_to.isoformat())
    if destination:
        filters = both(filters, BillableItem.destination == destination)
    key = BillableItem.status_key(tenant_id, status)
    return common.list_by_gsi1(
        BillableItem,
        key,
        limit,
        common.checked_cursor(cursor, gsi1pk=key),
        prefix=f"{contact_id}#" if contact_id else None,
        filter_condition=filters,
    )


def invoices_by_id(tenant_id: str, invoice_ids: Iterable[str]) -> dict[str, Invoice]:
    found = common.batch_get(Invoice, ((Invoice.key(tenant_id, i), META) for i in invoice_ids))
    return {rec.id: rec for rec in found.values()}


def line_records(lines: Sequence[dm.InvoiceLine]) -> list[InvoiceLine]:
    """An invoice's lines as stored (on the invoice item)."""
    return [
        InvoiceLine(
            item_id=ln.item_id,
            line_kind=str(ln.line_kind),
            description=ln.description,
            product_id=ln.product_id,
            product_name=ln.product_name,
            unit=ln.unit,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            amount=ln.amount,
            work_date=ln.work_date.isoformat() if ln.work_date else None,
            line_no=ln.line_no,
            taxable=ln.taxable,
            tax_code_id=ln.tax_code_id,
            tax_rate=ln.tax_rate,
            tax_source=ln.tax_source,
            tax_amount=ln.tax_amount,
        )
        for ln in lines
    ]


def invoice_record(invoice: dm.Invoice) -> Invoice:
    tenant = invoice.tenant_id
    return Invoice(
        pk=Invoice.key(tenant, invoice.id),
        sk=META,
        tenant_id=tenant,
        id=invoice.id,
        gsi1pk=Invoice.list_key(tenant),
        gsi1sk=f"{invoice.issue_date.isoformat()}#{invoice.id}",
        gsi2pk=Invoice.run_key(tenant, invoice.run_id),
        gsi2sk=Invoice.run_sort_key(str(invoice.sync_status), invoice.id),
        contact_id=invoice.contact_id,
        status=str(invoice.status),
        destination=str(invoice.destination),
        sync_status=str(invoice.sync_status),
        grouping=str(invoice.grouping),
        group_key=invoice.group_key,
        lines=line_records(invoice.lines),
        item_ids=list(invoice.item_ids),
        subtotal=invoice.subtotal,
        total=invoice.total,
        balance=invoice.total,
        tax_total=invoice.tax_total,
        tax_code_id=invoice.tax_code_id,
        tax_rate=invoice.tax_rate,
        issue_date=invoice.issue_date.isoformat(),
        due_date=invoice.due_date.isoformat(),
        terms_days=(invoice.due_date - invoice.issue_date).days,
        run_id=invoice.run_id,
    )


def new_invoice(
    invoice: dm.Invoice, items: Sequence[BillableItem], actor: str, reason: str
) -> tuple[Invoice, list[transitions.Change]]:
    """A new invoice's record (born draft and not synced, with its first history entry) and the
    moves of its items pending -> invoiced, for the caller's one transaction."""
    stamp = now_iso()
    record = invoice_record(invoice)
    born = INVOICE_MACHINE.begin(
        invoice.id, dm.InvoiceStatus(record.status), at=now(), actor=actor, reason=reason
    )
    SYNC_MACHINE.begin(invoice.id, dm.SyncStatus(record.sync_status), at=born.at, actor=actor)
    record.created_at = record.updated_at = stamp
    record.history = [common.history_entry(actor, None, born.to_status, reason)]
    moves = [
        transitions.change(
            BillableItem,
            "status",
            ITEM_MACHINE,
            item.id,
            item.status,
            str(dm.ItemStatus.INVOICED),
            actor=actor,
            reason=f"invoice {invoice.id}",
            extra=[
                BillableItem.invoice_id.set(invoice.id),
                BillableItem.destination.set(str(invoice.destination)),
                BillableItem.gsi1pk.set(BillableItem.status_key(item.tenant_id, str(dm.ItemStatus.INVOICED))),
            ],
        )
        for item in items
    ]
    return record, moves


def write_invoice(
    invoice: dm.Invoice,
    items: Sequence[BillableItem],
    actor: str,
    numbering: numbers.Mode = numbers.Mode.NONE,
    number_hint: numbers.Hint | None = None,
) -> bool:
    """Put the invoice and move its items from pending to invoiced in one transaction; with
    `numbering` automatic, the invoice takes the tenant's next invoice number in that same
    transaction (store/numbering.py: a retry or a refused write never burns or repeats one).

    True when written; False when a retry finds this very invoice already written (same
    deterministic id). Conflict when another invoice took one of the items first.
    """
    if len(items) + 1 + NUMBERING_PARTS > TRANSACTION_MAX:
        raise ValueError("an invoice's items must fit one transaction; split the group first")
    record, moves = new_invoice(invoice, items, actor, f"generated from {len(items)} item(s)")

    def write(tx: TransactWrite, number: str | None) -> None:
        record.number = number
        tx.save(record, condition=Entity.pk.does_not_exist())
        for item, move in zip(items, moves, strict=True):
            tx.update(item, actions=move.actions, condition=move.condition)

    try:
        numbers.write_numbered(
            invoice.tenant_id, INVOICE_SEQUENCE, invoice.id, write, mode=numbering, hint=number_hint
        )
    except (TransactWriteError, PutError) as exc:
        if common.find(Invoice, record.pk) is not None:
            return False  # a retry of the same generate: already done
        raise Conflict("billable items were invoiced by another request meanwhile") from exc
    return True


def run_invoice_counts(tenant_id: str, run_id: str) -> dict[str, int]:
    """A run's (or generate operation's) invoices by sync status, from the run index."""
    counts: dict[str, int] = {}
    for status in ("not_synced", "pending", "synced", "error"):
        counts[status] = Entity.gsi2.count(
            Invoice.run_key(tenant_id, run_id), Entity.gsi2sk.startswith(f"{status}#")
        )
    return counts
