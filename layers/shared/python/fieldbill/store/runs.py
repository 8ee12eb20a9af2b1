"""Runs access patterns: the tenant's run lock, billing runs and asynchronous operations.

A run and the lock that names it are written in ONE transaction, so there is never a lock
without its run. The lock expires (`ttl`, past the state machine's total time-out): a lock whose
run is gone, finished or out of time is released by the reconciler (workflows/billing/run.py)
instead of locking the tenant out for good. Every status change goes through the domain's
machines (RUN_MACHINE, OPERATION_MACHINE) and is written conditionally on the old status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now, now_iso
from fieldbill.domain.errors import Conflict, InvalidTransition, OperationCancelled
from fieldbill.domain.model import RunStatus
from fieldbill.domain.states import (
    OPERATION_FINISHED,
    OPERATION_MACHINE,
    RUN_FINISHED,
    RUN_MACHINE,
    OperationStatus,
)
from fieldbill.store import common, transitions
from fieldbill.store.models import META, BillingRun, Entity, Operation, RunLock

# gsi2 partition of every held run lock, by expiry: the scheduled reconciler reads the expired ones.
LOCKS_INDEX = "RUNLOCKS"


class RunLocked(Conflict):
    """Another run holds the tenant's lock (409 unless the reconciler finds it stale)."""

    def __init__(self, run_id: str, expires_at: int | None) -> None:
        super().__init__(f"billing run {run_id} is still active for this tenant")
        self.run_id = run_id
        self.expires_at = expires_at


@dataclass(frozen=True, slots=True)
class Lock:
    tenant_id: str
    run_id: str
    expires_at: int | None

    def expired(self, at: float | None = None) -> bool:
        return self.expires_at is not None and (at or time.time()) >= self.expires_at


def lock_key(tenant_id: str) -> str:
    # One active run per tenant, whatever its scope: two runs over overlapping work could still not
    # bill anything twice, but they would split one customer's month across two invoices.
    return RunLock.key(tenant_id, "tenant")


def _lock_sort_key(expires_at: int, tenant_id: str) -> str:
    return f"{expires_at:012d}#{tenant_id}"


def _as_lock(record: RunLock) -> Lock:
    return Lock(record.tenant_id, record.run_id, int(record.ttl) if record.ttl is not None else None)


# ---------------------------------------------------------------------------- runs and their lock
def new_run(tenant_id: str, run_id: str, actor: str, **values: Any) -> BillingRun:
    """A queued run record (not written): `values` are BillingRun attributes."""
    stamp = now_iso()
    RUN_MACHINE.begin(run_id, RunStatus.QUEUED, at=now(), actor=actor, reason="billing run requested")
    return BillingRun(
        pk=BillingRun.key(tenant_id, run_id),
        sk=META,
        tenant_id=tenant_id,
        id=run_id,
        gsi1pk=BillingRun.list_key(tenant_id),
        gsi1sk=f"{stamp}#{run_id}",
        status=str(RunStatus.QUEUED),
        stage="queued",
        started_by=actor,
        started_at=stamp,
        created_at=stamp,
        updated_at=stamp,
        history=[common.history_entry(actor, None, str(RunStatus.QUEUED), "billing run requested")],
        **values,
    )


def create_locked(run: BillingRun, expires_at: int) -> BillingRun:
    """Take the tenant's lock and write the run in one transaction: both or neither.
    RunLocked when another run holds the lock."""
    lock = RunLock(
        pk=lock_key(run.tenant_id),
        sk=META,
        tenant_id=run.tenant_id,
        id=run.id,
        run_id=run.id,
        ttl=expires_at,
        gsi2pk=LOCKS_INDEX,
        gsi2sk=_lock_sort_key(expires_at, run.tenant_id),
        created_at=run.created_at,
        updated_at=run.created_at,
    )
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(lock, condition=Entity.pk.does_not_exist())
            tx.save(run, condition=Entity.pk.does_not_exist())
    except TransactWriteError as exc:
        if not common.conditional_failed(exc):
            raise
        held = find_lock(run.tenant_id)
        if held is None:  # released between our write and this read: the caller may try again
            raise RunLocked("(just released)", 0) from None
        raise RunLocked(held.run_id, held.expires_at) from None
    return run


def find_lock(tenant_id: str) -> Lock | None:
    record = common.find(RunLock, lock_key(tenant_id))
    return _as_lock(record) if record is not None else None


def expired_locks(at: float | None = None, limit: int = 100) -> list[Lock]:
    """Locks past their expiry, oldest first (DynamoDB's TTL deletes them late, if ever in time)."""
    stamp = int(at or time.time())
    query = Entity.gsi2.query(LOCKS_INDEX, Entity.gsi2sk < _lock_sort_key(stamp, ""), limit=limit)
    return [_as_lock(r) for r in query if isinstance(r, RunLock)]


def release_lock(tenant_id: str, run_id: str) -> bool:
    """Delete the lock if it still names `run_id` (never another run's lock); False when it does not."""
    record = common.find(RunLock, lock_key(tenant_id))
    if record is None or record.run_id != run_id:
        return False
    try:
        record.delete(condition=RunLock.run_id == run_id)
    except DeleteError as exc:
        if common.conditional_failed(exc):
            return False  # released (and maybe retaken) meanwhile
        raise
    return True


def get_run(tenant_id: str, run_id: str) -> BillingRun:
    return common.get(BillingRun, BillingRun.key(tenant_id, run_id), entity="billing run")


def find_run(tenant_id: str, run_id: str) -> BillingRun | None:
    return common.find(BillingRun, BillingRun.key(tenant_id, run_id))


def list_runs(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[BillingRun], str | None]:
    """The tenant's runs, newest first (a cursor from another list is a 422)."""
    key = BillingRun.list_key(tenant_id)
    query = Entity.gsi1.query(
        key,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=common.decode_cursor(common.checked_cursor(cursor, gsi1pk=key)),
    )
    records, next_cursor = common.page(query, limit)
    return [r for r in records if isinstance(r, BillingRun)], next_cursor


def counts_of(run: BillingRun) -> dict[str, Any]:
    counts = run.counts.as_dict() if hasattr(run.counts, "as_dict") else run.counts
    return dict(counts or {})


def set_execution(run: BillingRun, execution_arn: str) -> None:
    run.update(actions=[BillingRun.execution_arn.set(execution_arn)])


def advance(run: BillingRun, stage: str, counts: dict[str, Any], cursor: str | None, actor: str) -> None:
    """Store progress; a new stage is a status change through RUN_MACHINE (with its history)."""
    actions: list[Action] = [
        BillingRun.counts.set(counts),
        BillingRun.cursor.set(cursor) if cursor else BillingRun.cursor.remove(),
    ]
    if run.status == stage:
        run.update(actions=[*actions, BillingRun.updated_at.set(now_iso())])
        return
    decided = transitions.change(
        BillingRun,
        "status",
        RUN_MACHINE,
        run.id,
        run.status,
        stage,
        actor=actor,
        extra=[*actions, BillingRun.stage.set(stage)],
    )
    _write(run, decided.actions, decided.condition)


def end(
    run: BillingRun,
    status: RunStatus,
    actor: str,
    reason: str,
    counts: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """Settle the run (succeeded, partially_failed or failed, through RUN_MACHINE) and release its
    lock, in one transaction when the lock still names it. False when the run had already ended
    (a retried finish, or the reconciler got there first): then only the lock is released."""
    if run.status in RUN_FINISHED:
        release_lock(run.tenant_id, run.id)
        return False
    finished = now_iso()
    extra: list[Action] = [
        BillingRun.stage.set("finished"),
        BillingRun.finished_at.set(finished),
        BillingRun.cursor.remove(),
    ]
    if counts is not None:
        extra.append(BillingRun.counts.set(counts))
    if error is not None:
        extra.append(BillingRun.errors.set([*list(run.errors or []), error]))  # type: ignore[list-item]
    decided = transitions.change(
        BillingRun,
        "status",
        RUN_MACHINE,
        run.id,
        run.status,
        str(status),
        actor=actor,
        reason=reason,
        extra=extra,
    )
    lock = common.find(RunLock, lock_key(run.tenant_id))
    try:
        with TransactWrite(connection=common.connection()) as tx:
            tx.update(run, actions=decided.actions, condition=decided.condition)
            if lock is not None and lock.run_id == run.id:
                tx.delete(lock, condition=RunLock.run_id == run.id)
    except TransactWriteError as exc:
        if not common.conditional_failed(exc):
            raise
        fresh = get_run(run.tenant_id, run.id)
        if fresh.status != run.status:
            # Moved on or ended meanwhile: decide again from what is stored (ended: lock only).
            return end(fresh, status, actor, reason, counts=counts, error=error)
        # Our lock went away meanwhile (a reconciler): end the run without it.
        _write(fresh, decided.actions, decided.condition)
        return True
    run.refresh()
    return True


def _write(record: Entity, actions: list[Action], condition: Any) -> None:
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if common.conditional_failed(exc):
            raise Conflict(
                f"{type(record).__name__} {record.id!r} changed meanwhile; read it again"
            ) from None
        raise


# ---------------------------------------------------------------------------- operations
def create_operation(
    tenant_id: str, operation_id: str, kind: str, request: dict[str, Any], actor: str
) -> Operation:
    OPERATION_MACHINE.begin(operation_id, OperationStatus.QUEUED, at=now(), actor=actor)
    operation = Operation(
        pk=Operation.key(tenant_id, operation_id),
        sk=META,
        tenant_id=tenant_id,
        id=operation_id,
        kind=kind,
        status=str(OperationStatus.QUEUED),
        request=request,
    )
    common.create(operation, actor, reason=f"{kind} requested")
    return operation


def get_operation(tenant_id: str, operation_id: str) -> Operation:
    return common.get(Operation, Operation.key(tenant_id, operation_id), entity="operation")


def set_operation(
    operation: Operation,
    status: OperationStatus,
    actor: str,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    extra: list[Action] = []
    if result is not None:
        extra.append(Operation.result.set(result))
    if error is not None:
        extra.append(Operation.error.set(error))
    transitions.apply(
        operation, "status", OPERATION_MACHINE, str(status), actor=actor, reason=reason, extra=extra
    )


def record_progress(operation: Operation, result: dict[str, Any]) -> None:
    """A running operation's partial result (its progress); not a status change. Refused when the
    operation is no longer running: if a person cancelled it, the partial result is kept on the
    cancelled record (how far it got) and OperationCancelled tells the worker to stop there."""
    try:
        operation.update(
            actions=[Operation.result.set(result), Operation.updated_at.set(now_iso())],
            condition=Operation.status == str(OperationStatus.RUNNING),
        )
    except UpdateError as exc:
        if not common.conditional_failed(exc):
            raise
        raise_if_cancelled(operation, result)


# ---------------------------------------------------------------------------- cancelling operations (wt-door)
def cancel_operation(tenant_id: str, operation_id: str, actor: str, reason: str | None) -> Operation:
    """A person stops a queued or running operation: cancelled, with who and why in its history,
    in one write conditional on the status read. Its worker stops at its next progress write
    (`record_progress`) and what it did so far stays done. An ended operation, or one cancelled
    already, is InvalidTransition (409 naming the machine and both statuses); a retry of the same
    request is answered by its Idempotency-Key."""
    for _ in range(3):  # a worker may move it queued -> running meanwhile: decide again
        operation = get_operation(tenant_id, operation_id)
        if operation.status == OperationStatus.CANCELLED:
            raise InvalidTransition(
                OPERATION_MACHINE.name, operation.status, OperationStatus.CANCELLED, "already cancelled"
            )
        try:
            transitions.apply(
                operation,
                "status",
                OPERATION_MACHINE,
                str(OperationStatus.CANCELLED),
                actor=actor,
                reason=reason or "cancelled",
            )
        except InvalidTransition:
            raise
        except Conflict:
            continue
        return get_operation(tenant_id, operation_id)
    raise Conflict(f"operation {operation_id!r} keeps changing; read it again")


def raise_if_cancelled(operation: Operation, result: dict[str, Any] | None) -> None:
    """A worker's write was refused because the operation is no longer running. When a person
    cancelled it, keep the worker's result on it (marked `cancelled`: how far it got; the status
    stays) and raise OperationCancelled; any other end is left as it is (a redelivered message)."""
    current = get_operation(operation.tenant_id, operation.id)
    if current.status != OperationStatus.CANCELLED:
        return
    if result is not None:
        try:
            current.update(
                actions=[Operation.result.set({**result, "cancelled": True})],
                condition=Operation.status == str(OperationStatus.CANCELLED),
            )
        except UpdateError as exc:
            if not common.conditional_failed(exc):
                raise
    raise OperationCancelled(operation.id)


def advance_operation(
    operation: Operation,
    status: OperationStatus,
    actor: str,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """`set_operation` for a worker: if a person cancelled the operation meanwhile (the write is
    refused, or the machine refuses cancelled -> `status`), its result is kept on the cancelled
    record and OperationCancelled raised, so the worker stops without calling it an error."""
    try:
        set_operation(operation, status, actor, result=result, error=error, reason=reason)
    except Conflict:  # InvalidTransition included: the status read or written is not running
        raise_if_cancelled(operation, result)
        raise


def is_finished(operation: Operation) -> bool:
    """Nothing left for a worker to do (succeeded, failed or cancelled)."""
    return OperationStatus(operation.status) in OPERATION_FINISHED


# ---------------------------------------------------------------------------- resuming operations (wt-life2)
@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a redelivered operation's worker starts again: its last recorded (partial) result,
    and when the operation was created (what it changed since then may be its own work)."""

    result: dict[str, Any]
    since: str


def resume_point(operation: Operation) -> ResumePoint:
    result = operation.result.as_dict() if operation.result is not None else {}
    return ResumePoint(result=result, since=str(operation.created_at or ""))
