"""SQS event source mappings as Lambda runs them: poll, batch, invoke, delete what succeeded.

moto would invoke a queue's function synchronously inside SendMessage, one record at a time and
with no visibility timeout, which hides the behaviour the sync engine depends on (batches, partial
batch failures, messages coming back after their visibility timeout, redrive to the DLQ). So the
local runtime polls instead, like the Lambda service does. See docs/decisions/0002-local-runtime.md.

Lambda runs several invocations of one mapping at once (up to the event's
`ScalingConfig.MaximumConcurrency`); so does the poller: that many consumers per mapping, each
polling and invoking on its own thread. A mapping without ScalingConfig gets one consumer here
(Lambda would scale it further: the local runtime stays conservative where the template is silent).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import boto3

from local.lambda_runtime import FunctionRegistry
from local.template import REGION


@dataclass
class Mapping:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    batching_window: float = 0.0
    # Concurrent invocations (ScalingConfig.MaximumConcurrency; one when the template is silent).
    max_concurrency: int = 1


class SqsPoller:
    def __init__(self, registry: FunctionRegistry, mappings: list[Mapping], idle_sleep: float = 0.05):
        self.registry = registry
        self.mappings = mappings
        self.idle_sleep = idle_sleep
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # invocations in progress, all mappings
        self._busy_lock = threading.Lock()
        self.errors: list[str] = []

    def start(self) -> None:
        for mapping in self.mappings:
            for n in range(max(1, mapping.max_concurrency)):
                thread = threading.Thread(
                    target=self._run, args=(mapping,), daemon=True, name=f"esm-{mapping.function_name}-{n}"
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; wait up to `timeout` in all for invocations in progress (they are daemon
        threads: one still busy after that dies with the process, its messages redelivered)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self, mapping: Mapping) -> None:
        sqs = boto3.client("sqs", region_name=REGION)
        sleep = self.idle_sleep
        while not self._stop.is_set():
            try:
                got = self.poll_once(mapping, sqs)
            except Exception:  # the poller must survive anything a handler does
                self.errors.append(traceback.format_exc())
                got = 0
            if got:
                sleep = self.idle_sleep
            else:
                self._stop.wait(sleep)
                sleep = min(sleep * 2, 0.5)

    def receive(self, mapping: Mapping, sqs: Any) -> list[dict[str, Any]]:
        """Like Lambda's poller: for a BatchSize over 10, several receives until the batch is full,
        the queue answers nothing, or the batching window ends."""
        deadline = time.monotonic() + mapping.batching_window
        messages: list[dict[str, Any]] = []
        while len(messages) < mapping.batch_size:
            got = sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages += got
            if not got or time.monotonic() >= deadline:
                break
        return messages

    def poll_once(self, mapping: Mapping, sqs: Any) -> int:
        messages = self.receive(mapping, sqs)
        if not messages:
            return 0
        with self._busy_lock:
            self._busy += 1
        try:
            event = {"Records": [self._record(m, mapping) for m in messages]}
            try:
                result = self.registry.invoke(mapping.function_name, event)
            except Exception:
                # Whole batch failed: nothing is deleted; messages return after their visibility timeout.
                traceback.print_exc()
                return len(messages)
            failed: set[str] = set()
            if mapping.report_failures and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for chunk in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[chunk : chunk + 10])
                ]
                if entries:
                    sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=entries)
            return len(messages)
        finally:
            with self._busy_lock:
                self._busy -= 1

    @staticmethod
    def _record(message: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "local"),
                "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
            },
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "dataType": value.get("DataType", "String"),
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.queue_arn,
            "awsRegion": REGION,
        }

    def busy(self) -> bool:
        return self._busy > 0
