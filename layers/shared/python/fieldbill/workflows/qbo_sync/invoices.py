"""Invoices in QuickBooks: create (or find the one a lost answer created), update, void, and what
the answer makes of ours (synced, error, unknown).

A create carries a requestid made of the tenant, the invoice and its version, and the invoice's
marker in PrivateNote: a create that may have gone through unseen (`unknown`, or a redelivery) is
looked up by marker first, so a lost answer never becomes a second invoice.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fieldbill.domain.model import InvoiceStatus
from fieldbill.observability import logger
from fieldbill.quickbooks import mapping
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.client import quote, request_id
from fieldbill.quickbooks.errors import DuplicateDocNumber, NotFound, Permanent, StaleObject, Transient
from fieldbill.store import edit_refusals, invoice_sync
from fieldbill.store import invoices as lifecycle
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import enqueue, payments, references
from fieldbill.workflows.qbo_sync.tenants import Tenant

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice

ACTOR = invoice_sync.ACTOR
STALE_RETRIES = 3
QUERY_IN_MAX = 30  # values in one IN (...) of a QuickBooks query
_VERSION_RE = re.compile(r"\bversion=(\d+)\b")


# ---------------------------------------------------------------------------------- what is done
def synced_version(invoice: Invoice) -> int | None:
    """The invoice version last synced (kept in the history entry of each sync)."""
    explicit = getattr(invoice, "qbo_synced_version", None)
    if explicit is not None:
        return int(explicit)
    for entry in reversed(invoice.history or []):
        if entry.actor == ACTOR and entry.to_state == "synced":
            match = _VERSION_RE.search(entry.reason or "")
            if match:
                return int(match.group(1))
    return None


def already_synced(invoice: Invoice) -> bool:
    if invoice.sync_status != "synced" or not invoice.qbo_id:
        return False
    done = synced_version(invoice)
    return done is not None and done >= int(invoice.version)


def for_quickbooks(invoice: Invoice | None) -> bool:
    if invoice is None:
        logger.warning("invoice to sync not found; message dropped")
        return False
    if invoice.destination != "quickbooks":
        logger.info("invoice is not for QuickBooks; nothing to sync")
        return False
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        logger.info(
            "invoice is void or deleted here; not sent to QuickBooks", extra={"status": invoice.status}
        )
        return False
    if credited_instead(invoice):
        # A sync asked of it (a reconnect, POST /invoices/{id}/sync) sends its credit memo instead.
        from fieldbill.workflows.qbo_sync import credit_memos  # only for a job's correction

        credit_memos.resend_for_correction(invoice)
        return False
    return True


def credited_instead(invoice: Invoice) -> bool:
    """A job's negative correction is a credit memo in QuickBooks, never an Invoice (wt-jobs2)."""
    return bool(invoice.job_id) and Decimal(invoice.total) < 0


# ---------------------------------------------------------------------------------- sync one
def sync_invoice(tenant: Tenant, invoice: Invoice, maybe_sent: bool, owner: str) -> None:
    """Create or update the invoice in QuickBooks, then mark ours synced. Only the attempt that
    holds the invoice's create claim creates it; another comes back later. An attempt that ends
    without the invoice recorded gives its claim up (a create in doubt is marked unknown first,
    so the next attempt looks it up)."""
    claimed = False
    if invoice.qbo_id is None:
        claim = invoice_sync.claim_create(invoice, owner)
        if claim is invoice_sync.Claim.HELD:
            raise Transient("another delivery is creating this invoice in QuickBooks; back later")
        claimed = True
        maybe_sent = maybe_sent or claim is invoice_sync.Claim.AFTER_EXPIRY
    sent = False
    try:
        body = invoice_body(tenant, invoice)
        if invoice.qbo_id is None:
            found = None
            if maybe_sent or invoice.sync_status == "unknown":
                found = find_invoice(tenant, invoice, body)
            if found is None and getattr(invoice, "qbo_deleted_id", None):
                found = still_there(tenant, invoice)
            if found is not None:
                logger.info(
                    "invoice found in QuickBooks after an unknown outcome: not created again",
                    extra={"qbo_id": found.get("Id")},
                )
                result = found
            else:
                sent = True
                result = create_resolving_numbers(tenant, invoice, body)
        else:
            result = update_invoice(tenant, invoice, body)
        mark_synced(tenant, invoice, result)
    except BaseException as exc:
        if claimed:
            if sent and not isinstance(exc, Permanent):
                invoice_sync.mark_unknown(invoice)  # it may be there: the next attempt looks first
            invoice_sync.release_create(invoice, owner)
        raise


def still_there(tenant: Tenant, invoice: Invoice) -> dict[str, Any] | None:
    """Pushed again because QuickBooks' copy was reported deleted (issue 15): if QuickBooks has
    that copy after all (the report was wrong, or old), it is linked again instead of a second
    invoice being made."""
    try:
        row = tenant.client.read("Invoice", str(invoice.qbo_deleted_id))
    except NotFound:
        return None
    if not mapping.has_marker(row, invoice.tenant_id, invoice.id):
        return None
    logger.info("pushed again, but QuickBooks still has it: linked again", extra={"qbo_id": row.get("Id")})
    return row


def invoice_body(tenant: Tenant, invoice: Invoice) -> dict[str, Any]:
    customer = references.ensure_customer(tenant, invoice.contact_id)
    items = references.ensure_items(tenant, [ln.product_id for ln in invoice.lines if ln.product_id])
    return mapping.invoice_to_qbo(
        invoice, customer, items, tenant.settings, invoice_number=getattr(invoice, "number", None)
    )


def create_request_id(invoice: Invoice) -> str:
    pushes = int(getattr(invoice, "qbo_pushes", None) or 0)
    if pushes:  # pushed again after QuickBooks deleted it (issue 15): a create QuickBooks never saw
        return request_id("invoice", invoice.tenant_id, invoice.id, int(invoice.version), f"push{pushes}")
    return request_id("invoice", invoice.tenant_id, invoice.id, int(invoice.version))


def create_invoice(
    tenant: Tenant, invoice: Invoice, body: dict[str, Any], rid: str | None = None
) -> dict[str, Any]:
    try:
        return tenant.client.create("Invoice", body, rid or create_request_id(invoice))
    except Transient as exc:
        if exc.maybe_committed:
            invoice_sync.mark_unknown(invoice)
        raise


RENUMBER_MAX = 3  # numbers taken in QuickBooks in a row before a person is asked to look


def create_resolving_numbers(tenant: Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any]:
    """Create; on 6140 (the DocNumber is taken in QuickBooks) resolve it, never resend blind: the
    invoice holding the number is ours (a lost answer: link it) or someone else's (typed in
    QuickBooks: ours takes our next number, the old one stays used, and is created with it)."""
    rid = create_request_id(invoice)
    for attempt in range(RENUMBER_MAX + 1):
        try:
            return create_invoice(tenant, invoice, body, rid)
        except DuplicateDocNumber:
            number = body.get("DocNumber")
            if not number or attempt == RENUMBER_MAX:
                raise
            rows = tenant.client.query("Invoice", f"DocNumber = {quote(str(number))}")
            ours = next((r for r in rows if mapping.has_marker(r, invoice.tenant_id, invoice.id)), None)
            if ours is not None:
                return ours
            holder = f"quickbooks:Invoice:{rows[0]['Id']}" if rows else "quickbooks"
            renumbered = invoice_sync.renumber(invoice, holder)
            logger.info(
                "invoice number taken in QuickBooks: renumbered",
                extra={"invoice_id": invoice.id, "old": number, "new": renumbered, "holder": holder},
            )
            body = {**body, "DocNumber": mapping.doc_number(renumbered, tenant.settings)}
            # A new requestid: QuickBooks would answer the old one with its remembered 6140.
            rid = request_id("invoice", invoice.tenant_id, invoice.id, int(invoice.version), renumbered)
    raise AssertionError("unreachable")


def find_invoice(tenant: Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any] | None:
    """Our invoice in QuickBooks, if a create whose answer was lost went through."""
    client = tenant.client
    if body.get("DocNumber"):
        rows = client.query("Invoice", f"DocNumber = {quote(str(body['DocNumber']))}")
    else:
        where = f"CustomerRef = {quote(body['CustomerRef']['value'])}"
        if body.get("TxnDate"):
            where += f" AND TxnDate = {quote(body['TxnDate'])}"
        rows = list(client.query_all("Invoice", where))
    return next((r for r in rows if mapping.has_marker(r, invoice.tenant_id, invoice.id)), None)


def find_invoices(
    tenant: Tenant, invoices: list[tuple[Invoice, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Invoice id -> our invoice in QuickBooks, for many at once: one query per 30 customers and
    date (or per 30 document numbers), matched by the PrivateNote marker."""
    found: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str], list[tuple[Invoice, dict[str, Any]]]] = {}
    for invoice, body in invoices:
        if body.get("DocNumber"):
            groups.setdefault(("DocNumber", ""), []).append((invoice, body))
        else:
            groups.setdefault(("CustomerRef", str(body.get("TxnDate") or "")), []).append((invoice, body))
    for (field_name, txn_date), members in groups.items():
        if field_name == "DocNumber":
            values = list(dict.fromkeys(str(b["DocNumber"]) for _, b in members))
        else:
            values = list(dict.fromkeys(str(b["CustomerRef"]["value"]) for _, b in members))
        for start in range(0, len(values), QUERY_IN_MAX):
            where = f"{field_name} IN ({', '.join(quote(v) for v in values[start : start + QUERY_IN_MAX])})"
            if txn_date:
                where += f" AND TxnDate = {quote(txn_date)}"
            for row in tenant.client.query_all("Invoice", where):
                for invoice, _ in members:
                    if invoice.id not in found and mapping.has_marker(row, invoice.tenant_id, invoice.id):
                        found[invoice.id] = row
    return found


def update_invoice(tenant: Tenant, invoice: Invoice, body: dict[str, Any]) -> dict[str, Any]:
    sync_token = invoice.qbo_sync_token
    if sync_token is None:
        sync_token = str(tenant.client.read("Invoice", str(invoice.qbo_id))["SyncToken"])
    for attempt in range(STALE_RETRIES + 1):
        rid = request_id("invoice-update", invoice.tenant_id, invoice.id, int(invoice.version), sync_token)
        try:
            # A sparse update (the client's default): QuickBooks changes only the fields sent.
            return tenant.client.update(
                "Invoice", {**body, "Id": invoice.qbo_id, "SyncToken": sync_token}, rid
            )
        except StaleObject:
            if attempt == STALE_RETRIES:
                raise
            sync_token = str(tenant.client.read("Invoice", str(invoice.qbo_id))["SyncToken"])
    raise AssertionError("unreachable")


def void_invoice(tenant: Tenant, invoice: Invoice) -> None:
    client = tenant.client
    qbo_id = str(invoice.qbo_id)
    for attempt in range(STALE_RETRIES + 1):
        current = client.read("Invoice", qbo_id)
        rid = request_id("void", invoice.tenant_id, invoice.id, current["SyncToken"])
        try:
            result = client.void("Invoice", qbo_id, str(current["SyncToken"]), rid)
            break
        except StaleObject:
            if attempt == STALE_RETRIES:
                raise
    invoice_sync.record_voided(invoice, result)
    logger.info("invoice voided in QuickBooks", extra={"qbo_id": qbo_id})


# ---------------------------------------------------------------------------------- what it made of ours
def mark_synced(tenant: Tenant, invoice: Invoice, result: dict[str, Any]) -> None:
    if not invoice_sync.mark_synced(invoice, result, tenant.settings.automated_tax):
        logger.info("invoice changed during sync; its newer version syncs on its own message")
        return
    after_sync(invoice)
    qmetrics.count("InvoicesSynced", tenant.realm_id)
    _log_synced(invoice, result)


def after_sync(invoice: Invoice) -> None:
    """What follows an invoice's first landing in QuickBooks: a draft is open, and payments
    recorded here while it was not there yet go there now."""
    open_if_draft(invoice)
    waiting = payments.waiting(invoice)
    if waiting:
        enqueue.send(
            [
                QboSyncMessage(kind="sync_payment", tenant_id=invoice.tenant_id, entity_id=invoice.id, ref=p)
                for p in waiting
            ]
        )


def open_if_draft(invoice: Invoice) -> None:
    """A draft QuickBooks holds is open (issue 13). A separate write after the sync is recorded:
    a redelivery of the message finds the invoice synced and opens it then (see the consumer)."""
    if invoice.status == InvoiceStatus.DRAFT:
        lifecycle.open_synced(invoice, ACTOR)


def mark_synced_many(tenant: Tenant, settled: list[tuple[Invoice, dict[str, Any]]]) -> None:
    """The invoices of one QuickBooks batch call in one transaction (one round trip instead of
    one per invoice). If any of them changed meanwhile (or another write held one), nothing was
    written and each is recorded on its own, with its own condition."""
    if len(settled) < 2 or not invoice_sync.mark_synced_many(settled, tenant.settings.automated_tax):
        for invoice, result in settled:
            mark_synced(tenant, invoice, result)
        return
    qmetrics.count("InvoicesSynced", tenant.realm_id, len(settled))
    for invoice, result in settled:
        after_sync(invoice)
        _log_synced(invoice, result)


def _log_synced(invoice: Invoice, result: dict[str, Any]) -> None:
    total = result.get("TotalAmt")
    if total is not None and Decimal(str(total)) != invoice.total:
        logger.info(
            "QuickBooks total differs from ours (flagged on the invoice: totals_differ)",
            extra={"invoice_id": invoice.id, "qbo_total": str(total), "total": str(invoice.total)},
        )
    logger.info("invoice synced", extra={"invoice_id": invoice.id, "qbo_id": str(result["Id"])})


def mark_error(invoice: Invoice, error: Permanent) -> None:
    reason = f"QuickBooks {error.code}: {error.message} {error.element}".strip()
    if edit_refusals.restorable(invoice) and edit_refusals.restore(invoice, error.as_dict(), reason):
        logger.info("QuickBooks refused the edit; the invoice is back at the version it holds")
        return
    if not invoice_sync.mark_error(invoice, error.as_dict(), reason):
        logger.info("invoice changed; the error of its older version is not recorded")


def record_permanent(tenant_id: str, invoice_id: str, error: Permanent) -> None:
    """QuickBooks refused the invoice (or its void): the record says why."""
    invoice = invoice_sync.load(tenant_id, invoice_id)
    if invoice is not None:
        mark_error(invoice, error)
