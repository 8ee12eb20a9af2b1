"""A billing run either completes or leaves nothing behind: no stranded lock, a bounded wait, and
local invoices for a tenant without QuickBooks (through the real state machine on the local stack)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from fieldbill.clock import now_iso
from fieldbill.domain.errors import InvalidTransition
from fieldbill.domain.model import RunStatus
from fieldbill.quickbooks import tokens
from fieldbill.settings import get_settings
from fieldbill.store import runs
from fieldbill.store.models import META, BillingRun, Entity, Invoice, Operation, RunLock
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.billing import run as billing_run
from fieldbill.workflows.billing.requests import RunRequest
from tests.conftest import ROOT, Client, connect_quickbooks
from tests.integration.seed import seed_work

ASL = ROOT / "statemachines" / "billing_run.asl.json"


def _lock(tenant_id: str) -> RunLock | None:
    try:
        record = Entity.get(RunLock.key(tenant_id, "tenant"), META)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, RunLock) else None


def _invoices(tenant_id: str) -> list[Invoice]:
    return [i for i in Entity.gsi1.query(Invoice.list_key(tenant_id)) if isinstance(i, Invoice)]


def _runs_succeed(api: Client) -> dict[str, Any]:
    started = api.ok("POST", "/billing-runs", json={"sync": False}, expect=202)
    return api.wait_run(started["id"], timeout=60)


# ---------------------------------------------------------------------------- the stranded lock
def test_contact_ids_of_100_kb_are_refused_and_the_next_run_starts(stack, client: Client):
    # Given the reproduction: 5 contact ids of 100 KB each (a run record over DynamoDB's 400 KB)
    huge = ["c" * 100_000 + str(n) for n in range(5)]
    # When a run is asked for them
    refused = client.post("/billing-runs", json={"contact_ids": huge, "sync": False})
    # Then the request is refused as bad input, in the shared error shape
    assert 400 <= refused.status_code < 500, refused.text[:500]
    assert set(refused.json()["error"]) >= {"code", "message", "fields"}
    # and the lock is free: the next run starts and finishes
    assert _lock(client.tenant_id) is None
    assert _runs_succeed(client)["status"] == "succeeded"


def _failing(monkeypatch: pytest.MonkeyPatch, service: str, method: str) -> None:
    """boto3 clients of `service` whose `method` fails as the service would when unavailable."""
    real = boto3.client

    def client(name: str, *args: Any, **kwargs: Any) -> Any:
        made = real(name, *args, **kwargs)
        if name == service:

            def fail(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, method)

            setattr(made, method, fail)
        return made

    monkeypatch.setattr(boto3, "client", client)


def _failing_start_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing(monkeypatch, "stepfunctions", "start_execution")


def test_a_run_whose_start_fails_midway_leaves_no_lock(stack, client: Client, monkeypatch):
    # Given Step Functions refuses to start the execution (after the lock and run were written)
    _failing_start_execution(monkeypatch)
    # When a run is started
    with pytest.raises(Exception, match="injected"):
        billing_run.start_run(client.tenant_id, "user:test", RunRequest(sync=False))
    monkeypatch.undo()
    # Then no lock is left, and the run that could not start says why
    assert _lock(client.tenant_id) is None
    listed = client.ok("GET", "/billing-runs")["items"]
    assert [(r["status"], r["stage"]) for r in listed] == [("failed", "finished")]
    assert "injected" in listed[0]["errors"][0]["cause"]
    # and the next run starts and finishes
    assert _runs_succeed(client)["status"] == "succeeded"


def test_an_operation_whose_message_cannot_be_queued_ends_failed_not_queued_for_ever(
    stack, tenant_id, monkeypatch
):
    # Given the jobs queue refuses the message (after the operation was written)
    _failing(monkeypatch, "sqs", "send_message")
    with pytest.raises(Exception, match="injected"):
        jobs.submit("compile", tenant_id, "user:test", jobs.CompileRequest())
    monkeypatch.undo()
    # Then the operation that could not start is failed, saying why (nobody polls it for ever)
    (operation,) = [o for o in Entity.scan(Operation.tenant_id == tenant_id) if isinstance(o, Operation)]
    assert operation.status == "failed"
    assert "injected" in operation.error.as_dict()["message"]


def test_a_lock_whose_run_is_gone_is_released_by_the_next_start(stack, client: Client):
    # Given a lock left by an older release with no run behind it (GET answers 404 for it)
    stamp = now_iso()
    RunLock(
        pk=RunLock.key(client.tenant_id, "tenant"),
        sk=META,
        tenant_id=client.tenant_id,
        id="ghost",
        run_id="ghost",
        created_at=stamp,
    ).save()
    assert client.get("/billing-runs/ghost").status_code == 404
    # When the next run is started / Then it starts (the reconciler released the stale lock)
    assert _runs_succeed(client)["status"] == "succeeded"


def test_a_lock_past_its_expiry_ends_its_run_failed_and_frees_the_tenant(stack, client: Client):
    # Given a run that never finished (its execution timed out: no Catch runs) and an expired lock
    run = runs.new_run(client.tenant_id, "stuck", "user:test", scope_key="all", counts={})
    runs.create_locked(run, expires_at=int(time.time()) - 1)
    # When the next run is started
    assert _runs_succeed(client)["status"] == "succeeded"
    # Then the stuck run ended failed, with a reason
    stuck = client.ok("GET", "/billing-runs/stuck")
    assert (stuck["status"], stuck["stage"]) == ("failed", "finished")
    assert "time" in stuck["errors"][-1]["cause"]


def test_the_scheduled_reconciler_ends_an_expired_run(stack, client: Client):
    run = runs.new_run(client.tenant_id, "late", "user:test", scope_key="all", counts={})
    runs.create_locked(run, expires_at=int(time.time()) - 1)
    # When the schedule fires (the handler of template.yaml's ExpiredRuns schedule)
    assert stack.aws.fire_schedule("ExpiredRuns")["reconciled"] >= 1
    # Then the run ended failed and its lock is gone
    assert _lock(client.tenant_id) is None
    assert client.ok("GET", "/billing-runs/late")["status"] == "failed"


# ---------------------------------------------------------------------------- the bounded wait
@pytest.fixture
def reconnect(stack, client: Client):
    """A tenant whose company must reconnect: its sync messages stay parked on the queue until the
    person reconnects, which the test does at the end, so other tests' drains see only their work."""
    realm = connect_quickbooks(stack, client)
    tokens.mark_needs_reconnect(client.tenant_id, "test: refresh token refused")
    yield client
    # The reconnect (the OAuth callback resumes the parked messages), then the queue settles.
    url = client.ok("GET", "/quickbooks/connect")["authorization_url"]
    consent = requests.get(url + f"&realm={realm}", allow_redirects=False, timeout=30)
    # The browser brings back the connect cookie, as connect_quickbooks does.
    callback = requests.get(consent.headers["Location"], cookies=client.session.cookies, timeout=30)
    assert callback.status_code == 200, callback.text
    stack.aws.drain(timeout=90)


@pytest.fixture
def few_checks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BILLING_RUN_MAX_CHECKS", "3")
    monkeypatch.setenv("BILLING_RUN_RECONNECT_POLL_SECONDS", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_run_waiting_past_its_bound_ends_failed_with_the_lock_released(
    stack, reconnect: Client, few_checks
):
    # Given a company that must reconnect, and work to bill
    client = reconnect
    seed_work(client.tenant_id, contacts=1, entries_per_contact=2)
    # When a run syncs to it (its invoices wait, parked, for the reconnect)
    started = client.ok("POST", "/billing-runs", json={}, expect=202)
    run = client.wait_run(started["id"], timeout=60)
    # Then the run ends failed, saying it waited for the reconnect, and the lock is free
    assert run["status"] == "failed", run
    assert "reconnect" in run["counts"]["progress"]
    assert "reconnect" in run["errors"][-1]["cause"]
    assert _lock(client.tenant_id) is None


def test_a_waiting_run_says_the_company_must_reconnect(stack, reconnect: Client):
    client = reconnect
    seed_work(client.tenant_id, contacts=1, entries_per_contact=1)
    started = client.ok("POST", "/billing-runs", json={}, expect=202)

    def says_so() -> dict[str, Any] | None:
        seen = client.ok("GET", f"/billing-runs/{started['id']}")
        return seen if "reconnect" in str(seen["counts"].get("progress", "")) else None

    from tests.conftest import wait_for

    seen = wait_for(says_so, timeout=30, what="progress naming the reconnect")
    assert seen["counts"]["waiting_for"] == "quickbooks_reconnect"


def test_the_progress_check_gives_up_before_the_executions_own_time_out(stack, tenant_id, monkeypatch):
    # Given a run started almost a whole time-out ago, with an invoice still waiting for QuickBooks
    long_ago = time.time() - billing_run.RUN_TIMEOUT_SECONDS + billing_run.GIVE_UP_MARGIN_SECONDS - 1
    started = datetime.fromtimestamp(long_ago, UTC).isoformat().replace("+00:00", "Z")
    run = runs.new_run(tenant_id, "old", "user:test", scope_key="all", counts={"destination": "quickbooks"})
    run.started_at = started
    runs.create_locked(run, expires_at=int(time.time()) + 600)
    runs.advance(run, "compiling", {"destination": "quickbooks"}, None, "run:old")
    runs.advance(run, "generating", {"destination": "quickbooks"}, None, "run:old")
    runs.advance(run, "syncing", {"destination": "quickbooks"}, None, "run:old")
    monkeypatch.setattr(billing_run, "count_invoices_by_sync_status", lambda *_: {"pending": 1})
    # When its progress is checked (the first check: far from max_checks)
    state = billing_run.progress_step({"tenant_id": tenant_id, "run_id": "old", "checks": 0})
    # Then it gives up, saying it ran out of time (the failure step then ends it and frees the lock)
    assert (state["done"], state["give_up"]) == (False, True)
    assert state["reason"].startswith("ran out of time")


# ---------------------------------------------------------------------------- destination
def test_a_tenant_without_quickbooks_gets_local_invoices_and_a_finished_run(stack, client: Client):
    # Given a tenant that never connected QuickBooks, with work to bill
    seed_work(client.tenant_id, contacts=2, entries_per_contact=2)
    # When a billing run asks for sync
    started = client.ok("POST", "/billing-runs", json={"sync": True}, expect=202)
    run = client.wait_run(started["id"], timeout=60)
    # Then the run succeeded with local invoices, none waiting for QuickBooks
    assert run["status"] == "succeeded", run
    invoices = _invoices(client.tenant_id)
    assert len(invoices) == 2
    assert {(i.destination, i.sync_status) for i in invoices} == {("local", "not_synced")}


# ---------------------------------------------------------------------------- transitions
def test_an_illegal_item_transition_over_the_api_answers_409_and_writes_nothing(stack, client: Client):
    # Given an invoiced item (after a run)
    seed_work(client.tenant_id, contacts=1, entries_per_contact=1, mileage_share=0.0)
    assert _runs_succeed(client)["status"] == "succeeded"
    (item,) = client.ok("GET", "/billable-items?status=invoiced")["items"]
    before = client.ok("GET", f"/history/billable-item/{item['id']}")
    # When it is marked unbillable (only a pending item may be)
    answer = client.patch(f"/billable-items/{item['id']}", json={"status": "unbillable"})
    # Then 409 names the current and requested status, and nothing was written
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["current"], error["requested"]) == (
        "invalid_transition",
        "invoiced",
        "unbillable",
    )
    assert client.ok("GET", f"/billable-items/{item['id']}")["status"] == "invoiced"
    assert client.ok("GET", f"/history/billable-item/{item['id']}") == before


def test_an_illegal_run_transition_raises_and_writes_nothing(stack, tenant_id):
    run = runs.new_run(tenant_id, uuid.uuid4().hex, "user:test", scope_key="all", counts={})
    runs.create_locked(run, expires_at=int(time.time()) + 60)
    runs.advance(run, "compiling", {}, None, "run:test")
    before = runs.get_run(tenant_id, run.id)
    with pytest.raises(InvalidTransition) as caught:
        runs.advance(before, "succeeded", {}, None, "run:test")
    assert (caught.value.from_status, caught.value.to_status) == ("compiling", "succeeded")
    after = runs.get_run(tenant_id, run.id)
    assert after.status == "compiling" and len(after.history) == len(before.history)


# ---------------------------------------------------------------------------- the state machine
def test_the_state_machine_has_a_total_timeout_the_lock_outlives():
    definition = json.loads(ASL.read_text())
    assert 0 < definition["TimeoutSeconds"] <= billing_run.RUN_TIMEOUT_SECONDS
    assert definition["TimeoutSeconds"] < billing_run.LOCK_SECONDS


def test_every_task_catches_into_the_failure_step_and_retries_only_names_that_exist():
    from fieldbill.domain import errors

    states = json.loads(ASL.read_text())["States"]
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        for retry in state.get("Retry", []):
            for error in retry["ErrorEquals"]:
                # AWS's own names, or an exception class the steps really raise
                assert error.split(".")[0] in ("Lambda", "States") or hasattr(errors, error), error
        if name != "RecordFailure":
            assert [c["Next"] for c in state["Catch"]] == ["RecordFailure"], name


def test_billing_run_record_stays_small_for_the_largest_request():
    request = RunRequest(contact_ids=[f"{n:064d}" for n in range(500)])
    record = runs.new_run("t", "r", "user:test", scope_key="x", contact_ids=request.contact_ids, counts={})
    assert len(json.dumps(record.serialize())) < 100_000
    assert isinstance(record, BillingRun)


def test_runs_are_listed_newest_first_from_the_store(stack, tenant_id):
    for run_id in ("older", "newer"):
        run = runs.new_run(tenant_id, run_id, "user:test", scope_key="all", counts={})
        runs.create_locked(run, expires_at=int(time.time()) + 60)
        runs.end(run, RunStatus.FAILED, "user:test", "test")
        time.sleep(0.002)  # distinct millisecond stamps: the list sorts by start time
    first, cursor = runs.list_runs(tenant_id, 1, None)
    second, _ = runs.list_runs(tenant_id, 1, cursor)
    assert [r.id for r in first + second] == ["newer", "older"]


# ---------------------------------------------------------------------------- cancel
def test_a_person_cancels_a_waiting_run_the_lock_goes_and_its_invoices_stay(stack, reconnect: Client):
    # Given a run whose invoices wait for a company that must reconnect
    client = reconnect
    seed_work(client.tenant_id, contacts=2, entries_per_contact=1)
    started = client.ok("POST", "/billing-runs", json={}, expect=202)
    from tests.conftest import wait_for

    wait_for(
        lambda: client.ok("GET", f"/billing-runs/{started['id']}")["status"] == "syncing",
        timeout=30,
        what="the run waiting in syncing",
    )
    # When the person cancels it
    cancelled = client.ok("POST", f"/billing-runs/{started['id']}/cancel", json={"reason": "wrong month"})
    # Then it is cancelled at once, saying by whom and why; the lock is free for the next run
    assert cancelled["status"] == "cancelled", cancelled
    assert _lock(client.tenant_id) is None
    last = client.ok("GET", f"/history/billing-run/{started['id']}")["history"][-1]
    assert (last["to"], last["reason"]) == ("cancelled", "wrong month"), last
    # and the invoices it made stay, waiting for QuickBooks (a person deletes drafts they do not want)
    assert len(_invoices(client.tenant_id)) == 2
    # and its execution ends without touching the run again; a retried cancel changes nothing
    arn = runs.get_run(client.tenant_id, started["id"]).execution_arn
    sfn = boto3.client("stepfunctions")
    wait_for(
        lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
        timeout=60,
        what="the cancelled run's execution to end",
    )
    again = client.ok("POST", f"/billing-runs/{started['id']}/cancel", json={})
    assert again == client.ok("GET", f"/billing-runs/{started['id']}")
    assert (again["status"], again["updated_at"]) == ("cancelled", cancelled["updated_at"])


def test_a_finished_run_cannot_be_cancelled_409_naming_both_statuses_nothing_written(stack, client: Client):
    # Given a run that finished (no QuickBooks: local invoices)
    seed_work(client.tenant_id, contacts=1, entries_per_contact=1)
    started = client.ok("POST", "/billing-runs", json={}, expect=202)
    run = client.wait_run(started["id"], timeout=60)
    assert run["status"] == "succeeded", run
    before = client.ok("GET", f"/history/billing-run/{started['id']}")["history"]
    # When a person tries to cancel it
    refused = client.post(f"/billing-runs/{started['id']}/cancel", json={})
    # Then 409 names the machine, the current and the requested status, and nothing changed
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["machine"], error["current"], error["requested"]) == (
        "invalid_transition",
        "billing_run",
        "succeeded",
        "cancelled",
    )
    assert client.ok("GET", f"/billing-runs/{started['id']}")["status"] == "succeeded"
    assert client.ok("GET", f"/history/billing-run/{started['id']}")["history"] == before
    # and an unknown run is 404
    assert client.post("/billing-runs/ghost/cancel", json={}).status_code == 404
