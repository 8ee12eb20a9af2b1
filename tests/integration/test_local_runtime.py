"""Pins the one patch of moto (Lambda invoke -> our handlers) and the SQS event-source poller
(batches, redelivery, concurrent invocations per mapping).

If a moto upgrade changes LambdaSimpleBackend.invoke or Step Functions' error matching, these
fail loudly instead of the billing run silently echoing payloads.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3

from local.sqs_poller import Mapping, SqsPoller
from local.template import ACCOUNT, REGION
from tests.conftest import wait_for


def test_state_machine_task_runs_the_real_handler_and_catch_sees_its_error_type(stack):
    # Given the real billing-run state machine and a run id that does not exist
    sfn = boto3.client("stepfunctions")
    arn = stack.aws.state_machines["BillingRunStateMachine"]
    tenant, run_id = f"t-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # When it executes
    execution = sfn.start_execution(
        stateMachineArn=arn,
        name=run_id,
        input=json.dumps({"tenant_id": tenant, "run_id": run_id, "poll_seconds": 1}),
    )
    result = stack.aws.wait_execution(execution["executionArn"])
    # Then our compile handler ran and raised NotFound, which Catch routed to RecordFailure (also
    # ours, which raised NotFound too) and the execution failed with that error type
    assert result["status"] == "FAILED"
    assert result.get("error") in ("NotFound", "BillingRunFailed")
    assert stack.aws.registry.invocations.get("RunCompileFunction", 0) >= 1
    assert stack.aws.registry.invocations.get("RunFinishFunction", 0) >= 1


def test_sqs_mapping_delivers_batches_and_redelivers_reported_failures(stack):
    # Given a message the jobs consumer cannot parse (a poison message)
    sqs = boto3.client("sqs")
    url = stack.aws.environment["JOBS_QUEUE_URL"]
    dlq = url.replace("JobsQueue", "JobsDLQ")
    before = stack.aws.registry.invocations.get("JobsFunction", 0)
    sqs.change_message_visibility  # noqa: B018 - the client supports it (used by the sync consumer)
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    # Then the consumer is invoked, reports the failure, and after maxReceiveCount the message
    # lands in the DLQ (visibility timeout shortened for the test)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    try:

        def in_dlq():
            attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
            return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) >= 1

        wait_for(in_dlq, timeout=30, what="poison message in the DLQ")
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5400"})
        sqs.purge_queue(QueueUrl=dlq)
    assert stack.aws.registry.invocations["JobsFunction"] - before >= 5  # maxReceiveCount in template.yaml


def test_schedules_are_the_templates_and_fire_on_demand(stack):
    schedules = stack.aws.schedules()
    assert set(schedules) == {
        "CustomersSync",
        "InventorySync",
        "ServiceTypesSync",
        "InvoicesBackfill",
        "ExpiredRuns",
        "Reconciliation",  # issue 15
    }
    result = stack.aws.fire_schedule("CustomersSync")
    assert result["data_type"] == "customers"


def test_the_local_gateway_fires_a_schedule_on_request_and_refuses_unknown_ones(stack):
    import requests

    fired = requests.post(f"{stack.api_url}/__local/schedules/InventorySync", timeout=10)
    assert fired.status_code == 200
    assert fired.json()["result"]["data_type"] == "items"
    assert requests.post(f"{stack.api_url}/__local/schedules/Nope", timeout=10).status_code == 404


def test_routes_without_a_valid_token_are_refused_before_the_function_runs(stack):
    import requests

    before = stack.aws.registry.invocations.get("ApiFunction", 0)
    assert requests.get(f"{stack.api_url}/contacts", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert requests.get(f"{stack.api_url}/contacts", headers=bad, timeout=10).status_code == 401
    assert stack.aws.registry.invocations.get("ApiFunction", 0) == before
    # the document is generated on first ask (seconds of CPU for some 150 operations)
    assert requests.get(f"{stack.api_url}/openapi.json", timeout=60).status_code == 200


def test_a_mapping_runs_as_many_invocations_at_once_as_its_maximum_concurrency(stack):
    # Given the template's sync mapping, and a private queue polled like it by a counting function
    sync = next(m for m in stack.aws.poller.mappings if m.function_name == "QboSyncFunction")
    assert sync.max_concurrency == 5  # ScalingConfig.MaximumConcurrency in template.yaml
    assert all(m.max_concurrency == 1 for m in stack.aws.poller.mappings if m is not sync)
    sqs = boto3.client("sqs")
    name = f"esm-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    lock, running, most, seen = threading.Lock(), [0], [0], []

    class Counting:
        def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.3)  # a handler waiting on QuickBooks
            with lock:
                running[0] -= 1
                seen.extend(r["body"] for r in event["Records"])
            return {"batchItemFailures": []}

    mapping = Mapping("Counting", url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", 2, True, 0.0, 3)
    poller = SqsPoller(Counting(), [mapping])  # type: ignore[arg-type]
    # When 24 messages are queued
    for start in range(0, 24, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(start, min(24, start + 10))],
        )
    poller.start()
    try:
        wait_for(lambda: len(seen) >= 24, timeout=30, what="every message handled")
    finally:
        poller.stop()
    # Then three invocations ran at once, each message was handled once and deleted
    assert most[0] == 3
    assert sorted(seen, key=int) == [str(n) for n in range(24)]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


# ---------------------------------------------------------------- durable state (make serve)
# The journals are attached for the length of one test, to a table and a queue of its own: the
# session stack's own resources (and the other tests) never see them.
def test_every_item_write_is_journaled_as_its_post_image_and_restores_into_an_empty_table(stack, tmp_path):
    from moto.dynamodb.models import dynamodb_backends

    from local import moto_dynamodb
    from local.durable import StateFile

    ddb = boto3.client("dynamodb")
    table = f"durable-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    journal = StateFile(tmp_path / "aws.sqlite")
    moto_dynamodb.set_journal(journal)
    try:

        def key(sk: str) -> dict[str, Any]:
            return {"pk": {"S": "p"}, "sk": {"S": sk}}

        ddb.put_item(TableName=table, Item={**key("a"), "n": {"N": "1"}, "b": {"B": b"\x00\xff"}})
        ddb.update_item(
            TableName=table,
            Key=key("a"),
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {**key("b"), "v": {"S": "x"}}}},
                    {"PutRequest": {"Item": {**key("c"), "v": {"S": "y"}}}},
                ]
            }
        )
        ddb.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": table, "Key": key("c")}},
                {"Put": {"TableName": table, "Item": {**key("d"), "v": {"S": "z"}}}},
            ]
        )
        # A refused transaction writes nothing, and the journal keeps what the table keeps.
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": {**key("e"), "v": {"S": "no"}}}},
                    {
                        "Delete": {
                            "TableName": table,
                            "Key": key("b"),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ddb.exceptions.TransactionCanceledException:
            pass
        else:
            raise AssertionError("the conditional delete should have cancelled the transaction")
    finally:
        moto_dynamodb.set_journal(None)
    items = ddb.scan(TableName=table)["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["a", "b", "d"]
    assert len(journal.load(f"ddb:{table}")) == 3

    # When the table starts empty (a new process) and the journal is restored into it
    backend = dynamodb_backends[ACCOUNT][REGION].get_table(table)
    backend.items.clear()
    assert moto_dynamodb.restore(journal, table) == 3
    # Then it holds exactly what it held, binary values included
    restored = sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["sk"]["S"])
    assert restored == sorted(items, key=lambda i: i["sk"]["S"])
    assert restored[0]["n"] == {"N": "2"} and restored[0]["b"] == {"B": b"\x00\xff"}
    ddb.delete_table(TableName=table)


def test_queued_and_in_flight_messages_are_journaled_and_come_back_visible(stack, tmp_path):
    from moto.sqs.models import sqs_backends

    from local import moto_sqs
    from local.durable import StateFile

    sqs = boto3.client("sqs")
    name = f"durable-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    journal = StateFile(tmp_path / "aws.sqlite")
    moto_sqs.set_journal(journal)
    try:
        for n in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    finally:
        moto_sqs.set_journal(None)
    # One message waiting, one in flight (invisible for 300 s), one deleted: the journal agrees.
    assert len(journal.load(f"sqs:{name}")) == 2

    queue = sqs_backends[ACCOUNT][REGION].queues[name]
    queue._messages = []  # a new process: the queue exists (from the template), empty
    assert moto_sqs.restore(journal) == 2
    # Both are back and visible now: the consumer that held one died with the process.
    back = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in back) == sorted({"m0", "m1", "m2"} - {got[0]["Body"]})
    counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in back}
    assert counts[got[1]["Body"]] == "2"  # its earlier receive is remembered (redrive counts it)
    sqs.delete_queue(QueueUrl=url)


def test_the_emulator_keeps_companies_tokens_counters_and_requestid_answers_across_a_restart(tmp_path):
    import requests

    from local.qbo_emulator import QboEmulator

    path = tmp_path / "qbo.sqlite"
    first = QboEmulator(state_path=path).start()
    try:
        first.register_app("client", "secret", ["http://localhost/callback"])
        realm = first.create_company(name="Durable Pools")
        tokens = first.connect("client", realm)
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"}
        created = requests.post(
            f"{first.api_base}/company/{realm}/customer?requestid=rq-1",
            json={"DisplayName": "Bob"},
            headers=headers,
            timeout=30,
        )
        assert created.status_code == 200, created.text
        state, calls = first.state(realm), first.calls(realm)
    finally:
        first.stop()

    second = QboEmulator(state_path=path).start()
    try:
        assert second.state(realm) == state
        assert second.calls(realm)["total"] == calls["total"]
        # The old access token still works, and a retried create replays its first answer.
        again = requests.post(
            f"{second.api_base}/company/{realm}/customer?requestid=rq-1",
            json={"DisplayName": "Bob"},
            headers=headers,
            timeout=30,
        )
        assert again.status_code == 200 and again.text == created.text
        assert second.count(realm, "Customer") == len(state["entities"]["Customer"])
        # The refresh token too; and a new entity gets the next id, not one already taken.
        refreshed = second.oauth.refresh_tokens.get(tokens["refresh_token"])
        assert refreshed is not None and refreshed.valid
        other = second.user_create(realm, "Customer", {"DisplayName": "Carol"})
        assert other["Id"] not in {c["Id"] for c in state["entities"]["Customer"]}
    finally:
        second.stop()


def test_a_run_whose_execution_cannot_be_resumed_ends_failed_with_a_reason_and_frees_its_lock(
    stack, connected_client, tmp_path
):
    from dataclasses import asdict

    from local.durable import StateFile
    from local.moto_stepfunctions import ExecutionRecord

    api = connected_client
    realm = api.ok("GET", "/quickbooks/connection")["realm_id"]
    api.ok("POST", "/contacts", json={"id": "c-1", "name": "Resume Pools"})
    api.ok(
        "POST",
        "/tasks",
        json={
            "id": "task-1",
            "title": "Service",
            "client_contact_id": "c-1",
            "billable": True,
            "status": "done",
            "unit_price": "80.00",
        },
    )
    api.ok(
        "POST",
        "/tasks/task-1/entries",
        json={"id": "e-1", "kind": "time", "started_at": "2026-10-05T09:00:00+00:00"},
    )
    api.ok("POST", "/tasks/task-1/entries/e-1/stop", json={"stopped_at": "2026-10-05T10:00:00+00:00"})
    # QuickBooks refuses invoices: the run stays in its sync stage, however fast the machine is.
    stack.emulator.add_fault(realm, kind="status", status=503, match={"path_regex": "/(batch|invoice)"})
    run_id = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)["id"]
    wait_for(lambda: api.ok("GET", f"/billing-runs/{run_id}")["stage"] == "syncing", what="run syncing")
    # Given its execution is gone (as after a restart) and the journal names it, started under
    # another definition than the state machine now has
    sfn = boto3.client("stepfunctions")
    machine = stack.aws.state_machines["BillingRunStateMachine"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{run_id}"
    sfn.stop_execution(executionArn=arn)
    wait_for(
        lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", what="execution stopped"
    )
    journal = StateFile(tmp_path / "aws.sqlite")
    record = ExecutionRecord(
        arn=arn,
        state_machine_arn=machine,
        name=run_id,
        input=json.dumps({"tenant_id": api.tenant_id, "run_id": run_id, "poll_seconds": 1}),
        definition_sha256="an older definition",
    )
    journal.put("sfn:executions", arn, json.dumps(asdict(record)).encode())
    stack.aws.journal = journal
    try:
        # When the restarted stack resumes what was in flight
        outcome = stack.aws.resume_executions(stack._fail_unresumable_run, stack._run_still_in_flight)
    finally:
        stack.aws.journal = None
    # Then the run is not resumed: it ends failed, saying why, and the tenant can bill again
    assert outcome["unresumable"] == [arn] and not outcome["resumed"], outcome
    run = api.ok("GET", f"/billing-runs/{run_id}")
    assert (run["stage"], run["status"]) == ("finished", "failed"), run
    assert "definition changed" in run["errors"][-1]["cause"], run["errors"]
    assert journal.load("sfn:executions") == {}
    stack.emulator.faults.clear(realm)
    second = api.ok("POST", "/billing-runs", json={"grouping": "per_contact"}, expect=202)
    assert api.wait_run(second["id"])["stage"] == "finished"
