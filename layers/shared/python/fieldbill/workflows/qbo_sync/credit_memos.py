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

from fieldbill.domain import credit_tax, payments
from fieldbill.domain.errors import InvalidTransition, Unavailable
from fieldbill.domain.money import cents
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
    with_tax: bool = False,
    amount_taxable: bool | None = None,
) -> Invoice:
    """Record a credit memo (an amount, or lines) on the invoice, then queue its QuickBooks part.
    If the queue refuses: Unavailable (503); the same call again queues it again. `with_tax`
    (wt-life; a person's credit): the amount or lines are before tax, and the tax they carry on
    the invoice is credited too (domain/credit_tax.py); without it the amount is credited as is
    (a job's correction: its total has its tax already)."""
    totals = _credit_totals(tenant_id, invoice_id, amount, lines, amount_taxable) if with_tax else None
    total = totals.total if totals is not None else payments.credit_amount(amount, lines)
    record = store.record_credit(
        tenant_id,
        invoice_id,
        credit_id=credit_id,
        amount=total,
        on=on,
        reason=reason,
        lines=list(lines),
        actor=actor,
        totals=totals,
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


def _credit_totals(
    tenant_id: str,
    invoice_id: str,
    amount: Decimal | None,
    lines: Sequence[payments.CreditLine],
    amount_taxable: bool | None,
) -> credit_tax.CreditTotals:
    """The credit's subtotal, tax and total by the invoice's taxable lines and rate (wt-life)."""
    from fieldbill.domain import tax
    from fieldbill.domain.model import Destination
    from fieldbill.store import invoices as lifecycle
    from fieldbill.workflows.billing.destination import invoice_rules

    invoice = lifecycle.get(tenant_id, invoice_id)
    # The lines the company taxes, as the invoice's sync marks them TAX (quickbooks/mapping.py).
    kinds = invoice_rules(tenant_id, Destination(invoice.destination)).tax.taxable_kinds
    taxed = [
        credit_tax.InvoiceLineTax(ln.product_id, tax.is_taxable(ln, kinds), Decimal(ln.amount))
        for ln in invoice.lines or []
    ]
    rate = credit_tax.invoice_rate(invoice.tax_rate, invoice.tax_total, taxed)
    return credit_tax.credit_totals(
        amount=amount, lines=lines, invoice_lines=taxed, rate=rate, amount_taxable=amount_taxable
    )


# ---------------------------------------------------------------------------- the consumer's part
def credit_memo_body(
    invoice: Invoice,
    memo: CreditMemo,
    customer_ref: str,
    items: dict[str, str],
    automated_tax: bool = False,
) -> dict[str, Any]:
    default_product = next((ln.product_id for ln in invoice.lines or [] if ln.product_id), None)
    # (amount, qty, unit price, description, product, taxable); an amount only is one line of the
    # invoice's first product, so QuickBooks books the credit against the same income account.
    # Amounts are before tax: a taxable line is TAX, and its tax is ours (sent as TotalTax) or,
    # with automated sales tax, QuickBooks' (wt-life, decision 0011 amended).
    net = memo.subtotal if memo.subtotal is not None else memo.amount
    given: list[tuple[Any, Any, Any, str | None, str | None, bool]] = [
        (ln.amount, ln.quantity, ln.unit_price, ln.description, ln.product_id, bool(ln.taxable))
        for ln in memo.lines or []
    ] or [(net, None, None, memo.reason, None, bool(memo.taxable))]
    lines: list[dict[str, Any]] = []
    for amount, qty, price, description, product, taxable in given:
        detail: dict[str, Any] = {"TaxCodeRef": {"value": "TAX" if taxable else "NON"}}
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
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_ref},
        "TxnDate": memo.date,
        "Line": lines,
        "PrivateNote": f"{memo.reason[:200]}\n{marker(invoice.tenant_id, memo.id)}",
        "CustomerMemo": {"value": memo.reason[:1000]},
    }
    if memo.tax_total is not None and not automated_tax:
        # Ours is the tax, as on invoices: sent explicitly, it overrides what QuickBooks computes.
        body["TxnTaxDetail"] = {"TotalTax": memo.tax_total}
    return body


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
                credit_memo_body(invoice, memo, customer, items, tenant.settings.automated_tax),
                request_id("credit-memo", tenant_id, invoice.id, memo.id),
            )
        qbo_id = str(found["Id"])
        store.link_credit(tenant_id, invoice.id, memo.id, qbo_id=qbo_id)
        if found.get("TotalAmt") is not None:  # wt-life: QuickBooks' total (its tax, if automated)
            store.link_total(tenant_id, invoice.id, memo.id, cents(Decimal(str(found["TotalAmt"]))))
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


# ---------------------------------------------------------------------------- removal (wt-life)
# A credit memo removed here is deleted in QuickBooks through the sync queue: first the Payment of 0
# that applies it (QuickBooks refuses to delete a CreditMemo a Payment still links), then the
# CreditMemo. Each is found by its id, else by its PrivateNote marker (its create may have landed
# without our link), and one already gone is done. A refusal is kept on the removed credit memo
# (qbo_error), as a create's is.
NOT_FOUND = "610"  # QuickBooks: Object Not Found
JOB_CORRECTION_PREFIX = "job-correction-"  # the credit id workflows/job_billing/invoices.py gives


def remove_and_queue(
    tenant_id: str, invoice_id: str, credit_id: str, actor: str, reason: str | None
) -> Invoice:
    """Remove a credit memo (balance, status, account balance restored at once) and queue its
    deletion in QuickBooks when the invoice goes there. A repeat answers the same and queues the
    deletion again while QuickBooks still holds it (503 if the queue refuses: repeat it)."""
    from fieldbill.workflows.qbo_sync import enqueue as queue  # the queue client only when sending

    if credit_id.startswith(JOB_CORRECTION_PREFIX):
        # A job's posted correction is that credit: the job's accounts count it (issue 14).
        raise InvalidTransition(
            "credit_memo", "live", "removed", "a job correction's credit: issue another correction instead"
        )
    record, memo, _now = store.remove_credit(tenant_id, invoice_id, credit_id, actor, reason)
    if goes_to_quickbooks(record) and not memo.qbo_removed:
        message = QboSyncMessage(
            kind="remove_credit_memo", tenant_id=tenant_id, entity_id=invoice_id, ref=credit_id
        )
        try:
            queue.send([message])
        except Exception as exc:
            logger.exception("a credit memo's removal could not be queued for QuickBooks")
            raise Unavailable(
                "removed here; not queued for QuickBooks: remove it again (safe) to queue it"
            ) from exc
    return record


def _delete(tenant: Tenant, entity: str, qbo_id: str, tenant_id: str) -> None:
    try:
        current = tenant.client.read(entity, qbo_id)
    except Permanent as exc:
        if str(exc.code) == NOT_FOUND:
            return  # deleted already (a redelivery, or someone in QuickBooks)
        raise
    rid = request_id(f"{entity.lower()}-delete", tenant_id, qbo_id, str(current["SyncToken"]))
    tenant.client.delete(entity, qbo_id, str(current["SyncToken"]), rid)


def push_removal(tenant: Tenant, invoice: Invoice | None, credit_id: str) -> None:
    """Delete the removed credit memo's applying Payment, then the CreditMemo, in QuickBooks."""
    memo = store.find_removed(invoice, credit_id) if invoice is not None else None
    if invoice is None or memo is None:
        logger.warning("removed credit memo not found; message dropped")
        return
    if memo.qbo_removed:
        return  # a redelivery after the deletion was recorded
    tenant_id = invoice.tenant_id
    apply_id: str | None = memo.qbo_apply_id
    qbo_id: str | None = memo.qbo_id
    if not (apply_id and qbo_id) and invoice.qbo_id:
        # Its create may have reached QuickBooks without our link: look both up by their markers.
        customer = references.ensure_customer(tenant, invoice.contact_id)
        if not apply_id:
            found = _find(tenant, "Payment", customer, memo.date, marker(tenant_id, memo.id, APPLY_PREFIX))
            apply_id = str(found["Id"]) if found else None
        if not qbo_id:
            found = _find(tenant, "CreditMemo", customer, memo.date, marker(tenant_id, memo.id))
            qbo_id = str(found["Id"]) if found else None
    if apply_id:
        _delete(tenant, "Payment", apply_id, tenant_id)
    if qbo_id:
        _delete(tenant, "CreditMemo", qbo_id, tenant_id)
    store.removed_in_quickbooks(tenant_id, invoice.id, credit_id)
    logger.info("removed credit memo deleted in QuickBooks", extra={"credit_id": credit_id, "qbo_id": qbo_id})


def record_removal_permanent(tenant_id: str, invoice_id: str, credit_id: str, error: Permanent) -> None:
    """QuickBooks refused to delete it: the removed credit memo says why."""
    store.removal_error(tenant_id, invoice_id, credit_id, error.as_dict())


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
