"""Credit memos in QuickBooks: a CreditMemo for the customer, then a Payment of 0 that applies the
part we applied here to the invoice (QuickBooks' way to apply a credit: one Payment line linking the
Invoice, one linking the CreditMemo, same amount). Through the sync queue like everything else.

Entry point for other flows (e.g. a job's negative correction on its invoice):

    from fieldbill.workflows.qbo_sync import credit_memos
    invoice = credit_memos.record_and_queue(tenant_id, invoice_id, credit_id=..., amount=...,
                                            on="2026-12-03", reason="correction", actor=...)

records the credit memo on the invoice (balance, status, a full credit releasing its items) and
queues its QuickBooks part when the invoice goes to QuickBooks. `enqueue(tenant_id, invoice_id,
credit_id)` queues (again) one already recorded. Both are safe to repeat with the same credit id.

Never two in QuickBooks: the create's requestid is made of tenant, invoice and credit id, so a
redelivery is answered with the first result; and a message that may have reached QuickBooks before
(a redelivery, or a copy handed back) first looks the credit memo up by its PrivateNote marker
among the customer's credit memos of that date. The applying Payment is found the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fieldbill.domain import payments
from fieldbill.domain.errors import Unavailable
from fieldbill.observability import logger
from fieldbill.quickbooks.client import quote, request_id
from fieldbill.quickbooks.errors import Permanent, Transient
from fieldbill.store import credit_memos as store
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import references
from fieldbill.workflows.qbo_sync.tenants import Tenant

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import CreditMemo, Invoice

MARKER_PREFIX = "fieldbill:credit:"
APPLY_PREFIX = "fieldbill:credit-apply:"


def marker(tenant_id: str, credit_id: str, prefix: str = MARKER_PREFIX) -> str:
    return f"{prefix}{tenant_id}:{credit_id}"


# ---------------------------------------------------------------------------- producers
def goes_to_quickbooks(record: Invoice) -> bool:
    """QuickBooks holds the invoice, or its sync is on its way (the credit then waits for it)."""
    if record.destination != "quickbooks":
        return False
    return bool(record.qbo_id) or record.sync_status in ("pending", "unknown")


def enqueue(tenant_id: str, invoice_id: str, credit_id: str) -> None:
    """Queue the QuickBooks part of a credit memo recorded on the invoice (safe to repeat)."""
    from fieldbill.workflows.qbo_sync import enqueue as queue  # the queue client only when sending

    queue.send(
        [QboSyncMessage(kind="sync_credit_memo", tenant_id=tenant_id, entity_id=invoice_id, ref=credit_id)]
    )


def record_and_queue(
    tenant_id: str,
    invoice_id: str,
    *,
    credit_id: str,
    amount: Decimal | None,
    on: str,
    reason: str,
    actor: str,
    lines: Sequence[payments.CreditLine] = (),
) -> Invoice:
    """Record a credit memo (an amount, or lines) on the invoice, then queue its QuickBooks part.
    If the queue refuses: Unavailable (503); the same call again queues it again."""
    total = payments.credit_amount(amount, lines)
    record = store.record_credit(
        tenant_id,
        invoice_id,
        credit_id=credit_id,
        amount=total,
        on=on,
        reason=reason,
        lines=list(lines),
        actor=actor,
    )
    memo = next(c for c in record.credit_memos if c.id == credit_id)
    if goes_to_quickbooks(record) and not (memo.qbo_id and (memo.qbo_apply_id or not Decimal(memo.applied))):
        try:
            enqueue(tenant_id, invoice_id, credit_id)
        except Exception as exc:
            logger.exception("a credit memo could not be queued for QuickBooks")
            raise Unavailable(
                "recorded here; not queued for QuickBooks: send it again with the same id"
            ) from exc
    return record


# ---------------------------------------------------------------------------- the consumer's part
def credit_memo_body(
    invoice: Invoice, memo: CreditMemo, customer_ref: str, items: dict[str, str]
) -> dict[str, Any]:
    default_product = next((ln.product_id for ln in invoice.lines or [] if ln.product_id), None)
    # (amount, qty, unit price, description, product); an amount only is one line of the invoice's
    # first product, so QuickBooks books the credit against the same income account.
    given: list[tuple[Any, Any, Any, str | None, str | None]] = [
        (ln.amount, ln.quantity, ln.unit_price, ln.description, ln.product_id) for ln in memo.lines or []
    ] or [(memo.amount, None, None, memo.reason, None)]
    lines: list[dict[str, Any]] = []
    for amount, qty, price, description, product in given:
        detail: dict[str, Any] = {"TaxCodeRef": {"value": "NON"}}
        item = items.get(product or default_product or "")
        if item:
            detail["ItemRef"] = {"value": item}
        if qty is not None and price is not None:
            detail["Qty"], detail["UnitPrice"] = qty, price
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "Description": (description or memo.reason)[:4000],
                "SalesItemLineDetail": detail,
            }
        )
    return {
        "CustomerRef": {"value": customer_ref},
        "TxnDate": memo.date,
        "Line": lines,
        "PrivateNote": f"{memo.reason[:200]}\n{marker(invoice.tenant_id, memo.id)}",
        "CustomerMemo": {"value": memo.reason[:1000]},
    }


def apply_body(invoice: Invoice, memo: CreditMemo, customer_ref: str) -> dict[str, Any]:
    applied = Decimal(memo.applied)
    return {
        "CustomerRef": {"value": customer_ref},
        "TotalAmt": 0,  # no money moves: the credit pays the invoice
        "TxnDate": memo.date,
        "PrivateNote": marker(invoice.tenant_id, memo.id, APPLY_PREFIX),
        "Line": [
            {"Amount": applied, "LinkedTxn": [{"TxnId": str(invoice.qbo_id), "TxnType": "Invoice"}]},
            {"Amount": applied, "LinkedTxn": [{"TxnId": str(memo.qbo_id), "TxnType": "CreditMemo"}]},
        ],
    }


def _find(tenant: Tenant, entity: str, customer_ref: str, on: str, note: str) -> dict[str, Any] | None:
    where = f"CustomerRef = {quote(customer_ref)} AND TxnDate = {quote(on)}"
    return next(
        (r for r in tenant.client.query_all(entity, where) if note in str(r.get("PrivateNote") or "")), None
    )


def push_credit_memo(tenant: Tenant, invoice: Invoice | None, credit_id: str, maybe_sent: bool) -> None:
    """Create our credit memo in QuickBooks (once), then apply its applied part to the invoice."""
    if invoice is None:
        logger.warning("invoice of the credit memo not found; message dropped")
        return
    memo = next((c for c in invoice.credit_memos or [] if c.id == credit_id), None)
    if memo is None:
        logger.warning("credit memo not on the invoice; message dropped")
        return
    applies = Decimal(memo.applied) > 0
    if memo.qbo_id and (memo.qbo_apply_id or not applies):
        logger.info("credit memo already in QuickBooks; nothing to do")
        follow_correction(invoice.tenant_id, credit_id, qbo_id=memo.qbo_id)
        return
    # A credit nothing applies (a standalone one: the customer's credit) needs no invoice there.
    if not invoice.qbo_id and applies:
        # The invoice's own sync has not landed yet: try again after it (a back-off, not an error).
        raise Transient("the invoice is not in QuickBooks yet; its credit memo waits for it")
    customer = references.ensure_customer(tenant, invoice.contact_id)
    tenant_id = invoice.tenant_id
    qbo_id = memo.qbo_id
    if not qbo_id:
        found = (
            _find(tenant, "CreditMemo", customer, memo.date, marker(tenant_id, memo.id))
            if maybe_sent
            else None
        )
        if found is None:
            products = [ln.product_id for ln in memo.lines or [] if ln.product_id]
            products += [ln.product_id for ln in invoice.lines or [] if ln.product_id][:1]
            items = references.ensure_items(tenant, products) if products else {}
            found = tenant.client.create(
                "CreditMemo",
                credit_memo_body(invoice, memo, customer, items),
                request_id("credit-memo", tenant_id, invoice.id, memo.id),
            )
        qbo_id = str(found["Id"])
        store.link_credit(tenant_id, invoice.id, memo.id, qbo_id=qbo_id)
        memo.qbo_id = qbo_id
        logger.info("credit memo created in QuickBooks", extra={"credit_id": memo.id, "qbo_id": qbo_id})
    if applies and not memo.qbo_apply_id:
        note = marker(tenant_id, memo.id, APPLY_PREFIX)
        applied = _find(tenant, "Payment", customer, memo.date, note) if maybe_sent else None
        if applied is None:
            applied = tenant.client.create(
                "Payment",
                apply_body(invoice, memo, customer),
                request_id("credit-apply", tenant_id, invoice.id, memo.id),
            )
        store.link_credit(tenant_id, invoice.id, memo.id, qbo_id=qbo_id, apply_id=str(applied["Id"]))
        logger.info("credit applied to the invoice in QuickBooks", extra={"credit_id": memo.id})
    follow_correction(tenant_id, memo.id, qbo_id=qbo_id)


def record_permanent(tenant_id: str, invoice_id: str, credit_id: str, error: Permanent) -> None:
    """QuickBooks refused the credit memo: ours says why (its effect here stays)."""
    store.credit_error(tenant_id, invoice_id, credit_id, error.as_dict())
    follow_correction(tenant_id, credit_id, error=error.as_dict())


def follow_correction(
    tenant_id: str, credit_id: str, *, qbo_id: str | None = None, error: dict[str, Any] | None = None
) -> None:
    """A job's negative correction shows its credit memo's sync state (wt-jobs2): synced once
    QuickBooks holds the credit memo, in error with QuickBooks' reason when it refused it."""
    from fieldbill.store import jobs as job_store  # only a job correction's credit needs it

    correction_id = job_store.correction_of(credit_id)
    if correction_id is None:
        return
    if error is not None:
        job_store.correction_refused(tenant_id, correction_id, error)
    elif qbo_id:
        job_store.correction_synced(tenant_id, correction_id, qbo_id)


def resend_for_correction(correction: Invoice) -> bool:
    """Queue again the credit memo of a job's negative correction (on the invoice it credits, or
    on itself when standalone); True when queued. A credit memo QuickBooks holds already only
    brings the correction's sync status up to date; one not recorded yet (waiting for its
    invoice's sync) is settled by posting or exporting the correction."""
    from fieldbill.domain.errors import NotFound
    from fieldbill.store import jobs as job_store

    credit_id = job_store.correction_credit_id(correction.id)
    holder = correction.credit_target_id or correction.id
    try:
        _, memo = store.find(correction.tenant_id, holder, credit_id)
    except NotFound:
        logger.info("the correction's credit memo is not recorded yet; nothing to send")
        return False
    if memo.qbo_id and (memo.qbo_apply_id or not Decimal(memo.applied)):
        follow_correction(correction.tenant_id, credit_id, qbo_id=memo.qbo_id)
        return False
    enqueue(correction.tenant_id, holder, credit_id)
    return True
