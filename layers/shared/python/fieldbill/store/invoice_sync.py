"""An invoice's QuickBooks sync: the reads of the outbound sync and every write of its sync status.

Each status change is decided by SYNC_MACHINE through `transitions.change()` and written in one
update, conditional on the status it was decided from, with its history entry; the run index
(gsi2sk `<sync_status>#<invoice id>`) moves in the same write. A message can overtake its
producer's pending mark (the producer sends the message first): a record the consumer finds
not_synced (or in error) then passes through pending in the same write, both steps in its history.
Writes whose answer nobody reads skip the read-back (Model.update asks for ALL_NEW).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict
from fieldbill.domain.model import Destination, SyncStatus
from fieldbill.domain.money import cents
from fieldbill.domain.states import SYNC_MACHINE
from fieldbill.settings import get_settings
from fieldbill.store import common, numbering, transitions
from fieldbill.store.models import META, Entity, Invoice

ACTOR = "qbo_sync"
STATUS = "sync_status"
# A status write refused because the status moved meanwhile is decided again from the new one.
STATUS_ATTEMPTS = 3
TRANSACTION_MAX = 100
PICKED_UP = "taken up by the QuickBooks sync"


def update_without_reading(record: Entity, actions: list[Action], condition: Any = None) -> None:
    """UpdateItem without reading the item back (Model.update asks for ALL_NEW: a needless read)."""
    hash_key, range_key = record._get_hash_range_key_serialized_values()
    record._get_connection().update_item(hash_key, range_key=range_key, actions=actions, condition=condition)


# ---------------------------------------------------------------------------------- reads
def load(tenant_id: str, invoice_id: str) -> Invoice | None:
    """The invoice as stored now (consistent: the consumer acts on the latest version)."""
    try:
        record = Entity.get(Invoice.key(tenant_id, invoice_id), META, consistent_read=True)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, Invoice) else None


def load_many(tenant_id: str, invoice_ids: Iterable[str]) -> dict[str, Invoice]:
    """invoice id -> invoice, for many at once (consistent BatchGetItem, 100 keys a request)."""
    keys = [(Invoice.key(tenant_id, i), META) for i in dict.fromkeys(invoice_ids)]
    if not keys:
        return {}
    return {r.id: r for r in Entity.batch_get(keys, consistent_read=True) if isinstance(r, Invoice)}


def unqueued(tenant_id: str, run_id: str, limit: int) -> tuple[list[Invoice], bool]:
    """One page of a run's QuickBooks invoices nobody queued yet; True when more may wait."""
    query = Entity.gsi2.query(
        Invoice.run_key(tenant_id, run_id), Entity.gsi2sk.startswith(f"{SyncStatus.NOT_SYNCED}#"), limit=limit
    )
    invoices = [i for i in query if isinstance(i, Invoice) and i.destination == Destination.QUICKBOOKS]
    return invoices, query.last_evaluated_key is not None


# ---------------------------------------------------------------------------------- status writes
@dataclass(frozen=True, slots=True)
class _Write:
    actions: list[Action]
    condition: Any


def _run_index(invoice: Invoice, status: str) -> list[Action]:
    if not invoice.run_id:
        return []
    return [
        Invoice.gsi2pk.set(Invoice.run_key(invoice.tenant_id, invoice.run_id)),
        Invoice.gsi2sk.set(Invoice.run_sort_key(status, invoice.id)),
    ]


def _is_history(action: Action) -> bool:
    return str(action.values[0]) == "history"


def _decide(invoice: Invoice, target: str, reason: str, extra: list[Action]) -> _Write:
    """The write that moves `invoice` from its current status to `target` (InvalidTransition if
    the machine allows neither the step nor the step through pending)."""
    current = str(invoice.sync_status)
    if current == target:
        # Not a status change (a newer version synced again, a second error): the record and its
        # history say what happened, on the condition that the status is still the one seen.
        entry = common.history_entry(ACTOR, current, current, reason)
        actions = [
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(Invoice.history.append([entry])),
            *extra,
        ]
        return _Write(actions, Invoice.sync_status == current)
    if SYNC_MACHINE.can(SyncStatus(current), SyncStatus(target)):
        step = transitions.change(
            Invoice,
            STATUS,
            SYNC_MACHINE,
            invoice.id,
            current,
            target,
            actor=ACTOR,
            reason=reason,
            extra=extra,
        )
        return _Write(step.actions, step.condition)
    picked = transitions.change(
        Invoice, STATUS, SYNC_MACHINE, invoice.id, current, SyncStatus.PENDING, actor=ACTOR, reason=PICKED_UP
    )
    step = transitions.change(
        Invoice,
        STATUS,
        SYNC_MACHINE,
        invoice.id,
        SyncStatus.PENDING,
        target,
        actor=ACTOR,
        reason=reason,
        extra=extra,
    )
    entries = [
        common.history_entry(ACTOR, picked.record.from_status, picked.record.to_status, PICKED_UP),
        common.history_entry(ACTOR, step.record.from_status, step.record.to_status, reason),
    ]
    actions = [a for a in step.actions if not _is_history(a)]
    actions.append(Invoice.history.set(Invoice.history.append(entries)))
    return _Write(actions, picked.condition)


def _write_status(
    invoice: Invoice, target: str, reason: str, extra: list[Action], condition: Any, still: Any
) -> bool:
    """Write the status change; if the status moved meanwhile, decide again from the stored one
    while `still(stored)` holds. False when the change was not written."""
    for _ in range(STATUS_ATTEMPTS):
        decided = _decide(invoice, target, reason, extra)
        try:
            update_without_reading(invoice, decided.actions, decided.condition & condition)
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
            stored = load(invoice.tenant_id, invoice.id)
            if stored is None or not still(stored) or stored.sync_status == invoice.sync_status:
                return False
            transitions.written(invoice, "sync_status", stored.sync_status)
            continue
        transitions.written(invoice, "sync_status", target)
        return True
    return False


def _same_version(invoice: Invoice) -> Any:
    version = int(invoice.version)
    return lambda stored: int(stored.version) == version


def _received(result: dict[str, Any]) -> list[Action]:
    """What QuickBooks answered for the invoice: kept even when it cannot be marked synced."""
    actions: list[Action] = [
        Invoice.qbo_id.set(str(result["Id"])),
        Invoice.qbo_sync_token.set(str(result.get("SyncToken", "0"))),
    ]
    if result.get("DocNumber"):
        actions.append(Invoice.qbo_doc_number.set(str(result["DocNumber"])))
    if result.get("TotalAmt") is not None:
        actions.append(Invoice.qbo_total.set(cents(Decimal(str(result["TotalAmt"])))))
    tax_total = quickbooks_tax(result)
    if tax_total is not None:
        actions.append(Invoice.qbo_tax_total.set(cents(tax_total)))
    return actions


def quickbooks_tax(result: dict[str, Any]) -> Decimal | None:
    detail = result.get("TxnTaxDetail")
    if isinstance(detail, dict) and detail.get("TotalTax") is not None:
        return Decimal(str(detail["TotalTax"]))
    return None


def _taken_totals(invoice: Invoice, result: dict[str, Any]) -> list[Action]:
    """Automated sales tax: QuickBooks computed the tax, so its TotalTax and TotalAmt become the
    invoice's (issue 15 item 3). Only while nothing is paid or credited here: a total moving under
    a payment would move the invoice's status, which a person decides (the difference is flagged)."""
    tax_total, total = quickbooks_tax(result), result.get("TotalAmt")
    if tax_total is None or total is None:
        return []
    if Decimal(invoice.amount_paid or 0) or Decimal(invoice.amount_credited or 0):
        return []
    amount = cents(Decimal(str(total)))
    return [
        Invoice.tax_total.set(cents(tax_total)),
        Invoice.total.set(amount),
        Invoice.balance.set(amount),
        Invoice.tax_source.set("quickbooks"),
    ]


def _synced_extra(invoice: Invoice, result: dict[str, Any], take_totals: bool = False) -> list[Action]:
    return [
        *_received(result),
        *(_taken_totals(invoice, result) if take_totals else []),
        Invoice.dirty.remove(),  # QuickBooks holds this version now (issue 15 item 5)
        Invoice.create_claim.remove(),
        Invoice.create_claim_until.remove(),
        Invoice.qbo_synced_version.set(int(invoice.version)),
        Invoice.sync_error.remove(),
        Invoice.synced_at.set(now_iso()),
        *_run_index(invoice, SyncStatus.SYNCED),
    ]


def _synced_reason(invoice: Invoice, result: dict[str, Any]) -> str:
    # The version is kept in the reason too: records synced before qbo_synced_version existed.
    return f"QuickBooks Invoice {result['Id']} version={int(invoice.version)}"


def mark_synced(invoice: Invoice, result: dict[str, Any], take_totals: bool = False) -> bool:
    """Record QuickBooks' invoice and mark ours synced at its version. False when the invoice
    changed meanwhile: its QuickBooks id is kept (its next message updates, never creates again)
    but not "synced", which would hide the newer version. `take_totals`: QuickBooks computed the
    tax (automated sales tax): its figures become ours."""
    written = _write_status(
        invoice,
        SyncStatus.SYNCED,
        _synced_reason(invoice, result),
        _synced_extra(invoice, result, take_totals),
        Invoice.version == invoice.version,
        _same_version(invoice),
    )
    if not written:
        update_without_reading(invoice, [*_received(result), Invoice.updated_at.set(now_iso())])
    return written


def mark_synced_many(settled: Sequence[tuple[Invoice, dict[str, Any]]], take_totals: bool = False) -> bool:
    """The invoices of one QuickBooks batch call marked synced in one transaction. All or nothing:
    False when any of them changed meanwhile (or another write held one): nothing was written."""
    try:
        with TransactWrite(connection=common.connection()) as tx:
            for invoice, result in settled:
                decided = _decide(
                    invoice,
                    SyncStatus.SYNCED,
                    _synced_reason(invoice, result),
                    _synced_extra(invoice, result, take_totals),
                )
                tx.update(
                    invoice,
                    decided.actions,
                    condition=decided.condition & (Invoice.version == invoice.version),
                )
    except TransactWriteError:
        return False
    for invoice, _ in settled:
        transitions.written(invoice, "sync_status", SyncStatus.SYNCED)
    return True


def mark_unknown(invoice: Invoice) -> None:
    """The create may have reached QuickBooks: whoever handles the invoice next looks it up first."""
    if invoice.sync_status == SyncStatus.UNKNOWN:
        return
    _write_status(
        invoice,
        SyncStatus.UNKNOWN,
        "create sent, answer lost: looked up before any retry",
        [],
        Invoice.qbo_id.does_not_exist(),
        lambda stored: not stored.qbo_id,
    )


def mark_error(invoice: Invoice, error: dict[str, Any], reason: str) -> bool:
    """Record QuickBooks' refusal (`error`: code, message, detail, element). False when the invoice
    changed meanwhile: the error of its older version is not recorded."""
    return _write_status(
        invoice,
        SyncStatus.ERROR,
        reason,
        [
            Invoice.sync_error.set(error),
            Invoice.create_claim.remove(),  # refused: whoever tries next may create it
            Invoice.create_claim_until.remove(),
            *_run_index(invoice, SyncStatus.ERROR),
        ],
        Invoice.version == invoice.version,
        _same_version(invoice),
    )


def mark_pending(invoice: Invoice, actor: str) -> bool:
    """Queued for QuickBooks: from not_synced or error only (pending, unknown and synced invoices
    already have their message). False when another writer got there first."""
    if invoice.sync_status not in (SyncStatus.NOT_SYNCED, SyncStatus.ERROR):
        return False
    extra: list[Action] = []
    if invoice.run_id:
        extra.append(Invoice.gsi2sk.set(Invoice.run_sort_key(SyncStatus.PENDING, invoice.id)))
    try:
        transitions.apply(
            invoice,
            STATUS,
            SYNC_MACHINE,
            SyncStatus.PENDING,
            actor=actor,
            reason="queued for QuickBooks",
            extra=extra,
        )
    except Conflict:
        return False  # the consumer got there first, or it is already pending
    return True


def record_voided(invoice: Invoice, result: dict[str, Any]) -> None:
    """Voided in QuickBooks (its sync status stays: the record there is ours, now void)."""
    entry = common.history_entry(
        ACTOR, invoice.sync_status, invoice.sync_status, f"voided in QuickBooks (Invoice {invoice.qbo_id})"
    )
    invoice.update(
        actions=[
            Invoice.qbo_sync_token.set(str(result.get("SyncToken", ""))),
            Invoice.qbo_total.set(Decimal(str(result.get("TotalAmt", "0")))),
            Invoice.updated_at.set(now_iso()),
            Invoice.history.set(Invoice.history.append([entry])),
        ]
    )


# ---------------------------------------------------------------------------------- create claims
# An attempt gives its claim up when it ends; one that died keeps it until it expires. The lease
# is six QuickBooks minutes: the sync function's time-out (300 s) and the queue's visibility
# (360 s) in AWS, so a holder still running is never overtaken; locally, where tests speed
# QuickBooks' clock up, at least 30 s (a restarted stack creates a dead attempt's invoices then,
# after looking them up).
CREATE_CLAIM_QBO_MINUTES = 6
CREATE_CLAIM_MIN_SECONDS = 30


def create_claim_seconds() -> int:
    minute = get_settings().qbo_seconds_per_minute
    return max(CREATE_CLAIM_MIN_SECONDS, int(CREATE_CLAIM_QBO_MINUTES * minute))


class Claim(enum.StrEnum):
    CLAIMED = "claimed"  # free, or already ours: create it
    AFTER_EXPIRY = "after_expiry"  # an earlier holder died: look it up in QuickBooks first
    HELD = "held"  # another delivery is creating it right now: come back later


def claim_create(invoice: Invoice, owner: str) -> Claim:
    """The right to create the invoice in QuickBooks, for `owner` (a sync message id): two copies
    of a message (a redelivery beside a re-queue after a reconnect) would otherwise put it into
    two batch calls with different requestids, and QuickBooks would create it twice."""
    stamp, lease = int(time.time()), create_claim_seconds()
    free = Invoice.create_claim_until.does_not_exist() | (Invoice.create_claim_until < stamp)
    expired = invoice.create_claim_until is not None and int(invoice.create_claim_until) < stamp
    try:
        update_without_reading(
            invoice,
            [Invoice.create_claim.set(owner), Invoice.create_claim_until.set(stamp + lease)],
            Invoice.qbo_id.does_not_exist() & (free | (Invoice.create_claim == owner)),
        )
    except UpdateError as exc:
        if common.conditional_failed(exc):
            return Claim.HELD
        raise
    before = invoice.create_claim
    invoice.create_claim, invoice.create_claim_until = owner, stamp + lease
    return Claim.AFTER_EXPIRY if expired and before != owner else Claim.CLAIMED


def claim_creates(claims: Sequence[tuple[Invoice, str]]) -> dict[str, Claim]:
    """Claims for a batch call's invoices: one transaction when every one is free (the usual
    case: one request, not one per invoice), else each on its own."""
    stamp, lease = int(time.time()), create_claim_seconds()
    free = Invoice.create_claim_until.does_not_exist() | (Invoice.create_claim_until < stamp)
    if 1 < len(claims) <= TRANSACTION_MAX and not any(i.create_claim_until for i, _ in claims):
        try:
            with TransactWrite(connection=common.connection()) as tx:
                for invoice, owner in claims:
                    tx.update(
                        invoice,
                        [
                            Invoice.create_claim.set(owner),
                            Invoice.create_claim_until.set(stamp + lease),
                        ],
                        condition=Invoice.qbo_id.does_not_exist() & (free | (Invoice.create_claim == owner)),
                    )
        except TransactWriteError:
            pass  # one of them is held (or changed): decided one by one below
        else:
            for invoice, owner in claims:
                invoice.create_claim, invoice.create_claim_until = owner, stamp + lease
            return {invoice.id: Claim.CLAIMED for invoice, _ in claims}
    return {invoice.id: claim_create(invoice, owner) for invoice, owner in claims}


def release_create(invoice: Invoice, owner: str) -> None:
    """Give the claim up (the create failed for good, or was not sent): another may try."""
    try:
        update_without_reading(
            invoice,
            [Invoice.create_claim.remove(), Invoice.create_claim_until.remove()],
            Invoice.create_claim == owner,
        )
    except UpdateError as exc:
        if not common.conditional_failed(exc):
            raise


def release_claims_before(started_at: int) -> int:
    """Every create claim taken before `started_at` (the local stack's restart: their attempts died
    with the process) is given up, so those invoices need not wait for the lease. A scan: the
    local stack's table is small, and only a restart calls this."""
    cutoff = started_at + create_claim_seconds()  # taken before the start: ends before this
    released = 0
    for record in Entity.scan(filter_condition=Invoice.create_claim_until < cutoff):
        if not isinstance(record, Invoice):
            continue
        try:
            update_without_reading(
                record,
                [Invoice.create_claim.remove(), Invoice.create_claim_until.remove()],
                Invoice.create_claim_until < cutoff,
            )
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
            continue
        released += 1
    return released


# ---------------------------------------------------------------------------- numbering (issue 15)
def renumber(invoice: Invoice, taken_by: str) -> str:
    """QuickBooks holds another transaction with our invoice's number (6140): our invoice takes
    the tenant's next number, and the old one passes to `taken_by`, in one transaction
    (store/numbering.renumber); a history entry says why. The invoice in hand carries the new number."""
    old = str(invoice.number)
    record = Invoice(Invoice.key(invoice.tenant_id, invoice.id), META)

    def write(tx: TransactWrite, number: str | None) -> None:
        why = f"number {old} is used in QuickBooks by {taken_by}: renumbered {number}"
        entry = common.history_entry(ACTOR, invoice.sync_status, invoice.sync_status, why)
        tx.update(
            record,
            actions=[
                Invoice.number.set(str(number)),
                Invoice.updated_at.set(now_iso()),
                Invoice.history.set(Invoice.history.append([entry])),
            ],
            condition=Invoice.number == old,
        )

    number = numbering.renumber(invoice.tenant_id, "invoice", invoice.id, old, taken_by, write)
    invoice.number = number
    return number


def mark_resync(invoice: Invoice, reason: str) -> bool:
    """A synced invoice goes to QuickBooks again as it is (a reconciliation repair, issue 15):
    synced -> pending (the machine's re-sync), so its message is not dropped as done. Pending and
    failed ones are already on their way (or wait for a person): False for those."""
    if invoice.sync_status != SyncStatus.SYNCED:
        return invoice.sync_status == SyncStatus.PENDING
    return _write_status(
        invoice,
        SyncStatus.PENDING,
        reason,
        [*_run_index(invoice, SyncStatus.PENDING)],
        Invoice.version == invoice.version,
        _same_version(invoice),
    )


# ---------------------------------------------------------------------------------- a newer SyncToken
# (wt-life, issue 13 item 4) QuickBooks' send, like any change there, advances the invoice's SyncToken;
# the next sparse update needs it. An answer can arrive late (a redelivery, an inbound event that
# already brought a newer one): a token only ever moves forward.
TOKEN_ATTEMPTS = 3


def _token_number(token: str | None) -> int | None:
    try:
        return int(str(token)) if token is not None else None
    except ValueError:
        return None


def keep_newer_sync_token(tenant_id: str, invoice_id: str, sync_token: str | None) -> bool:
    """Store QuickBooks' SyncToken if it is newer than the one held, conditional on the one read
    (so two late answers cannot step it back). True when it was written."""
    incoming = _token_number(sync_token)
    if incoming is None:
        return False
    for _attempt in range(TOKEN_ATTEMPTS):
        record = load(tenant_id, invoice_id)
        if record is None:
            return False
        held = record.qbo_sync_token
        held_number = _token_number(held)
        if held_number is not None and incoming <= held_number:
            return False
        condition = (
            Invoice.qbo_sync_token.does_not_exist() if held is None else Invoice.qbo_sync_token == held
        )
        try:
            update_without_reading(record, [Invoice.qbo_sync_token.set(str(incoming))], condition)
            return True
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    return False  # it kept moving: whoever moved it holds a token at least as new


# ---------------------------------------------------------------------------- issue 15: push again
def unlink_deleted(invoice: Invoice, qbo_id: str, reason: str) -> bool:
    """Our invoice whose QuickBooks copy `qbo_id` was deleted there goes to QuickBooks again as a
    new invoice (a reconciliation repair a person asked for): unlinked (its QuickBooks id and
    token removed, `qbo_pushes` counted so the create's requestid is new) and synced -> pending
    in one write, conditional on it still being linked to `qbo_id` at the version read. Its number
    stays (sent again as DocNumber with custom numbers on). False: not written (linked no more, or
    changed meanwhile)."""
    if str(invoice.qbo_id or "") != qbo_id or invoice.sync_status != SyncStatus.SYNCED:
        return False
    pushes = int(invoice.qbo_pushes or 0) + 1
    extra: list[Action] = [
        Invoice.qbo_id.remove(),
        Invoice.qbo_sync_token.remove(),
        Invoice.qbo_pushes.set(pushes),
        Invoice.qbo_deleted_id.set(qbo_id),
        *_run_index(invoice, SyncStatus.PENDING),
    ]
    return _write_status(
        invoice,
        SyncStatus.PENDING,
        reason,
        extra,
        (Invoice.qbo_id == qbo_id) & (Invoice.version == invoice.version),
        lambda stored: False,  # any change meanwhile: the person looks again
    )
