"""Billing runs: start (one active run per tenant and scope), and the Step Functions steps.

The state machine passes only {tenant_id, run_id, poll_seconds, more, done}; counts, cursors and
lists live on the run record, so a 10,000-invoice run stays far below the 256 KB state limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from datetime import date, datetime
from typing import Any

import boto3
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.expressions.update import Action

from fieldbill.clock import now_iso
from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict
from fieldbill.observability import logger
from fieldbill.settings import get_settings
from fieldbill.store import common
from fieldbill.store.models import META, BillingRun, Entity, Invoice, RunLock
from fieldbill.workflows import billing, sync_queue


class RunRequest(BaseModel):
    """What a web client asks for when it starts a billing run."""

    model_config = ConfigDict(extra="forbid")

    grouping: dm.GroupingMode = dm.GroupingMode.PER_CONTACT
    contact_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    date_from: date | None = None
    date_to: date | None = None
    sync: bool = True
    issue_date: date | None = None

    @field_validator("date_to")
    @classmethod
    def _range(cls, value: date | None, info: Any) -> date | None:
        start = info.data.get("date_from")
        if value and start and value < start:
            raise ValueError("date_to must not be before date_from")
        return value


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


def _lock_key(tenant_id: str) -> str:
    # One active run per tenant, whatever its scope: two runs over overlapping work could still not
    # bill anything twice, but they would split one customer's month across two invoices.
    return RunLock.key(tenant_id, "tenant")


def start_run(tenant_id: str, actor: str, request: RunRequest, run_id: str | None = None) -> BillingRun:
    """Create the run and start its execution; Conflict (409) while another run of the tenant is active."""
    run_id = run_id or uuid.uuid4().hex
    stamp = now_iso()
    lock = RunLock(
        pk=_lock_key(tenant_id),
        sk=META,
        tenant_id=tenant_id,
        id=run_id,
        run_id=run_id,
        created_at=stamp,
        updated_at=stamp,
    )
    try:
        lock.save(condition=Entity.pk.does_not_exist())
    except PutError as exc:
        if not common.conditional_failed(exc):
            raise
        active = common.find(RunLock, lock.pk)
        raise Conflict(
            f"billing run {active.run_id if active else '?'} is still active for this tenant"
        ) from None
    run = BillingRun(
        pk=BillingRun.key(tenant_id, run_id),
        sk=META,
        tenant_id=tenant_id,
        id=run_id,
        gsi1pk=BillingRun.list_key(tenant_id),
        gsi1sk=f"{stamp}#{run_id}",
        status="queued",
        stage="queued",
        scope_key=scope_key(request),
        contact_ids=request.contact_ids,
        date_from=request.date_from.isoformat() if request.date_from else None,
        date_to=request.date_to.isoformat() if request.date_to else None,
        grouping=str(request.grouping),
        sync=request.sync,
        started_by=actor,
        started_at=stamp,
        counts={"issue_date": (request.issue_date or date.today()).isoformat()},
    )
    common.create(run, actor, reason="billing run requested")
    execution = boto3.client("stepfunctions").start_execution(
        stateMachineArn=get_settings().billing_run_state_machine_arn,
        name=run_id,  # one execution per run, even if the start is retried
        input=json.dumps({"tenant_id": tenant_id, "run_id": run_id, "poll_seconds": _poll_seconds()}),
    )
    run.update(actions=[BillingRun.execution_arn.set(execution["executionArn"])])
    return run


def _poll_seconds() -> int:
    return int(os.environ.get("BILLING_RUN_POLL_SECONDS", "10"))


def get_run(tenant_id: str, run_id: str) -> BillingRun:
    return common.get(BillingRun, BillingRun.key(tenant_id, run_id), entity="billing run")


def _scope(run: BillingRun) -> billing.Scope:
    return billing.Scope(
        contact_ids=[str(c) for c in run.contact_ids] if run.contact_ids else None,
        date_from=run.date_from,
        date_to=run.date_to,
    )


def _actor(run: BillingRun) -> str:
    return f"run:{run.id}"


def _advance(run: BillingRun, stage: str, counts: dict[str, Any], cursor: str | None) -> None:
    """Store progress; a stage change is recorded in the run's history."""
    actions: list[Action] = [
        BillingRun.counts.set(counts),
        BillingRun.cursor.set(cursor) if cursor else BillingRun.cursor.remove(),
        BillingRun.updated_at.set(now_iso()),
    ]
    if run.stage != stage:
        actions += [
            BillingRun.stage.set(stage),
            BillingRun.status.set(stage),
            BillingRun.history.set(
                BillingRun.history.append([common.history_entry(_actor(run), run.stage, stage, None)])
            ),
        ]
    run.update(actions=actions)


def _counts(run: BillingRun) -> dict[str, Any]:
    return dict(run.counts.as_dict() if hasattr(run.counts, "as_dict") else run.counts or {})


def _state(event: dict[str, Any], **flags: Any) -> dict[str, Any]:
    return {
        "tenant_id": event["tenant_id"],
        "run_id": event["run_id"],
        "poll_seconds": event.get("poll_seconds", _poll_seconds()),
        **flags,
    }


def _tally(counts: dict[str, Any], **deltas: int) -> None:
    for name, delta in deltas.items():
        counts[name] = int(counts.get(name, 0)) + delta


# ---------------------------------------------------------------------------- steps
def compile_step(event: dict[str, Any]) -> dict[str, Any]:
    run = get_run(event["tenant_id"], event["run_id"])
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = _counts(run)
    cursor = run.cursor if run.stage == "compiling" else None
    result = billing.compile_page(run.tenant_id, _actor(run), _scope(run), cursor=cursor, run_id=run.id)
    _tally(
        counts,
        entries_billed=result.entries_billed,
        items_created=result.items_created,
        entries_skipped=result.entries_skipped,
    )
    more = result.cursor is not None
    _advance(run, "compiling", counts, result.cursor if more else None)
    return _state(event, more=more)


def generate_step(event: dict[str, Any]) -> dict[str, Any]:
    run = get_run(event["tenant_id"], event["run_id"])
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = _counts(run)
    cursor = run.cursor if run.stage == "generating" else None
    issue = date.fromisoformat(counts.get("issue_date") or date.today().isoformat())
    result = billing.generate_page(
        run.tenant_id, _actor(run), run.id, dm.GroupingMode(run.grouping), _scope(run), issue, cursor=cursor
    )
    _tally(
        counts,
        invoices_created=len(result.invoice_ids),
        items_invoiced=result.items_invoiced,
        generate_conflicts=result.conflicts,
    )
    more = result.cursor is not None
    _advance(run, "generating", counts, result.cursor if more else None)
    return _state(event, more=more)


def sync_step(event: dict[str, Any]) -> dict[str, Any]:
    """Queue one page of the run's not-yet-queued invoices for QuickBooks."""
    run = get_run(event["tenant_id"], event["run_id"])
    logger.append_keys(tenant_id=run.tenant_id, run_id=run.id)
    counts = _counts(run)
    if not run.sync:
        _advance(run, "syncing", counts, None)
        return _state(event, more=False)
    queued, more = sync_queue.enqueue_not_synced(run.tenant_id, run.id, _actor(run))
    _tally(counts, invoices_queued=queued)
    _advance(run, "syncing", counts, None)
    return _state(event, more=more)


def progress_step(event: dict[str, Any]) -> dict[str, Any]:
    """Count the run's invoices by sync status; done when none is waiting for QuickBooks."""
    run = get_run(event["tenant_id"], event["run_id"])
    counts = _counts(run)
    by_status = count_invoices_by_sync_status(run.tenant_id, run.id)
    counts["sync"] = by_status
    waiting = by_status.get("pending", 0) + (by_status.get("not_synced", 0) if run.sync else 0)
    _advance(run, "syncing", counts, None)
    # Poll again roughly when QuickBooks could have taken what is waiting (bounded to keep history short).
    poll = max(int(event.get("poll_seconds", _poll_seconds())), 1)
    return _state(event, done=waiting == 0, poll_seconds=poll)


def count_invoices_by_sync_status(tenant_id: str, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in ("not_synced", "pending", "synced", "error"):
        counts[status] = Entity.gsi2.count(
            Invoice.run_key(tenant_id, run_id), Entity.gsi2sk.startswith(f"{status}#")
        )
    return counts


def finish_step(event: dict[str, Any]) -> dict[str, Any]:
    """Store the summary, settle the run's status, release the lock (also on failure)."""
    run = get_run(event["tenant_id"], event["run_id"])
    counts = _counts(run)
    error = event.get("error")
    errors: list[Any]
    if error:
        status = "failed"
        cause = error.get("Cause") if isinstance(error, dict) else str(error)
        errors = [
            *list(run.errors or []),
            {"stage": run.stage, "error": str((error or {}).get("Error")), "cause": str(cause)[:2000]},
        ]
    else:
        by_status = count_invoices_by_sync_status(run.tenant_id, run.id)
        counts["sync"] = by_status
        status = "partially_failed" if by_status.get("error") else "succeeded"
        errors = list(run.errors or [])
    finished = now_iso()
    counts["duration_seconds"] = _seconds_between(run.started_at, finished)
    run.update(
        actions=[
            BillingRun.status.set(status),
            BillingRun.stage.set("finished"),
            BillingRun.counts.set(counts),
            BillingRun.errors.set(errors),
            BillingRun.finished_at.set(finished),
            BillingRun.cursor.remove(),
            BillingRun.history.set(
                BillingRun.history.append(
                    [common.history_entry(_actor(run), run.status, status, "run finished")]
                )
            ),
        ]
    )
    _release_lock(run)
    return _state(event, status=status)


def _release_lock(run: BillingRun) -> None:
    lock = common.find(RunLock, _lock_key(run.tenant_id))
    if lock is not None and lock.run_id == run.id:
        with contextlib.suppress(DeleteError):  # released by a retry already
            lock.delete(condition=RunLock.run_id == run.id)


def _seconds_between(start: str | None, end: str) -> float:
    if not start:
        return 0.0
    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return round((b - a).total_seconds(), 3)
