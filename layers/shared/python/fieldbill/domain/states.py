"""State machines: every allowed transition written down, and a history record for each change.

| machine         | allowed transitions                                                       |
|-----------------|---------------------------------------------------------------------------|
| task_entry      | unbilled -> billed; billed -> unbilled only when all its items are void   |
| billable_item   | pending -> invoiced | unbillable | void; invoiced -> pending (invoice void  |
|                 | or credited); unbillable -> pending | void; void -> pending (recompiled)  |
| invoice         | draft -> open | deleted; open -> partially_paid | paid | void;            |
|                 | partially_paid -> open | paid; paid -> open | partially_paid (payments)   |
| invoice_from_   | draft -> open | partially_paid | paid; between open, partially_paid and    |
| quickbooks      | paid both ways (QuickBooks' balance, inbound only)                        |
| invoice_sync    | not_synced -> pending; pending -> synced | error | unknown; error ->     |
|                 | pending; synced -> pending (re-sync after a change); unknown -> synced or |
|                 | error (unknown: a create whose answer was lost, looked up before retrying)|
| billing_run     | queued -> compiling -> generating -> syncing -> succeeded | failed |      |
|                 | partially_failed; queued, compiling, generating -> failed; any of the     |
|                 | four before the end -> cancelled (a person stops it)                      |
| quickbooks_     | disconnected -> connected (OAuth callback); connected -> needs_reconnect  |
| connection      | (tokens refused) | disconnected; needs_reconnect -> connected | disconnected |
| operation       | queued -> running | failed; running -> succeeded | failed                 |
|                 | queued, running -> cancelled (a person stops it; what it did stays done)  |

A record is born in one of its machine's initial statuses (`StateMachine.begin`): an invoice as
draft and not_synced, an item as pending, a run and an operation as queued.

A change to the state a record is already in raises Conflict (a retry can treat it as done);
any other change not listed raises InvalidTransition. The functions return the new record and
a HistoryRecord; the store writes both, conditionally on the old status (the audit trail).
A sync message can overtake its producer's pending mark (the message is sent first): the store
then writes both steps, through pending, in one write (store/invoice_sync.py).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Generic, TypeVar

from fieldbill.domain.errors import Conflict, InvalidTransition
from fieldbill.domain.model import (
    BillableItem,
    EntryStatus,
    Invoice,
    InvoiceStatus,
    ItemStatus,
    RunStatus,
    SyncStatus,
    TaskEntry,
)

S = TypeVar("S", bound=enum.StrEnum)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRecord:
    at: datetime
    actor: str
    machine: str
    subject_id: str
    from_status: str
    to_status: str
    reason: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "from": self.from_status,
            "to": self.to_status,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class StateMachine(Generic[S]):
    name: str
    allowed: Mapping[S, frozenset[S]]
    # The statuses a new record may start in (empty: the machine does not say).
    initial: frozenset[S] = frozenset()

    def begin(
        self, subject_id: str, status: S, *, at: datetime, actor: str, reason: str | None = None
    ) -> HistoryRecord:
        """The history record of a new record born in `status` (InvalidTransition if it may not)."""
        if status not in self.initial:
            raise InvalidTransition(self.name, "none", status, "not an initial status")
        return HistoryRecord(
            at=at,
            actor=actor,
            machine=self.name,
            subject_id=subject_id,
            from_status="",
            to_status=status.value,
            reason=reason,
        )

    def can(self, current: S, target: S) -> bool:
        return target in self.allowed.get(current, frozenset())

    def check(self, subject_id: str, current: S, target: S) -> None:
        if current == target:
            raise Conflict(f"{self.name} {subject_id!r} is already {current}")
        if not self.can(current, target):
            raise InvalidTransition(self.name, current, target)

    def transition(
        self,
        subject_id: str,
        current: S,
        target: S,
        *,
        at: datetime,
        actor: str,
        reason: str | None = None,
    ) -> HistoryRecord:
        self.check(subject_id, current, target)
        return HistoryRecord(
            at=at,
            actor=actor,
            machine=self.name,
            subject_id=subject_id,
            from_status=current.value,
            to_status=target.value,
            reason=reason,
        )


ENTRY_MACHINE: StateMachine[EntryStatus] = StateMachine(
    "task_entry",
    {
        EntryStatus.UNBILLED: frozenset({EntryStatus.BILLED}),
        EntryStatus.BILLED: frozenset({EntryStatus.UNBILLED}),
    },
)

ITEM_MACHINE: StateMachine[ItemStatus] = StateMachine(
    "billable_item",
    {
        ItemStatus.PENDING: frozenset({ItemStatus.INVOICED, ItemStatus.UNBILLABLE, ItemStatus.VOID}),
        ItemStatus.INVOICED: frozenset({ItemStatus.PENDING}),
        ItemStatus.UNBILLABLE: frozenset({ItemStatus.PENDING, ItemStatus.VOID}),
        ItemStatus.VOID: frozenset({ItemStatus.PENDING}),
    },
    # Issue 17: a visit completed as Unbillable compiles into items born unbillable (shown with the
    # Unbillable badge, made billable again through PATCH /billable-items/{id}).
    initial=frozenset({ItemStatus.PENDING, ItemStatus.UNBILLABLE}),
)

_PAYABLE = frozenset({InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID})

INVOICE_MACHINE: StateMachine[InvoiceStatus] = StateMachine(
    "invoice",
    {
        # Sent (by email or marked sent) or synced to QuickBooks: open. A draft nobody wants is
        # deleted (its items pending again); an invoice someone has seen is voided instead.
        InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN, InvoiceStatus.DELETED}),
        # Payments and credits move an invoice between the payable statuses, both ways (a
        # payment can be removed). Only an invoice with nothing paid or credited can be voided.
        InvoiceStatus.OPEN: frozenset({InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.VOID}),
        InvoiceStatus.PARTIALLY_PAID: frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAID}),
        InvoiceStatus.PAID: frozenset({InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID}),
    },
    initial=frozenset({InvoiceStatus.DRAFT}),
)

# What QuickBooks' copy may do to an invoice it holds (inbound only): payments are also recorded
# there, so a customer can pay before our sync has marked the invoice open, and a deleted payment
# makes a paid invoice owed again. People here follow INVOICE_MACHINE.
QUICKBOOKS_INVOICE_MACHINE: StateMachine[InvoiceStatus] = StateMachine(
    "invoice_from_quickbooks",
    {
        InvoiceStatus.DRAFT: _PAYABLE,
        InvoiceStatus.OPEN: _PAYABLE - {InvoiceStatus.OPEN},
        InvoiceStatus.PARTIALLY_PAID: _PAYABLE - {InvoiceStatus.PARTIALLY_PAID},
        InvoiceStatus.PAID: _PAYABLE - {InvoiceStatus.PAID},
    },
)

SYNC_MACHINE: StateMachine[SyncStatus] = StateMachine(
    "invoice_sync",
    {
        SyncStatus.NOT_SYNCED: frozenset({SyncStatus.PENDING}),
        SyncStatus.PENDING: frozenset({SyncStatus.SYNCED, SyncStatus.ERROR, SyncStatus.UNKNOWN}),
        SyncStatus.ERROR: frozenset({SyncStatus.PENDING}),
        SyncStatus.SYNCED: frozenset({SyncStatus.PENDING}),
        # A create whose answer was lost: found (or created) on the retry, or refused then.
        SyncStatus.UNKNOWN: frozenset({SyncStatus.SYNCED, SyncStatus.ERROR}),
    },
    initial=frozenset({SyncStatus.NOT_SYNCED}),
)

RUN_MACHINE: StateMachine[RunStatus] = StateMachine(
    "billing_run",
    {
        # A person may cancel a run at any stage before it ends (what it made so far stays).
        RunStatus.QUEUED: frozenset({RunStatus.COMPILING, RunStatus.FAILED, RunStatus.CANCELLED}),
        RunStatus.COMPILING: frozenset({RunStatus.GENERATING, RunStatus.FAILED, RunStatus.CANCELLED}),
        RunStatus.GENERATING: frozenset({RunStatus.SYNCING, RunStatus.FAILED, RunStatus.CANCELLED}),
        RunStatus.SYNCING: frozenset(
            {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIALLY_FAILED, RunStatus.CANCELLED}
        ),
    },
    initial=frozenset({RunStatus.QUEUED}),
)

RUN_FINISHED = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIALLY_FAILED, RunStatus.CANCELLED}
)


class OperationStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # A person stopped it (POST /operations/{id}/cancel); its worker stops at its next progress
    # write, which is conditional on running, and records how far it got.
    CANCELLED = "cancelled"


OPERATION_MACHINE: StateMachine[OperationStatus] = StateMachine(
    "operation",
    {
        OperationStatus.QUEUED: frozenset(
            {OperationStatus.RUNNING, OperationStatus.FAILED, OperationStatus.CANCELLED}
        ),
        OperationStatus.RUNNING: frozenset(
            {OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED}
        ),
    },
    initial=frozenset({OperationStatus.QUEUED}),
)

# An operation in one of these is over: its worker does nothing more for it.
OPERATION_FINISHED = frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED})


# --- QuickBooks connection ------------------------------------------------------------------
class ConnectionStatus(enum.StrEnum):
    """A tenant's QuickBooks connection (QboConnection.status)."""

    DISCONNECTED = "disconnected"  # never connected, or the user disconnected: no tokens
    CONNECTED = "connected"  # tokens work; listed for the schedules
    NEEDS_RECONNECT = "needs_reconnect"  # QuickBooks refused the tokens: a person must consent again


# A callback while connected only renews the tokens (no status change). There is no way from
# disconnected to needs_reconnect: without tokens nothing can be refused.
CONNECTION_MACHINE: StateMachine[ConnectionStatus] = StateMachine(
    "quickbooks_connection",
    {
        ConnectionStatus.DISCONNECTED: frozenset({ConnectionStatus.CONNECTED}),
        ConnectionStatus.CONNECTED: frozenset(
            {ConnectionStatus.NEEDS_RECONNECT, ConnectionStatus.DISCONNECTED}
        ),
        ConnectionStatus.NEEDS_RECONNECT: frozenset(
            {ConnectionStatus.CONNECTED, ConnectionStatus.DISCONNECTED}
        ),
    },
)


# --- task entries ---------------------------------------------------------------------------


def bill_entry(
    entry: TaskEntry, *, at: datetime, actor: str, reason: str | None = "compiled"
) -> tuple[TaskEntry, HistoryRecord]:
    record = ENTRY_MACHINE.transition(
        entry.id, entry.status, EntryStatus.BILLED, at=at, actor=actor, reason=reason
    )
    return dataclasses.replace(entry, status=EntryStatus.BILLED), record


def unbill_entry(
    entry: TaskEntry, items: Iterable[BillableItem], *, at: datetime, actor: str, reason: str | None = None
) -> tuple[TaskEntry, HistoryRecord]:
    """Back to unbilled, only once every item compiled from it is void (bill once)."""
    live = [item.id for item in items if item.entry_id == entry.id and item.status is not ItemStatus.VOID]
    if live:
        raise InvalidTransition(
            ENTRY_MACHINE.name, entry.status, EntryStatus.UNBILLED, f"items not void: {', '.join(live)}"
        )
    record = ENTRY_MACHINE.transition(
        entry.id, entry.status, EntryStatus.UNBILLED, at=at, actor=actor, reason=reason
    )
    return dataclasses.replace(entry, status=EntryStatus.UNBILLED), record


# --- billable items -------------------------------------------------------------------------


def set_item_status(
    item: BillableItem, target: ItemStatus, *, at: datetime, actor: str, reason: str | None = None
) -> tuple[BillableItem, HistoryRecord]:
    """Transitions without a guard: unbillable, void, and back to pending from those."""
    if target is ItemStatus.INVOICED or item.status is ItemStatus.INVOICED:
        # Those carry an invoice reference; use invoice_item / release_item.
        raise InvalidTransition(ITEM_MACHINE.name, item.status, target, "goes through the invoice")
    record = ITEM_MACHINE.transition(item.id, item.status, target, at=at, actor=actor, reason=reason)
    return dataclasses.replace(item, status=target), record


def invoice_item(
    item: BillableItem, invoice_id: str, *, at: datetime, actor: str, reason: str | None = "invoiced"
) -> tuple[BillableItem, HistoryRecord]:
    record = ITEM_MACHINE.transition(
        item.id, item.status, ItemStatus.INVOICED, at=at, actor=actor, reason=reason
    )
    return dataclasses.replace(item, status=ItemStatus.INVOICED, invoice_id=invoice_id), record


def release_item(
    item: BillableItem, invoice: Invoice, *, at: datetime, actor: str, reason: str | None = None
) -> tuple[BillableItem, HistoryRecord]:
    """Billable again, only when its own invoice was voided, deleted or credited, or no longer
    lists it (its line was removed from a draft)."""
    if item.invoice_id != invoice.id:
        raise InvalidTransition(
            ITEM_MACHINE.name, item.status, ItemStatus.PENDING, f"not on invoice {invoice.id}"
        )
    released = (InvoiceStatus.VOID, InvoiceStatus.DELETED)
    if invoice.status not in released and invoice.credit_memo_id is None and item.id in invoice.item_ids:
        raise InvalidTransition(
            ITEM_MACHINE.name, item.status, ItemStatus.PENDING, "its invoice still bills it"
        )
    if reason is None:
        if invoice.status in released:
            reason = "invoice voided" if invoice.status is InvoiceStatus.VOID else "invoice deleted"
        else:
            reason = "invoice credited" if item.id in invoice.item_ids else "line removed from its invoice"
    why = reason
    record = ITEM_MACHINE.transition(item.id, item.status, ItemStatus.PENDING, at=at, actor=actor, reason=why)
    return dataclasses.replace(item, status=ItemStatus.PENDING, invoice_id=None), record


# --- invoices -------------------------------------------------------------------------------


def set_invoice_status(
    invoice: Invoice, target: InvoiceStatus, *, at: datetime, actor: str, reason: str | None = None
) -> tuple[Invoice, HistoryRecord]:
    record = INVOICE_MACHINE.transition(invoice.id, invoice.status, target, at=at, actor=actor, reason=reason)
    return dataclasses.replace(invoice, status=target), record


def set_sync_status(
    invoice: Invoice, target: SyncStatus, *, at: datetime, actor: str, reason: str | None = None
) -> tuple[Invoice, HistoryRecord]:
    record = SYNC_MACHINE.transition(
        invoice.id, invoice.sync_status, target, at=at, actor=actor, reason=reason
    )
    return dataclasses.replace(invoice, sync_status=target), record


def status_for_balance(current: InvoiceStatus, total: Decimal, balance: Decimal) -> InvoiceStatus:
    """The payable status a balance implies: nothing left on a non-zero invoice is paid, something
    paid or credited is partially paid, else open. A draft, void or deleted invoice keeps its
    status (a draft is not payable: send it first)."""
    if current not in _PAYABLE:
        return current
    if total > 0 and balance <= 0:
        return InvoiceStatus.PAID
    if balance < total:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.OPEN


def status_from_quickbooks_balance(
    current: InvoiceStatus, balance: Decimal | None, total: Decimal | None
) -> InvoiceStatus:
    """The status QuickBooks' copy implies: an invoice QuickBooks holds is at least open, and its
    balance there says how much is paid. A void or deleted invoice, and an unknown balance, keep
    their status. The result is always `current` or an allowed QuickBooks transition."""
    if balance is None or total is None or current in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        return current
    base = InvoiceStatus.OPEN if current is InvoiceStatus.DRAFT else current
    target = status_for_balance(base, total, balance)
    return target if target is current or QUICKBOOKS_INVOICE_MACHINE.can(current, target) else current


def is_overdue(status: InvoiceStatus, due_date: date | None, today: date) -> bool:
    """Overdue is derived, never stored: something is still owed after the due date."""
    owed = status in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)
    return owed and due_date is not None and due_date < today


# --- job-shop jobs and job invoices (issue 14) ----------------------------------------------
# Not the asynchronous "jobs" (operations): a job shop's job, domain/jobs.py.
from fieldbill.domain.jobs import JobStatus  # noqa: E402


class WorkflowStatus(enum.StrEnum):
    """A job invoice's accounting workflow (Invoice.workflow_status), beside its payment status."""

    INVOICED = "invoiced"
    APPROVED = "approved"
    EXPORTED = "exported"
    POSTED = "posted"


# | job                  | open -> closed; closed -> open (reopen) | billed (the Complete invoice) |
# | job_invoice_workflow | invoiced -> approved -> exported -> posted; invoiced -> posted when |
# |                      | the tenant has no accounting integration (accounting_step decides)  |
JOB_MACHINE: StateMachine[JobStatus] = StateMachine(
    "job",
    {
        JobStatus.OPEN: frozenset({JobStatus.CLOSED}),
        JobStatus.CLOSED: frozenset({JobStatus.OPEN, JobStatus.BILLED}),
    },
    initial=frozenset({JobStatus.OPEN}),
)

WORKFLOW_MACHINE: StateMachine[WorkflowStatus] = StateMachine(
    "job_invoice_workflow",
    {
        WorkflowStatus.INVOICED: frozenset({WorkflowStatus.APPROVED, WorkflowStatus.POSTED}),
        WorkflowStatus.APPROVED: frozenset({WorkflowStatus.EXPORTED}),
        WorkflowStatus.EXPORTED: frozenset({WorkflowStatus.POSTED}),
    },
    initial=frozenset({WorkflowStatus.INVOICED}),
)


def accounting_step(current: WorkflowStatus, target: WorkflowStatus, *, integration: bool) -> None:
    """The machine allows both paths; the tenant's accounting integration picks one of them:
    with it, an invoice is approved and exported before it is posted; without it, invoiced ->
    posted is the only step. InvalidTransition names the machine, current and requested status."""
    WORKFLOW_MACHINE.check("", current, target)
    if integration and current is WorkflowStatus.INVOICED and target is WorkflowStatus.POSTED:
        raise InvalidTransition(
            WORKFLOW_MACHINE.name, current, target, "accounting integration: approve and export first"
        )
    if not integration and target in (WorkflowStatus.APPROVED, WorkflowStatus.EXPORTED):
        raise InvalidTransition(WORKFLOW_MACHINE.name, current, target, "no accounting integration: post it")


# --- completed services (issue 17) ----------------------------------------------------------
class VisitStatus(enum.StrEnum):
    """A service visit: scheduled (editable), then completed (compiled into billable items in the
    same write; what happens to it next is its items' business: invoiced, released, unbillable)."""

    SCHEDULED = "scheduled"
    COMPLETED = "completed"


VISIT_MACHINE: StateMachine[VisitStatus] = StateMachine(
    "visit",
    {VisitStatus.SCHEDULED: frozenset({VisitStatus.COMPLETED})},
    initial=frozenset({VisitStatus.SCHEDULED, VisitStatus.COMPLETED}),
)


# --- a billed entry is frozen (wt-door) -----------------------------------------------------------
def check_entry_unbilled(entry_id: str, status: EntryStatus, requested: str) -> None:
    """Editing, stopping or deleting an entry is asked of an unbilled one only: a billed entry is
    what its billable items bill (void them to unbill it first). The refusal names the entry's
    machine, its status and what was asked ("edited", "stopped", "deleted"), like an invoice edit."""
    if status is EntryStatus.BILLED:
        raise InvalidTransition(
            ENTRY_MACHINE.name, status, requested, f"entry {entry_id!r} is billed: void its items first"
        )


# --- credit memos (wt-life, issue 13): a credit memo on its invoice is live until a person removes
# it (its effect on the balance undone in the same write); a removed one stays, with who and why.
class CreditMemoStatus(enum.StrEnum):
    LIVE = "live"
    REMOVED = "removed"


# | credit_memo | live -> removed (DELETE /invoices/{id}/credit-memos/{credit_id}) |
CREDIT_MEMO_MACHINE: StateMachine[CreditMemoStatus] = StateMachine(
    "credit_memo",
    {CreditMemoStatus.LIVE: frozenset({CreditMemoStatus.REMOVED})},
    initial=frozenset({CreditMemoStatus.LIVE}),
)
