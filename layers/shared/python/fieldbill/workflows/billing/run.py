"""Billing runs: start (one active run per tenant), the Step Functions steps, and the reconciler.

A start completes or leaves nothing behind: the run and the lock naming it are written in one
transaction; if the execution cannot start, the run ends failed and the lock goes in one
transaction. The lock expires after the state machine's total time-out (which runs no Catch), and
the reconciler (on a start that finds a lock, and on a schedule) releases a lock whose run is
gone, finished or out of time. The state machine passes only ids, flags and the wait counter;
counts, cursors and lists live on the run record, far below the 256 KB state limit.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import boto3

from fieldbill.domain import model as dm
from fieldbill.domain.model import RunStatus
from fieldbill.domain.states import RUN_FINISHED, RUN_MACHINE
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import billing as billing_store
from fieldbill.store import runs
from fieldbill.workflows.billing import destination
from fieldbill.workflows.billing import pages as billing

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import BillingRun
    from fieldbill.workflows.billing.requests import RunRequest

# The state machine's TimeoutSeconds (statemachines/billing_run.asl.json; a test pins the two).
RUN_TIMEOUT_SECONDS = 86_400
# A lock outlives its execution: past this, its run is out of time whatever the execution did.
LOCK_SECONDS = RUN_TIMEOUT_SECONDS + 600
# The progress check gives up this long before the execution's own time-out.
GIVE_UP_MARGIN_SECONDS = 3600
# A queued run with no execution this long after its start never got one (the start crashed).
START_GRACE_SECONDS = 300
RECONCILER = "reconciler"

__all__ = ["get_run", "reconcile", "reconcile_expired", "start_run"]


def scope_key(request: RunRequest) -> str:
    """Runs with the same scope key would bill the same work: they must not overlap."""
    basis = json.dumps(
        {
            "contacts": sorted(request.contact_ids) if request.contact_ids else None,
            "from": str(request.date_from),
            "to": str(request.date_to),
        },
        sort_keys=True,
    )
    return (
        "all"
        if request.contact_ids is None and not request.date_from and not request.date_to
        else (hashlib.sha256(basis.encode()).hexdigest()[:16])
    )


def start_run(tenant_id: str, actor: str, request: RunRequest, run_id: str | None = None) -> BillingRun:
    """Create the run and start its execution; Conflict (409) while another run of the tenant is active."""
    run_id = run_id or uuid.uuid4().hex
    settings = get_settings()
    counts = {
        "issue_date": (request.issue_date or date.today()).isoformat(),
        # Resolved once, so every invoice of the run goes to the same place.
        "destination": str(destination.resolve(tenant_id)),
    }
    run = runs.new_run(
        tenant_id,
        run_id,
        actor,
        scope_key=scope_key(request),
        contact_ids=request.contact_ids,
        date_from=request.date_from.isoformat() if request.date_from else None,
        date_to=request.date_to.isoformat() if request.date_to else None,
        grouping=str(request.grouping),
        sync=request.sync,
        counts=counts,
    )
    try:
        runs.create_locked(run, expires_at=int(time.time()) + LOCK_SECONDS)
    except runs.RunLocked:
        if not reconcile(tenant_id):
            raise
        runs.create_locked(run, expires_at=int(time.time()) + LOCK_SECONDS)  # a second RunLocked is a 409
    state = {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "poll_seconds": settings.billing_run_poll_seconds,
        "checks": 0,
        "max_checks": settings.billing_run_max_checks,
    }
    try:
        execution = boto3.client("stepfunctions").start_execution(
            stateMachineArn=settings.billing_run_state_machine_arn,
            name=run_id,  # one execution per run, even if the start is retried
            input=json.dumps(state),
        )
    except Exception as exc:
        # Undo the start: the run ends failed (saying why) and the lock goes, in one transaction.
        runs.end(run, RunStatus.FAILED, actor, "the execution could not start", error=_error("queued", exc))
        raise
    runs.set_execution(run, execution["executionArn"])
    return run


def cancel_run(tenant_id: str, run_id: str, actor: str, reason: str | None) -> BillingRun:
    """A person stops a run before it ends: cancelled (with who and why) and the lock released in
    one write, then its execution stopped. What the run made so far stays: compiled items stay
    pending, invoices stay (drafts can be deleted, queued ones still reach QuickBooks). A finished
    run is InvalidTransition (409)."""
    run = get_run(tenant_id, run_id)
    if run.status == RunStatus.CANCELLED:
        return run  # a retried cancel: done already
    RUN_MACHINE.check(run.id, RunStatus(run.status), RunStatus.CANCELLED)
    runs.end(run, RunStatus.CANCELLED, actor, reason or "cancelled")
    if run.execution_arn:
        try:
            boto3.client("stepfunctions").stop_execution(
                executionArn=run.execution_arn, error="Cancelled", cause=(reason or "cancelled")[:256]
            )
        except Exception as exc:  # the steps see the cancelled run and wind down by themselves
            logger.warning(
                "could not stop the execution of a cancelled run",
                extra={"tenant_id": tenant_id, "run_id": run_id, "error": type(exc).__name__},
            )
    return get_run(tenant_id, run_id)


def _error(stage: str | None, exc: BaseException | dict[str, Any] | str) -> dict[str, str]:
    if isinstance(exc, BaseException):
        name, cause = type(exc).__name__, str(exc)
    elif isinstance(exc, dict):
        name, cause = str(exc.get("Error")), str(exc.get("Cause"))
    else:
        name, cause = "Error", exc
    return {"stage": str(stage), "error": name, "cause": cause[:2000]}


def get_run(tenant_id: str, run_id: str) -> BillingRun:
    return runs.get_run(tenant_id, run_id)


# ---------------------------------------------------------------------------- reconciler
def reconcile(tenant_id: str, at: float | None = None) -> bool:
    """Release the tenant's lock if its run is gone, finished or out of time (ending that run
    failed, with the reason); True when the tenant is free to start a run."""
    lock = runs.find_lock(tenant_id)
    if lock is None:
        return True
    run = runs.find_run(tenant_id, lock.run_id)
    if run is None or run.status in RUN_FINISHED:
        runs.release_lock(tenant_id, lock.run_id)
        logger.warning("released a stale run lock", extra={"tenant_id": tenant_id, "run_id": lock.run_id})
        return True
    now = at or time.time()
    if lock.expired(now):
        reason = f"timed out: the run exceeded its total time of {RUN_TIMEOUT_SECONDS} seconds"
    elif (
        run.status == RunStatus.QUEUED
        and not run.execution_arn
        and _age(run.started_at, now) > START_GRACE_SECONDS
    ):
        reason = "the execution never started"
    else:
        return False
    runs.end(run, RunStatus.FAILED, RECONCILER, reason, error=_error(run.stage, reason))
    logger.warning(
        "ended a run out of time", extra={"tenant_id": tenant_id, "run_id": run.id, "reason": reason}
    )
    return True


def reconcile_expired(at: float | None = None) -> int:
    """The schedule's pass: end every run whose lock expired (its execution timed out)."""
    return sum(1 for lock in runs.expired_locks(at) if reconcile(lock.tenant_id, at))


def _age(stamp: str | None, now: float) -> float:
    if not stamp:
        return float("inf")
    return now - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------- steps
def _scope(run: BillingRun) -> billing.Scope:
    return billing.Scope(
        contact_ids=[str(c) for c in run.contact_ids] if run.contact_ids else None,
        date_from=run.date_from,
        date_to=run.date_to,
    )


def _actor(run: BillingRun) -> str:
    return f"run:{run.id}"


def _destination(counts: dict[str, Any]) -> dm.Destination:
    # Runs started before the destination was recorded went to QuickBooks.
    return dm.Destination(counts.get("destination") or dm.Destination.QUICKBOOKS)


def _state(event: dict[str, Any], **flags: Any) -> dict[str, Any]:
    settings = get_settings()
    return {
        "tenant_id": event["tenant_id"],
        "run_id": event["run_id"],
        "poll_seconds": event.get("poll_seconds", settings.billing_run_poll_seconds),
        "checks": int(event.get("checks", 0)),
        "max_checks": int(event.get("max_checks", settings.billing_run_max_checks)),
        **flags,
    }


def _tally(counts: dict[str, Any], **deltas: int) -> None:
    for name, delta in deltas.items():
        counts[name] = int(counts.get(name, 0)) + delta


def compile_step(event: dict[str, Any]) -> dict[str, Any]:
    run = get_run(event["tenant_id"], event["run_id"])
    if run.status in RUN_FINISHED:  # cancelled meanwhile: wind down to the (no-op) finish
        return _state(event, more=False)
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = runs.counts_of(run)
    cursor = run.cursor if run.stage == "compiling" else None
    result = billing.compile_page(run.tenant_id, _actor(run), _scope(run), cursor=cursor, run_id=run.id)
    _tally(
        counts,
        entries_billed=result.entries_billed,
        items_created=result.items_created,
        entries_skipped=result.entries_skipped,
    )
    more = result.cursor is not None
    runs.advance(run, "compiling", counts, result.cursor if more else None, _actor(run))
    return _state(event, more=more)


def generate_step(event: dict[str, Any]) -> dict[str, Any]:
    run = get_run(event["tenant_id"], event["run_id"])
    if run.status in RUN_FINISHED:  # cancelled meanwhile: wind down to the (no-op) finish
        return _state(event, more=False)
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = runs.counts_of(run)
    cursor = run.cursor if run.stage == "generating" else None
    issue = date.fromisoformat(counts.get("issue_date") or date.today().isoformat())
    result = billing.generate_page(
        run.tenant_id,
        _actor(run),
        run.id,
        dm.GroupingMode(run.grouping),
        _scope(run),
        issue,
        cursor=cursor,
        destination=_destination(counts),
    )
    _tally(
        counts,
        invoices_created=len(result.invoice_ids),
        items_invoiced=result.items_invoiced,
        generate_conflicts=result.conflicts,
    )
    more = result.cursor is not None
    runs.advance(run, "generating", counts, result.cursor if more else None, _actor(run))
    return _state(event, more=more)


def sync_step(event: dict[str, Any]) -> dict[str, Any]:
    """Queue one page of the run's not-yet-queued invoices for QuickBooks."""
    run = get_run(event["tenant_id"], event["run_id"])
    if run.status in RUN_FINISHED:  # cancelled meanwhile: wind down to the (no-op) finish
        return _state(event, more=False)
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = runs.counts_of(run)
    if not run.sync or _destination(counts) is not dm.Destination.QUICKBOOKS:
        runs.advance(run, "syncing", counts, None, _actor(run))
        return _state(event, more=False)
    # Deferred: queueing needs the pydantic messages; the other five run steps never load them.
    from fieldbill.workflows.qbo_sync import enqueue

    queued, more = enqueue.enqueue_not_synced(run.tenant_id, run.id, _actor(run))
    _tally(counts, invoices_queued=queued)
    runs.advance(run, "syncing", counts, None, _actor(run))
    return _state(event, more=more and queued > 0)  # a page with nothing to queue would come back the same


def progress_step(event: dict[str, Any]) -> dict[str, Any]:
    """Count the run's invoices by sync status; done when none waits for QuickBooks, `give_up`
    (the run ends failed, with `reason`) once it has checked `max_checks` times."""
    run = get_run(event["tenant_id"], event["run_id"])
    if run.status in RUN_FINISHED:  # cancelled meanwhile: straight to the (no-op) finish
        return _state(event, done=True, give_up=False)
    counts = runs.counts_of(run)
    by_status = count_invoices_by_sync_status(run.tenant_id, run.id)
    counts["sync"] = by_status
    to_quickbooks = _destination(counts) is dm.Destination.QUICKBOOKS
    waiting = by_status.get("pending", 0) + (by_status.get("not_synced", 0) if run.sync else 0)
    waiting = waiting if to_quickbooks else 0
    checks = int(event.get("checks", 0)) + 1
    settings = get_settings()
    poll = max(int(event.get("poll_seconds", settings.billing_run_poll_seconds)), 1)
    reconnect = waiting > 0 and destination.connection_status(run.tenant_id) == "needs_reconnect"
    if reconnect:
        counts["waiting_for"] = "quickbooks_reconnect"
        counts["progress"] = (
            f"{waiting} invoice(s) wait for QuickBooks: the company must reconnect (GET /quickbooks/connect)"
        )
        poll = max(poll, settings.billing_run_reconnect_poll_seconds)
    elif waiting:
        counts["waiting_for"] = "quickbooks"
        counts["progress"] = f"{waiting} invoice(s) wait for QuickBooks"
    else:
        counts.pop("waiting_for", None)
        counts["progress"] = "every invoice settled"
    limit = int(event.get("max_checks", settings.billing_run_max_checks))
    # Give up before the execution's own time-out, which would end it without the failure step.
    late = _age(run.started_at, time.time()) >= RUN_TIMEOUT_SECONDS - GIVE_UP_MARGIN_SECONDS
    give_up = waiting > 0 and (checks >= limit or late)
    reason = None
    if give_up:
        spent = "ran out of time" if late else f"gave up after {checks} progress checks"
        reason = f"{spent}: {counts['progress']}"
    runs.advance(run, "syncing", counts, None, _actor(run))
    state = _state(event, done=waiting == 0, give_up=give_up, checks=checks, poll_seconds=poll)
    return state | ({"reason": reason} if reason else {})


def count_invoices_by_sync_status(tenant_id: str, run_id: str) -> dict[str, int]:
    return billing_store.run_invoice_counts(tenant_id, run_id)


def finish_step(event: dict[str, Any]) -> dict[str, Any]:
    """Store the summary, settle the run's status, release the lock (also on failure)."""
    run = get_run(event["tenant_id"], event["run_id"])
    if run.status in RUN_FINISHED:  # cancelled (or ended by the reconciler): only the lock, if held
        runs.release_lock(run.tenant_id, run.id)
        return _state(event, status=str(run.status))
    counts = runs.counts_of(run)
    error = event.get("error")
    if error:
        status, reason = RunStatus.FAILED, "run failed"
        failure: dict[str, str] | None = _error(run.stage, error)
    else:
        by_status = count_invoices_by_sync_status(run.tenant_id, run.id)
        counts["sync"] = by_status
        status = RunStatus.PARTIALLY_FAILED if by_status.get("error") else RunStatus.SUCCEEDED
        reason, failure = "run finished", None
    counts["duration_seconds"] = _seconds_between(run.started_at, time.time())
    runs.end(run, status, _actor(run), reason, counts=counts, error=failure)
    return _state(event, status=str(status))


def _seconds_between(start: str | None, end: float) -> float:
    if not start:
        return 0.0
    return round(end - datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp(), 3)
