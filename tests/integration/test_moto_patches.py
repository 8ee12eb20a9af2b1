"""Pins local/moto_dynamodb.py and local/moto_sqs.py: transactions still roll back, concurrent
writers are safe, a Query answers as moto's own, SQS times and visibility are unchanged."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.store.common import connection
from fieldbill.store.models import META, Contact, Entity


def _contact(tenant: str, cid: str, name: str = "n") -> Contact:
    return Contact(pk=Contact.key(tenant, cid), sk=META, tenant_id=tenant, id=cid, name=name)


def test_a_failed_transaction_leaves_every_item_as_it_was(stack, tenant_id):
    # Given one existing contact
    existing = _contact(tenant_id, "a", "before")
    existing.save()
    # When a transaction updates it, creates another, then fails a condition on a third
    with pytest.raises(TransactWriteError), TransactWrite(connection=connection()) as tx:
        tx.update(existing, actions=[Contact.name.set("after")])
        tx.save(_contact(tenant_id, "b"), condition=Entity.pk.does_not_exist())
        tx.save(_contact(tenant_id, "a"), condition=Entity.pk.does_not_exist())  # fails: exists
    # Then nothing of it is written
    assert Entity.get(Contact.key(tenant_id, "a"), META).name == "before"
    assert Entity.count(Contact.key(tenant_id, "b")) == 0


def test_concurrent_transactions_from_threads_all_apply(stack, tenant_id):
    def write(n: int) -> None:
        for k in range(20):
            with TransactWrite(connection=connection()) as tx:
                for j in range(5):
                    tx.save(_contact(tenant_id, f"{n}-{k}-{j}-{uuid.uuid4().hex[:4]}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    count = sum(1 for r in Entity.scan(Entity.tenant_id == tenant_id))
    assert count == 4 * 20 * 5


# ---------------------------------------------------------------------------- Query on one partition
def _queries(table: str, pk: str) -> list[list[dict[str, Any]]]:
    """The same partition read the ways the engine reads: whole, a range, backwards, in pages."""
    ddb = boto3.client("dynamodb")
    key = {":pk": {"S": pk}}
    whole = ddb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues=key, ConsistentRead=True
    )["Items"]
    ranged = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={**key, ":lo": {"S": "R#0003"}, ":hi": {"S": "R#0011"}},
    )["Items"]
    backwards = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={**key, ":p": {"S": "R#"}},
        ScanIndexForward=False,
    )["Items"]
    pages: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": key,
        "Limit": 4,
    }
    while True:
        page = ddb.query(**kwargs)
        pages += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    by_index = ddb.query(
        TableName=table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :g",
        ExpressionAttributeValues={":g": {"S": pk + "#list"}},
    )["Items"]
    return [whole, ranged, backwards, pages, by_index]


def test_query_on_one_partition_answers_as_moto_does_with_other_partitions_around(
    stack, tenant_id, monkeypatch
):
    from moto.dynamodb.models.table import Table

    ddb = boto3.client("dynamodb")
    table = os.environ["TABLE_NAME"]
    pk = f"REALM#{tenant_id}#RATE"
    # Given one partition written in shuffled order, with index entries
    order = list(range(16))
    random.Random(7).shuffle(order)
    for n in order:
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": f"R#{n:04d}"},
                "n": {"N": str(n)},
                "gsi1pk": {"S": pk + "#list"},
                "gsi1sk": {"S": f"{15 - n:04d}"},
            },
        )
    alone = _queries(table, pk)
    # When partitions that sort before and after it (and share its sort keys) are added
    for other in (pk[:-1], pk + "A", "A" + pk, "~" + pk):
        for n in range(8):
            ddb.put_item(TableName=table, Item={"pk": {"S": other}, "sk": {"S": f"R#{n:04d}"}})
    crowded = _queries(table, pk)
    # Then the partition reads the same, in the same order, and as moto itself answers
    assert crowded == alone
    assert [it["sk"]["S"] for it in alone[0]] == [f"R#{n:04d}" for n in range(16)]
    assert [it["sk"]["S"] for it in alone[1]] == [f"R#{n:04d}" for n in range(3, 12)]
    assert [it["sk"]["S"] for it in alone[2]] == [f"R#{n:04d}" for n in reversed(range(16))]
    assert alone[3] == alone[0]
    assert [it["sk"]["S"] for it in alone[4]] == [f"R#{n:04d}" for n in reversed(range(16))]
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)
    assert _queries(table, pk) == crowded
    # And an absent partition is empty, not an error
    monkeypatch.undo()
    assert _queries(table, pk + "#none")[0] == []


# ---------------------------------------------------------------------------- SQS clock
def test_sqs_times_and_visibility_unchanged_by_the_fast_clock(stack):
    import moto.sqs.models as sqs_models

    fast = sqs_models.unix_time_millis
    assert abs(fast() - fast.__wrapped__()) < 50  # the same instant, in milliseconds
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"patch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    before = time.time() * 1000
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)
    # A received message is hidden for its visibility timeout, then comes back with its count
    got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["a"]
    assert before - 5 <= int(got[0]["Attributes"]["SentTimestamp"]) <= time.time() * 1000 + 5
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    time.sleep(1.3)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in again) == ["a", "delayed"]
    first = next(m for m in again if m["Body"] == "a")
    assert first["Attributes"]["ApproximateReceiveCount"] == "2"
    # And a visibility change takes effect: 0 shows the message at once, 30 hides it
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    shown = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in shown] == ["a"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_sqs_retention_check_answers_as_moto_does(stack):
    # Given a queue keeping messages for 60 s, a fresh message and one sent 61 s ago
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    sqs = boto3.client("sqs")
    name = f"retention-{uuid.uuid4().hex[:8]}"
    sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})
    backend = sqs_models.sqs_backends[DEFAULT_ACCOUNT_ID][os.environ.get("AWS_DEFAULT_REGION", "us-east-1")]
    fresh = sqs_models.Message("m1", "fresh")
    fresh.sent_timestamp = int(time.time() * 1000)
    old = sqs_models.Message("m2", "old")
    old.sent_timestamp = int((time.time() - 61) * 1000)
    patched = sqs_models.SQSBackend.is_message_valid_based_on_retention_period
    original = patched.__wrapped__
    # Then the patched check keeps the fresh one and drops the old one, as moto's own does
    for message, kept in ((fresh, True), (old, False)):
        assert patched(backend, name, message) is kept
        assert original(backend, name, message) is kept


# ---------------------------------------------------------------------------- item answers
def _reads(table: str, pk: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    key = {"pk": {"S": pk}, "sk": {"S": "A"}}
    answers = [
        ddb.get_item(TableName=table, Key=key, ConsistentRead=True),
        ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "none"}}),
        ddb.get_item(TableName=table, Key=key, ProjectionExpression="m.k, bs"),
        ddb.batch_get_item(
            RequestItems={
                table: {"Keys": [key, {"pk": {"S": pk}, "sk": {"S": "B"}}], "ConsistentRead": True}
            },
            ReturnConsumedCapacity="TOTAL",
        ),
        ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            Limit=1,
            ReturnConsumedCapacity="TOTAL",
        ),
        ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_exists(nothing)",
            ExpressionAttributeValues={":pk": {"S": pk}},
        ),
        ddb.scan(
            TableName=table,
            FilterExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        ),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


def test_item_answers_are_the_same_as_moto_serializes_them(stack, tenant_id, monkeypatch):
    from moto.dynamodb.responses import DynamoResult

    ddb = boto3.client("dynamodb")
    table = os.environ["TABLE_NAME"]
    pk = f"T#{tenant_id}#SERIALIZE"
    for sk in ("A", "B"):
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": sk},
                "n": {"N": "1.50"},
                "b": {"B": b"\x00\xff"},
                "bs": {"BS": [b"x", b"\x01"]},
                "ss": {"SS": ["x", "ü"]},
                "ns": {"NS": ["1", "-2.5"]},
                "l": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}, {"N": "0"}]},
                "m": {"M": {"k": {"S": "v"}, "e": {"M": {}}, "el": {"L": []}}},
                "empty": {"S": ""},
            },
        )
    fast = _reads(table, pk)
    monkeypatch.setattr(DynamoResult, "execute_result", DynamoResult.execute_result.__wrapped__)
    assert fast == _reads(table, pk)
    assert fast[0]["Item"]["b"]["B"] == b"\x00\xff" and "Item" not in fast[1]
    assert "LastEvaluatedKey" in fast[4] and fast[5]["Items"] == []
