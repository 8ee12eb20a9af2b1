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
    assert set(schedules) == {"CustomersSync", "InventorySync", "ServiceTypesSync", "InvoicesBackfill"}
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
    assert requests.get(f"{stack.api_url}/openapi.json", timeout=10).status_code == 200


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
