"""New invoices packed into QuickBooks batch calls (≤ 30 operations each), before the records
are handled one by one: one request of the realm's budget carries up to 30 invoices.

For each tenant with two or more new invoices in the Lambda batch: load them in one read, link
their customers and items, look up those whose earlier attempt may have reached QuickBooks, and
send the rest. Every candidate gets an outcome that its record's own handling then reports: a
fault of one operation is that record's fault, the others stand. A record without an outcome
takes the single-call path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.observability import logger
from fieldbill.quickbooks import mapping
from fieldbill.quickbooks.client import BATCH_MAX_OPERATIONS, batch_item_id, batch_request_id
from fieldbill.quickbooks.errors import DuplicateDocNumber, QboError, Throttled, Transient
from fieldbill.quickbooks.limiter import DEFAULT_MAX_WAIT_SECONDS
from fieldbill.settings import get_settings
from fieldbill.store import invoice_sync
from fieldbill.workflows.messages import QboSyncMessage
from fieldbill.workflows.qbo_sync import backoff, invoices, references
from fieldbill.workflows.qbo_sync.requeue import claim_owner, maybe_sent_before
from fieldbill.workflows.qbo_sync.tenants import Tenant, Tenants

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import Invoice

Ready: TypeAlias = "list[tuple[SQSRecord, Invoice, dict[str, Any]]]"  # (record, invoice, QuickBooks body)


@dataclass
class Prepared:
    """What preparing the batch decided, per record (by message id)."""

    outcomes: dict[str, BaseException | None] = field(default_factory=dict)  # None: done
    invoices: dict[tuple[str, str], Invoice] = field(default_factory=dict)  # loaded, not yet handled
    # Records sent one by one on spare requests while no batch slot is free: message id -> the
    # wait for a batch slot (what they wait at most if the spare requests run out too).
    spare: dict[str, Throttled] = field(default_factory=dict)

    def take_invoice(self, tenant_id: str, invoice_id: str) -> Invoice | None:
        return self.invoices.pop((tenant_id, invoice_id), None)

    # Invoices whose create claim this invocation holds (invoice id -> owner).
    claimed: dict[str, str] = field(default_factory=dict)

    def set_outcome(self, record: SQSRecord, invoice: Invoice, outcome: BaseException | None) -> None:
        self.outcomes[record.message_id] = outcome
        self.invoices.pop((invoice.tenant_id, invoice.id), None)
        owner = self.claimed.pop(invoice.id, None)
        if outcome is not None and owner is not None:
            # This attempt is over without the invoice recorded: the next may create it (a create
            # in doubt was marked unknown first, so the next looks it up).
            invoice_sync.release_create(invoice, owner)


def _batch_wait_seconds() -> float:
    settings = get_settings()
    return backoff.batch_wait_seconds(settings.qbo_seconds_per_minute, settings.qbo_batches_per_minute)


def prepare(records: list[SQSRecord], tenants: Tenants, out_of_time: Callable[[], bool]) -> Prepared:
    """Send the new invoices of each tenant as QuickBooks batch calls (≥ 2 of them)."""
    prepared = Prepared()
    by_tenant: dict[str, list[tuple[SQSRecord, QboSyncMessage]]] = {}
    for record in records:
        try:
            message = QboSyncMessage.model_validate_json(record.body)
        except ValueError:
            continue
        if message.kind == "sync_invoice":
            by_tenant.setdefault(message.tenant_id, []).append((record, message))
    for tenant_id, group in by_tenant.items():
        if len(group) >= 2:
            try:
                _prepare_tenant(prepared, tenants, tenant_id, group, out_of_time)
            except Exception:  # an optimisation: what is left is handled record by record
                logger.exception("batch preparation failed", extra={"tenant_id": tenant_id})
    return prepared


def _load(
    prepared: Prepared, tenant_id: str, group: list[tuple[SQSRecord, QboSyncMessage]]
) -> dict[str, Invoice]:
    loaded = invoice_sync.load_many(tenant_id, (m.entity_id for _, m in group))
    prepared.invoices.update(((tenant_id, i), inv) for i, inv in loaded.items())
    return loaded


def _no_batch_slot(prepared: Prepared, tenant: Tenant, group: list[tuple[SQSRecord, QboSyncMessage]]) -> bool:
    """No batch slot for a while (the realm's minute is spent, or it cools down after a 429): give
    the records back now rather than load and map them first. True when the batch is not sent."""
    client = tenant.client
    if not client.use_limiter or not tenant.realm_id:
        return False
    realm = str(tenant.realm_id)
    wait = client.limiter.estimate(realm, batch=True)
    if wait <= _batch_wait_seconds():
        return False
    deferred = Throttled(client.limiter.to_qbo_seconds(wait), local=True, message="no batch slot")
    # The minute's batches are spent, its requests mostly not: while a spare request is at hand (a
    # short wait is slept in the call), the records are created one by one in their own handling.
    # Else they wait for the batch slot (waiting for spare requests instead was measured: hundreds
    # of hand-backs a second for a few singles).
    if client.limiter.estimate(realm, spare=True) < DEFAULT_MAX_WAIT_SECONDS:
        prepared.spare.update((record.message_id, deferred) for record, _ in group)
        _load(prepared, tenant.tenant_id, group)  # one read for all (the single path takes them)
    else:
        prepared.outcomes.update((record.message_id, deferred) for record, _ in group)
    return True


def _prepare_tenant(
    prepared: Prepared,
    tenants: Tenants,
    tenant_id: str,
    group: list[tuple[SQSRecord, QboSyncMessage]],
    out_of_time: Callable[[], bool],
) -> None:
    try:
        tenant = tenants.get(tenant_id)
    except QboError:
        return  # each record meets the same error on its own path (parked, retried)
    if _no_batch_slot(prepared, tenant, group):
        return
    loaded = _load(prepared, tenant_id, group)
    candidates: list[tuple[SQSRecord, Invoice]] = []
    maybe_sent = {record.message_id for record, message in group if maybe_sent_before(record, message)}
    seen: set[str] = set()
    for record, message in group:
        invoice = loaded.get(message.entity_id)
        if (
            invoice is None
            or invoice.id in seen  # the same invoice twice in one batch: the second waits its turn
            or invoice.destination != "quickbooks"
            or invoice.qbo_id
            or invoices.already_synced(invoice)
            or invoices.credited_instead(invoice)  # its own path sends its credit memo (wt-jobs2)
        ):
            continue
        seen.add(invoice.id)
        candidates.append((record, invoice))
    if len(candidates) < 2:
        return
    candidates = _claimed(prepared, candidates, maybe_sent)
    if len(candidates) < 2:
        return
    # Every candidate gets an outcome here: a failure on the way is that record's failure (retried
    # with its class's delay), not a reason to redo the same work one record at a time.
    try:
        failed = references.ensure_customers(tenant, [inv.contact_id for _, inv in candidates])
    except QboError as exc:  # the name look-up itself failed: nothing to build on
        for record, invoice in candidates:
            prepared.set_outcome(record, invoice, exc)
        return
    ready: Ready = []
    for record, invoice in candidates:
        try:
            if invoice.contact_id in failed:
                raise failed[invoice.contact_id]
            ready.append((record, invoice, invoices.invoice_body(tenant, invoice)))
        except (QboError, mapping.MappingError) as exc:
            prepared.set_outcome(record, invoice, exc)
    ready = _look_up_doubtful(prepared, tenant, ready, maybe_sent)
    for start in range(0, len(ready), BATCH_MAX_OPERATIONS):
        chunk = ready[start : start + BATCH_MAX_OPERATIONS]
        if len(chunk) < 2:
            break  # a lone invoice takes the single-call path (no batch slot for one invoice)
        if out_of_time():
            break
        _send(prepared, tenant, chunk, out_of_time)


def _claimed(
    prepared: Prepared,
    candidates: list[tuple[SQSRecord, Invoice]],
    maybe_sent: set[str],
) -> list[tuple[SQSRecord, Invoice]]:
    """The candidates this delivery may create (their create claim); one another delivery is
    creating comes back later. A claim taken over from a holder that died is looked up first."""
    kept = []
    claims = invoice_sync.claim_creates([(invoice, claim_owner(record)) for record, invoice in candidates])
    for record, invoice in candidates:
        claim = claims[invoice.id]
        if claim is invoice_sync.Claim.HELD:
            prepared.set_outcome(record, invoice, Transient("another delivery is creating this invoice"))
            continue
        prepared.claimed[invoice.id] = claim_owner(record)
        if claim is invoice_sync.Claim.AFTER_EXPIRY:
            maybe_sent.add(record.message_id)
        kept.append((record, invoice))
    return kept


def _look_up_doubtful(prepared: Prepared, tenant: Tenant, ready: Ready, maybe_sent: set[str]) -> Ready:
    """An earlier attempt may have reached QuickBooks (answer lost, or the function died): look
    those up first, all at once, so a lost answer never becomes a second invoice."""
    doubtful = [
        (rec, inv, body)
        for rec, inv, body in ready
        if inv.sync_status == "unknown" or rec.message_id in maybe_sent
    ]
    if not doubtful:
        return ready
    try:
        found = invoices.find_invoices(tenant, [(inv, body) for _, inv, body in doubtful])
    except QboError as exc:
        for rec, inv, _ in doubtful:
            prepared.set_outcome(rec, inv, exc)
        found = {}
    for rec, inv, _ in doubtful:
        row = found.get(inv.id)
        if row is not None:
            logger.info(
                "invoice found in QuickBooks after an unknown outcome: not created again",
                extra={"invoice_id": inv.id, "qbo_id": row.get("Id")},
            )
            _settle(prepared, tenant, rec, inv, row)
    return [r for r in ready if r[0].message_id not in prepared.outcomes]


def _send(
    prepared: Prepared, tenant: Tenant, ready: Ready, out_of_time: Callable[[], bool], *, retry: bool = True
) -> None:
    """One QuickBooks batch call. A transient failure or a QuickBooks 429 is retried once here
    (after a look-up if the batch may have been committed): a fault of one call then costs
    seconds, not a trip through the queue for 30 records."""
    ids = {rec.message_id: invoices.create_request_id(inv) for rec, inv, _ in ready}
    operations = [
        {"bId": batch_item_id(ids[rec.message_id]), "operation": "create", "Invoice": body}
        for rec, _, body in ready
    ]
    try:
        results = tenant.client.batch(
            operations, batch_request_id(list(ids.values())), max_wait=_batch_wait_seconds()
        )
    except (Transient, Throttled) as exc:
        doubtful = isinstance(exc, Transient) and exc.maybe_committed
        if doubtful:
            for _, inv, _ in ready:
                invoice_sync.mark_unknown(inv)
        logger.warning("batch create failed", extra={"operations": len(operations), "error": str(exc)})
        local = isinstance(exc, Throttled) and exc.local
        if retry and not local and not out_of_time():
            if isinstance(exc, Transient):  # a 5xx or a drop is mostly momentary: a short pause
                time.sleep(backoff.batch_retry_pause(get_settings().qbo_seconds_per_minute))
            # (after a 429 the limiter waits out the realm's cool-down, or defers the records)
            _retry(prepared, tenant, ready, doubtful, out_of_time)
            return
        for rec, inv, _ in ready:
            prepared.set_outcome(rec, inv, exc)
        return
    except QboError as exc:  # auth, a whole-batch fault
        for rec, inv, _ in ready:
            prepared.set_outcome(rec, inv, exc)
        logger.info("batch create not sent", extra={"operations": len(operations), "error": str(exc)})
        return
    _record(prepared, tenant, ready, ids, results)
    logger.info("batch create sent", extra={"operations": len(operations), "tenant_id": tenant.tenant_id})


def _record(
    prepared: Prepared, tenant: Tenant, ready: Ready, ids: dict[str, str], results: dict[str, Any]
) -> None:
    """What one batch call answered, per operation, recorded here in one transaction."""
    settled: Ready = []
    for rec, inv, _ in ready:
        result = results.get(batch_item_id(ids[rec.message_id]))
        if isinstance(result, dict):
            settled.append((rec, inv, result))
        elif isinstance(result, DuplicateDocNumber):
            pass  # 6140: the single-call path resolves the number (invoices.create_resolving_numbers)
        elif isinstance(result, BaseException):
            prepared.set_outcome(rec, inv, result)  # that operation's own fault; the others stand
        # no answer for the item: the single-call path looks it up (requestid, marker) and retries
    try:
        invoices.mark_synced_many(tenant, [(inv, result) for _, inv, result in settled])
    except Exception as exc:
        # Created in QuickBooks but not recorded here: the records come back, and as a redelivery
        # they look their invoices up first (never created twice).
        logger.exception("batch created in QuickBooks but not recorded; records retried")
        for rec, inv, _ in settled:
            with contextlib.suppress(Exception):  # best effort: the claim then lasts till it expires
                invoice_sync.mark_unknown(inv)
                prepared.set_outcome(rec, inv, Transient(f"created, not recorded: {type(exc).__name__}"))
                continue
            prepared.outcomes[rec.message_id] = Transient(f"created, not recorded: {type(exc).__name__}")
    else:
        for rec, inv, _ in settled:
            prepared.set_outcome(rec, inv, None)


def _retry(
    prepared: Prepared, tenant: Tenant, ready: Ready, doubtful: bool, out_of_time: Callable[[], bool]
) -> None:
    if doubtful:  # the first call may have created them: look up, resend only the others
        try:
            found = invoices.find_invoices(tenant, [(inv, body) for _, inv, body in ready])
        except QboError as exc:
            for rec, inv, _ in ready:
                prepared.set_outcome(rec, inv, exc)
            return
        for rec, inv, _ in ready:
            if inv.id in found:
                _settle(prepared, tenant, rec, inv, found[inv.id])
        ready = [r for r in ready if r[0].message_id not in prepared.outcomes]
    if len(ready) >= 2:
        _send(prepared, tenant, ready, out_of_time, retry=False)
    # a single one left takes the single-call path (it is `unknown` if in doubt: looked up first)


def _settle(
    prepared: Prepared, tenant: Tenant, record: SQSRecord, invoice: Invoice, result: dict[str, Any]
) -> None:
    invoices.mark_synced(tenant, invoice, result)
    prepared.set_outcome(record, invoice, None)
