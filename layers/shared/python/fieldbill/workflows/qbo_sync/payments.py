"""Payments recorded here, in QuickBooks: created against the invoice there, deleted when removed.

A payment is created with a requestid made of the tenant and our payment id, so a redelivered
message never pays twice; its QuickBooks id is kept on our payment. QuickBooks then lowers the
invoice's and the customer's balance itself, which comes back through the inbound flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldbill.observability import logger
from fieldbill.quickbooks.errors import Permanent, Transient
from fieldbill.quickbooks.ids import request_id
from fieldbill.store import invoices as lifecycle
from fieldbill.workflows.qbo_sync import references
from fieldbill.workflows.qbo_sync.tenants import Tenant

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice, Payment


PAYMENT_REF_MAX = 21  # QuickBooks: PaymentRefNum, max 21 characters
MARKER_PREFIX = "fieldbill:payment:"
NOT_FOUND = "610"  # QuickBooks: Object Not Found


def marker(tenant_id: str, payment_id: str) -> str:
    return f"{MARKER_PREFIX}{tenant_id}:{payment_id}"


def payment_body(invoice: Invoice, payment: Payment, customer_ref: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_ref},
        "TotalAmt": payment.amount,
        "TxnDate": payment.date,
        "PrivateNote": marker(invoice.tenant_id, payment.id),
        "Line": [
            {"Amount": payment.amount, "LinkedTxn": [{"TxnId": str(invoice.qbo_id), "TxnType": "Invoice"}]}
        ],
    }
    if payment.reference:
        body["PaymentRefNum"] = str(payment.reference)[:PAYMENT_REF_MAX]
    return body


def push_payment(tenant: Tenant, invoice: Invoice | None, payment_id: str) -> None:
    """Create our payment in QuickBooks (once), against the invoice QuickBooks holds."""
    if invoice is None:
        logger.warning("invoice of the payment not found; message dropped")
        return
    payment = next((p for p in invoice.payments or [] if p.id == payment_id), None)
    if payment is None or payment.qbo_id:
        logger.info("payment removed or already in QuickBooks; nothing to do")
        return
    if not invoice.qbo_id:
        # The invoice's own sync has not landed yet: try again after it (a back-off, not an error).
        raise Transient("the invoice is not in QuickBooks yet; its payment waits for it")
    customer = references.ensure_customer(tenant, invoice.contact_id)
    created = tenant.client.create(
        "Payment",
        payment_body(invoice, payment, customer),
        request_id("payment", invoice.tenant_id, payment.id),
    )
    if not lifecycle.link_payment(invoice.tenant_id, invoice.id, payment.id, str(created["Id"])):
        # Removed here while it was being created there: QuickBooks must not keep it.
        delete_payment(tenant, invoice.tenant_id, str(created["Id"]))
        return
    logger.info("payment created in QuickBooks", extra={"payment_id": payment.id, "qbo_id": created["Id"]})


def waiting(invoice: Invoice) -> list[str]:
    """Our payments on an invoice QuickBooks now holds that are not there yet."""
    return [p.id for p in invoice.payments or [] if not p.qbo_id and not p.qbo_error]


def delete_payment(tenant: Tenant, tenant_id: str, qbo_payment_id: str) -> None:
    """A payment removed here is deleted in QuickBooks (gone already: nothing to do)."""
    try:
        current = tenant.client.read("Payment", qbo_payment_id)
    except Permanent as exc:
        if str(exc.code) == NOT_FOUND:
            return  # deleted already (a redelivery, or someone in QuickBooks)
        raise
    rid = request_id("payment-delete", tenant_id, qbo_payment_id, str(current["SyncToken"]))
    tenant.client.delete("Payment", qbo_payment_id, str(current["SyncToken"]), rid)
    logger.info("payment deleted in QuickBooks", extra={"qbo_id": qbo_payment_id})


def record_permanent(tenant_id: str, invoice_id: str, payment_id: str, error: Permanent) -> None:
    """QuickBooks refused the payment: our payment says why (the invoice's balance here stays)."""
    lifecycle.payment_error(tenant_id, invoice_id, payment_id, error.as_dict())
