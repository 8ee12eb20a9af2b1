"""Reconciliation (issue 15 item 6, issue 16 item 7, issue 13's account-balance check): read back
the tenant's QuickBooks invoices and customers and report every difference from ours.

Run by the inbound consumer for a `reconcile` message (POST /quickbooks/reconcile, or the daily
schedule: one per connected company), so its QuickBooks reads share the company's limiter and its
waits (a throttled read hands the message back); the report is the result of the operation the
message names (GET /operations/{id}).

Differences, one row each, with an id (stable for the same difference) and, where the fix is safe,
a `repair` a person applies with one call (POST /quickbooks/repairs):
- missing: ours, for QuickBooks, never created there -> sync_invoice (create it); linked but no
  longer there (deleted in QuickBooks?) -> push_again: a new QuickBooks invoice, linked (number
  kept), only when a person asks (nothing paid or credited on it);
- extra: a QuickBooks invoice of the period that is not ours -> no repair (made in QuickBooks);
- total / tax: TotalAmt or TotalTax differs from ours -> sync_invoice (ours is pushed);
- balance: Balance differs from ours (payments) -> pull_invoice (theirs is read and applied);
- number: DocNumber differs from our number -> sync_invoice with custom numbers, else pull_invoice;
- customer_balance: a customer's Balance differs from the sum of our open balances, with the
  invoices that explain it (each with its pull_invoice).
A repair never deletes nor overwrites a payment: pushes go through the sync queue as usual (our
lines, QuickBooks keeps its payments), pulls apply what QuickBooks holds (docs/sync.md).
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fieldbill.clock import now_iso
from fieldbill.domain.errors import OperationCancelled
from fieldbill.domain.money import cents
from fieldbill.observability import logger
from fieldbill.quickbooks import mapping
from fieldbill.quickbooks.client import QboClient, quote
from fieldbill.store import invoices as invoice_store
from fieldbill.store import reconciliation

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice

REPAIRS = ("sync_invoice", "pull_invoice", "push_again")
MAX_ROWS = 500  # differences kept in one report (the operation's result is one DynamoDB item)


def _money(value: Any) -> Decimal | None:
    """QuickBooks' amount in cents (its JSON may say 125.0)."""
    return None if value is None else cents(Decimal(str(value)))


def _diff_id(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _row(
    kind: str,
    invoice_id: str | None,
    qbo_id: str | None,
    ours: Any,
    theirs: Any,
    repair: str | None,
    **more: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _diff_id(kind, invoice_id, qbo_id, ours, theirs),
        "kind": kind,
        "invoice_id": invoice_id,
        "qbo_id": qbo_id,
        "ours": None if ours is None else str(ours),
        "quickbooks": None if theirs is None else str(theirs),
        "repair": {"kind": repair, "invoice_id": invoice_id, "qbo_id": qbo_id} if repair else None,
    }
    row.update(more)
    return row


def compare_invoice(ours: Invoice, theirs: dict[str, Any], custom_numbers: bool) -> list[dict[str, Any]]:
    """The differences of one of our invoices and its QuickBooks copy."""
    qbo_id = str(theirs["Id"])
    rows: list[dict[str, Any]] = []
    total, their_total = cents(Decimal(ours.total)), _money(theirs.get("TotalAmt"))
    if their_total is not None and their_total != total:
        rows.append(_row("total", ours.id, qbo_id, total, their_total, "sync_invoice"))
    tax_detail = theirs.get("TxnTaxDetail") or {}
    their_tax = _money(tax_detail.get("TotalTax")) if isinstance(tax_detail, dict) else None
    our_tax = cents(Decimal(ours.tax_total or 0))
    if their_tax is not None and their_tax != our_tax:
        rows.append(_row("tax", ours.id, qbo_id, our_tax, their_tax, "sync_invoice"))
    their_balance = _money(theirs.get("Balance"))
    our_balance = cents(Decimal(ours.balance if ours.balance is not None else ours.total))
    if their_balance is not None and their_balance != our_balance:
        rows.append(_row("balance", ours.id, qbo_id, our_balance, their_balance, "pull_invoice"))
    number = ours.number if custom_numbers else ours.qbo_doc_number
    their_number = theirs.get("DocNumber")
    if (number or None) != (their_number or None):
        repair = "sync_invoice" if custom_numbers and ours.number else "pull_invoice"
        rows.append(_row("number", ours.id, qbo_id, number, their_number, repair))
    return rows


def report(tenant_id: str, date_from: date, date_to: date, client: QboClient | None = None) -> dict[str, Any]:
    """Every difference between our QuickBooks invoices of the period (by issue date = TxnDate),
    the customers they name, and QuickBooks'."""
    client = client or QboClient(tenant_id)
    settings = reconciliation.settings(tenant_id)
    custom = bool(settings.get("custom_txn_numbers"))
    ours = reconciliation.quickbooks_invoices(tenant_id, date_from, date_to)
    where = f"TxnDate >= {quote(date_from.isoformat())} AND TxnDate <= {quote(date_to.isoformat())}"
    theirs = {str(r["Id"]): r for r in client.query_all("Invoice", where)}
    rows: list[dict[str, Any]] = []
    matched: set[str] = set()
    for invoice in ours:
        row = theirs.get(str(invoice.qbo_id)) if invoice.qbo_id else None
        if invoice.status == "void":
            if row is not None:
                matched.add(str(row["Id"]))  # void on both sides (or its void is on its way)
            continue
        if row is None and invoice.qbo_id:
            rows.append(
                _row(
                    "missing",
                    invoice.id,
                    str(invoice.qbo_id),
                    invoice.total,
                    None,
                    "push_again",
                    detail="linked, but QuickBooks no longer has it (deleted there?)",
                )
            )
            continue
        if row is None:
            if invoice.sync_status in ("synced", "error", "not_synced"):
                rows.append(
                    _row(
                        "missing",
                        invoice.id,
                        None,
                        invoice.total,
                        None,
                        "sync_invoice",
                        detail=f"not in QuickBooks (sync {invoice.sync_status})",
                    )
                )
            continue
        matched.add(str(row["Id"]))
        rows += compare_invoice(invoice, row, custom)
    for qbo_id, row in theirs.items():
        if qbo_id in matched:
            continue
        note = str(row.get("PrivateNote") or "")
        ours_marker = mapping.MARKER_PREFIX + tenant_id + ":" in note
        rows.append(
            _row(
                "extra",
                None,
                qbo_id,
                None,
                _money(row.get("TotalAmt")),
                None,
                detail="carries our marker but is linked to none of ours"
                if ours_marker
                else "made in QuickBooks: not one of ours",
                doc_number=row.get("DocNumber"),
            )
        )
    rows += customer_balances(tenant_id, client, {i.contact_id for i in ours})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    return {
        "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
        "checked_at": now_iso(),
        "invoices_checked": len(ours),
        "quickbooks_invoices": len(theirs),
        "counts": counts,
        "differences": rows[:MAX_ROWS],
        "truncated": len(rows) > MAX_ROWS,
    }


def customer_balances(tenant_id: str, client: QboClient, contact_ids: set[str]) -> list[dict[str, Any]]:
    """Each linked customer (of the period's invoices, or every linked contact when none) whose
    QuickBooks Balance differs from the sum of our open balances, with the invoices explaining it:
    those whose balances differ, and QuickBooks' open invoices of the customer we do not hold."""
    contacts = reconciliation.linked_contacts(tenant_id, contact_ids or None)
    rows: list[dict[str, Any]] = []
    for contact in contacts:
        customer = client.read("Customer", str(contact.qbo_id))
        theirs = _money(customer.get("Balance")) or Decimal("0")
        ours = cents(sum(invoice_store.account_balance(tenant_id, contact.id).open_balances, Decimal("0")))
        if theirs == ours:
            continue
        their_open = {
            str(r["Id"]): r
            for r in client.query_all("Invoice", f"CustomerRef = {quote(str(contact.qbo_id))}")
        }
        explaining: list[dict[str, Any]] = []
        for invoice in reconciliation.contact_invoices(tenant_id, contact.id):
            row = their_open.pop(str(invoice.qbo_id), None) if invoice.qbo_id else None
            our_balance = cents(Decimal(invoice.balance if invoice.balance is not None else invoice.total))
            if invoice.status in ("void", "deleted", "draft"):
                our_balance = Decimal("0.00") if invoice.status != "draft" else our_balance
            their_balance = _money(row.get("Balance")) if row else None
            if their_balance is not None and their_balance != our_balance:
                explaining.append(
                    {
                        "invoice_id": invoice.id,
                        "qbo_id": str(invoice.qbo_id),
                        "ours": str(our_balance),
                        "quickbooks": str(their_balance),
                        "repair": {
                            "kind": "pull_invoice",
                            "invoice_id": invoice.id,
                            "qbo_id": str(invoice.qbo_id),
                        },
                    }
                )
        for qbo_id, row in their_open.items():
            if (_money(row.get("Balance")) or Decimal("0")) != 0:
                explaining.append(
                    {
                        "invoice_id": None,
                        "qbo_id": qbo_id,
                        "ours": None,
                        "quickbooks": str(_money(row.get("Balance"))),
                        "repair": None,
                    }
                )
        rows.append(
            _row(
                "customer_balance",
                None,
                str(contact.qbo_id),
                ours,
                theirs,
                None,
                contact_id=contact.id,
                invoices=explaining,
            )
        )
    return rows


def run(tenant_id: str, operation_id: str, date_from: date, date_to: date, actor: str) -> dict[str, Any]:
    """The report, recorded as the operation's result."""
    try:
        operation = reconciliation.start(tenant_id, operation_id, actor)
        if operation is None:
            return {}  # done already (a redelivery), or cancelled
        result = report(tenant_id, date_from, date_to)
        reconciliation.finish(operation, result, actor)
    except OperationCancelled:
        return {}  # a person cancelled it meanwhile: the report is kept on it, nothing else to do
    logger.info("reconciliation done", extra={"tenant_id": tenant_id, "counts": result["counts"]})
    return result


# ---------------------------------------------------------------------------- requests and repairs
def request(tenant_id: str, date_from: date, date_to: date, actor: str) -> Any:
    """POST /quickbooks/reconcile: the operation that will hold the report, and its message."""
    from fieldbill.domain.errors import Conflict, ValidationError
    from fieldbill.store import connections
    from fieldbill.workflows.inbound.schedules import send_pulls
    from fieldbill.workflows.messages import InboundMessage

    if date_to < date_from:
        raise ValidationError("date_to", "is before date_from")
    record = connections.get(tenant_id, consistent=False)
    if record is None or record.status != "connected":
        raise Conflict(f"QuickBooks is {record.status if record else 'disconnected'}: connect it first")
    operation = reconciliation.create(tenant_id, date_from, date_to, actor)
    send_pulls(
        [
            InboundMessage(
                kind="reconcile",
                tenant_id=tenant_id,
                realm_id=record.realm_id,
                operation_id=operation.id,
                date_from=date_from.isoformat(),
                date_to=date_to.isoformat(),
            )
        ]
    )
    return operation


def repair(
    tenant_id: str, kind: str, invoice_id: str, actor: str, qbo_id: str | None = None
) -> dict[str, Any]:
    """One click on a difference's repair. sync_invoice: ours goes to QuickBooks again (through the
    sync queue); pull_invoice: QuickBooks' invoice is read and applied here (through the inbound
    queue). Both are idempotent: a second click queues the same work again, harmlessly."""
    from fieldbill.domain.errors import Conflict, ValidationError
    from fieldbill.store import connections, invoice_sync
    from fieldbill.workflows.inbound.schedules import send_pulls
    from fieldbill.workflows.messages import InboundMessage, QboSyncMessage
    from fieldbill.workflows.qbo_sync import enqueue

    if kind not in REPAIRS:
        raise ValidationError("kind", f"must be one of {', '.join(REPAIRS)}")
    invoice = invoice_store.get(tenant_id, invoice_id)
    if invoice.destination != "quickbooks":
        raise ValidationError("invoice_id", "is not an invoice for QuickBooks")
    if kind == "push_again":
        return push_again(invoice, qbo_id, actor)
    if kind == "sync_invoice":
        if invoice.sync_status in ("not_synced", "error"):
            enqueue.enqueue_invoices([invoice], actor)
        elif invoice_sync.mark_resync(invoice, f"reconciliation repair by {actor}: ours sent again"):
            enqueue.send(
                [
                    QboSyncMessage(
                        kind="sync_invoice",
                        tenant_id=tenant_id,
                        entity_id=invoice.id,
                        run_id=invoice.run_id,
                        version=int(invoice.version),
                    )
                ]
            )
        else:
            raise Conflict(
                f"invoice {invoice_id!r} is {invoice.sync_status}: try again when its sync settles"
            )
        return {"kind": kind, "invoice_id": invoice_id, "status": "queued"}
    if not invoice.qbo_id:
        raise ValidationError("invoice_id", "is not in QuickBooks: there is nothing to read back")
    record = connections.get(tenant_id, consistent=False)
    if record is None or record.status != "connected":
        raise Conflict("QuickBooks is not connected: connect it first")
    send_pulls(
        [
            InboundMessage(
                kind="entity_changed",
                tenant_id=tenant_id,
                realm_id=record.realm_id,
                entity="Invoice",
                entity_id=str(invoice.qbo_id),
                operation="Update",
                last_updated=now_iso(),  # each click is its own event (never deduplicated away)
            )
        ]
    )
    return {"kind": kind, "invoice_id": invoice_id, "status": "queued"}


# ---------------------------------------------------------------------------- issue 15: push again
def push_again(invoice: Invoice, qbo_id: str | None, actor: str) -> dict[str, Any]:
    """Our invoice whose QuickBooks copy `qbo_id` was deleted there becomes a new QuickBooks
    invoice, linked, with its number (sent as DocNumber with custom numbers on). Only on request
    (a deletion in QuickBooks may be wanted), and idempotent: a second click finds it unlinked
    from `qbo_id` already and queues nothing more. If QuickBooks has the copy after all, the sync
    links it again instead of making a second one (qbo_sync/invoices.still_there)."""
    from fieldbill.domain.errors import Conflict, ValidationError
    from fieldbill.store import invoice_sync
    from fieldbill.workflows.messages import QboSyncMessage
    from fieldbill.workflows.qbo_sync import enqueue

    if not qbo_id:
        raise ValidationError("qbo_id", "the deleted QuickBooks invoice (the difference's repair.qbo_id)")
    answer = {"kind": "push_again", "invoice_id": invoice.id, "qbo_id": qbo_id}
    if invoice.status in ("void", "deleted"):
        raise Conflict(f"invoice {invoice.id!r} is {invoice.status} here: nothing to push")
    if Decimal(invoice.amount_paid or 0) > 0 or Decimal(invoice.amount_credited or 0) > 0:
        raise Conflict(
            f"invoice {invoice.id!r} has payments or credits: a new QuickBooks invoice would not carry "
            "them; record them there or void ours"
        )
    if str(invoice.qbo_id or "") != qbo_id:
        if invoice.qbo_deleted_id == qbo_id:  # a repeated click: already pushed again
            return answer | {"status": "done" if invoice.qbo_id else "queued", "new_qbo_id": invoice.qbo_id}
        raise ValidationError(
            "qbo_id", f"invoice {invoice.id!r} is not linked to QuickBooks invoice {qbo_id}"
        )
    why = f"reconciliation repair by {actor}: QuickBooks invoice {qbo_id} deleted there; pushed again as new"
    if not invoice_sync.unlink_deleted(invoice, qbo_id, why):
        raise Conflict(
            f"invoice {invoice.id!r} changed meanwhile (sync {invoice.sync_status}): reconcile again"
        )
    enqueue.send(
        [
            QboSyncMessage(
                kind="sync_invoice",
                tenant_id=invoice.tenant_id,
                entity_id=invoice.id,
                run_id=invoice.run_id,
                version=int(invoice.version),
            )
        ]
    )
    return answer | {"status": "queued", "new_qbo_id": None}
