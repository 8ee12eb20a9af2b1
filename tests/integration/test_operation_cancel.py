"""Cancelling an operation (wt-door): the store writes the cancel through OPERATION_MACHINE, and a
worker stops at its next write (its progress write is conditional on running), keeping how far it
got on the cancelled record. Deterministic: the cancel is made from inside the worker's own
progress callback, the point where a cancel over the API is seen."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fieldbill.domain.errors import InvalidTransition, NotFound, OperationCancelled
from fieldbill.domain.states import OperationStatus
from fieldbill.store import runs
from fieldbill.workflows.billing import jobs, pages
from fieldbill.workflows.invoices import bulk
from tests.integration.seed import entries_of, seed_work


def _operation(tenant_id: str, ids: list[str]) -> Any:
    request = {"action": "mark_sent", "invoice_ids": ids}
    return runs.create_operation(tenant_id, uuid.uuid4().hex, "invoices_bulk", request, "alice")


def _record(tenant_id: str, operation_id: str) -> SQSRecord:
    body = {"kind": "invoices_bulk", "tenant_id": tenant_id, "operation_id": operation_id, "actor": "alice"}
    return SQSRecord({"messageId": uuid.uuid4().hex, "body": json.dumps(body), "attributes": {}})


def test_a_worker_stops_at_its_next_progress_write_and_keeps_how_far_it_got(stack, tenant_id):
    # Given a running bulk operation over 60 invoices (unknown ones: each refused on its own)
    ids = [f"inv-{n:03d}" for n in range(60)]
    operation = _operation(tenant_id, ids)
    runs.set_operation(operation, OperationStatus.RUNNING, "worker")
    seen: list[int] = []

    def progress(partial: dict[str, Any]) -> None:
        seen.append(partial["processed"])
        if len(seen) == 1:  # a person cancels while the first page is being recorded
            runs.cancel_operation(tenant_id, operation.id, "bob", "wrong selection")
        runs.record_progress(operation, partial)

    # When the worker goes on / Then it stops at that write, not at the end of the selection
    with pytest.raises(OperationCancelled):
        bulk.run(tenant_id, "worker", bulk.BulkRequest(action="mark_sent", invoice_ids=ids), progress)
    assert seen == [bulk.PROGRESS_EVERY]
    stored = runs.get_operation(tenant_id, operation.id)
    assert stored.status == "cancelled"
    result = stored.result.as_dict()
    assert (result["cancelled"], result["processed"], result["total"]) == (True, 25, 60)
    # and who cancelled it, and why, is its last history entry
    last = stored.history[-1]
    assert (last.actor, last.from_state, last.to_state, last.reason) == (
        "bob",
        "running",
        "cancelled",
        "wrong selection",
    )


def test_a_cancel_before_the_worker_starts_leaves_nothing_for_it_to_do(stack, tenant_id):
    operation = _operation(tenant_id, ["inv-1"])
    runs.cancel_operation(tenant_id, operation.id, "bob", None)
    before = runs.get_operation(tenant_id, operation.id)
    # When its message is delivered
    jobs.handle_record(_record(tenant_id, operation.id))
    # Then it is still cancelled, with no result and no more history
    after = runs.get_operation(tenant_id, operation.id)
    assert (after.status, after.result, len(after.history)) == ("cancelled", None, len(before.history))
    assert before.history[-1].reason == "cancelled"  # no reason given: the history says cancelled


def test_a_worker_finishing_after_the_cancel_keeps_its_result_on_the_cancelled_record(stack, tenant_id):
    # Given the worker read the operation running, then a person cancelled it
    operation = _operation(tenant_id, ["inv-1"])
    runs.set_operation(operation, OperationStatus.RUNNING, "worker")
    runs.cancel_operation(tenant_id, operation.id, "bob", "stop")
    before = runs.get_operation(tenant_id, operation.id)
    # When the worker records its end / Then it is told it was cancelled, not succeeded
    with pytest.raises(OperationCancelled):
        runs.advance_operation(operation, OperationStatus.SUCCEEDED, "worker", result={"processed": 1})
    after = runs.get_operation(tenant_id, operation.id)
    assert after.status == "cancelled" and len(after.history) == len(before.history)
    assert after.result.as_dict() == {"processed": 1, "cancelled": True}


def test_an_ended_or_cancelled_operation_is_not_cancelled_again(stack, tenant_id):
    done = _operation(tenant_id, ["inv-1"])
    runs.set_operation(done, OperationStatus.RUNNING, "worker")
    runs.set_operation(done, OperationStatus.SUCCEEDED, "worker", result={"processed": 1})
    with pytest.raises(InvalidTransition) as refused:
        runs.cancel_operation(tenant_id, done.id, "bob", None)
    assert (refused.value.machine, refused.value.from_status, refused.value.to_status) == (
        "operation",
        "succeeded",
        "cancelled",
    )
    assert runs.get_operation(tenant_id, done.id).status == "succeeded"
    cancelled = _operation(tenant_id, ["inv-1"])
    runs.cancel_operation(tenant_id, cancelled.id, "bob", None)
    with pytest.raises(InvalidTransition) as again:
        runs.cancel_operation(tenant_id, cancelled.id, "bob", None)
    assert (again.value.from_status, again.value.to_status) == ("cancelled", "cancelled")
    with pytest.raises(NotFound):
        runs.cancel_operation(tenant_id, "no-such-operation", "bob", None)


def test_a_cancelled_compile_stops_between_pages_and_its_pages_stay_billed(stack, tenant_id):
    # Given 12 unbilled entries, compiled 5 a page by a running compile operation
    seeded = seed_work(tenant_id, contacts=4, entries_per_contact=3)
    operation = runs.create_operation(tenant_id, uuid.uuid4().hex, "compile", {}, "alice")
    runs.set_operation(operation, OperationStatus.RUNNING, "worker")

    def progress(partial: dict[str, Any]) -> None:
        runs.cancel_operation(tenant_id, operation.id, "bob", "too early")
        runs.record_progress(operation, partial)

    # When a person cancels it after its first page / Then it stops there
    with pytest.raises(OperationCancelled):
        pages.compile_all(tenant_id, "worker", pages.Scope(), limit=5, progress=progress)
    billed = [e for e in entries_of(tenant_id, seeded) if e.billed]
    assert len(billed) == 5  # the first page, whole; the other 7 wait for the next compile
    result = runs.get_operation(tenant_id, operation.id).result.as_dict()
    assert (result["entries_billed"], result["cancelled"]) == (5, True)
