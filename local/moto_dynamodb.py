"""Make moto's DynamoDB (5.2.x, pinned) safe for concurrent callers and fast for transactions and queries.

Four problems, one small patch (docs/decisions/0002-local-runtime.md):
1. moto's backend has no lock: two threads (two "Lambdas" of the local runtime) writing at once
   can corrupt its dicts. Real DynamoDB executes each request atomically, so every DynamoDB action
   here runs under one lock: the same semantics, serialised.
2. `transact_write_items` deep-copies the whole table once per transaction item to be able to roll
   back; a 100-item transaction on a 10,000-item table copies a million items. We snapshot only the
   items the transaction touches and restore those on failure, which is what rollback needs.
3. A Query on the table's own key lists and sorts the whole table (`Table.all_items`) to keep one
   partition: with a month-end run's ~30,000 items every limiter read (a Query of one realm's
   rate items) takes ~140 ms. We hand moto that partition alone, sorted by its range key: the
   same items in the same order (index queries are left as they are).
4. moto writes every response through its generic, shape-driven serializer, which walks each
   attribute of each item (~10 ms for a BatchGetItem of 30 invoices): the largest single CPU
   cost of the local runtime. For the read answers that carry items (GetItem, BatchGetItem,
   Query, Scan) the items are written straight to JSON (binary values base64, as the serializer
   does); everything else, and the rest of those answers, still goes through moto's serializer.
tests/integration/test_moto_patches.py pins all four behaviours (the same answers with and
without the patches).

Durability (docs/decisions/0004-durable-local-state.md): with a journal set (`make serve`), every
write request (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems) writes the
post-images of the items it named to the journal before it is answered, still under the lock:
the journal always holds what moto holds. `restore()` puts them back into a new table.
"""

from __future__ import annotations

import base64
import copy
import json
import pickle
import threading
from collections import Counter
from typing import Any

_LOCK = threading.RLock()
_installed = False
# DynamoDB requests served, by action: the benchmark's request counts come from here.
REQUESTS: Counter[str] = Counter()
# The durable journal of `make serve` (a local.durable.StateFile), None when the stack is in memory.
_journal: Any = None
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_NS = "ddb:"  # namespace per table: "ddb:<table name>", key: the item's key, value: pickled attributes


def set_journal(journal: Any) -> None:
    """Journal every item write from now on (None: stop; the stack stays in memory)."""
    global _journal
    with _LOCK:
        _journal = journal


def _touched(action: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, its key or whole item) for every item a write request names."""
    if action == "PutItem":
        return [(body["TableName"], body["Item"])]
    if action in ("UpdateItem", "DeleteItem"):
        return [(body["TableName"], body["Key"])]
    out = []
    if action == "BatchWriteItem":
        for table, requests in (body.get("RequestItems") or {}).items():
            for request in requests:
                if "PutRequest" in request:
                    out.append((table, request["PutRequest"]["Item"]))
                elif "DeleteRequest" in request:
                    out.append((table, request["DeleteRequest"]["Key"]))
    elif action == "TransactWriteItems":
        for entry in body.get("TransactItems") or []:
            op_type, op = next(iter(entry.items()))
            if op_type != "ConditionCheck":
                out.append((op["TableName"], op["Item"] if op_type == "Put" else op["Key"]))
    return out


def _record(backend: Any, action: str, body: dict[str, Any]) -> None:
    """Write the post-image (or the absence) of each item the request named: one transaction."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        touched = _touched(action, body)
    except (KeyError, TypeError, AttributeError, StopIteration):
        return  # a malformed request: moto refused it and wrote nothing
    puts, deletes = [], []
    for table_name, source in touched:
        table = backend.tables.get(table_name)
        if table is None or table.hash_key_attr not in source:
            continue  # moto refused the request: nothing was written
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = None
        if table.range_key_attr:
            if table.range_key_attr not in source:
                continue
            range_key = DynamoType(source[table.range_key_attr])
        key = json.dumps([hash_key.type, str(hash_key.value), str(range_key.value) if range_key else None])
        item = table.get_item(hash_key, range_key)
        if item is None:
            deletes.append((_NS + table_name, key))
        else:
            puts.append((_NS + table_name, key, pickle.dumps(item.to_json()["Attributes"])))
    _journal.write(puts, deletes)


def restore(journal: Any, table_name: str) -> int:
    """Put the journal's items of `table_name` back into moto's (new, empty) table; returns how many."""
    from moto.dynamodb.models import dynamodb_backends

    from local.template import ACCOUNT, REGION

    table = dynamodb_backends[ACCOUNT][REGION].get_table(table_name)
    items = journal.load(_NS + table_name)
    with _LOCK:
        for value in items.values():
            table.put_item(pickle.loads(value))
    return len(items)


# The members of read answers that hold items (AttributeValue maps): written straight to JSON.
_ITEM_KEYS = {
    "GetItem": {"Item"},
    "BatchGetItem": {"Responses"},
    "Query": {"Items", "LastEvaluatedKey"},
    "Scan": {"Items", "LastEvaluatedKey"},
}


def _plain(value: Any) -> Any:
    """Items as DynamoDB's JSON writes them: binary values base64, the rest as they are."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    original_call = DynamoHandler.call_action
    original_transact = DynamoDBBackend.transact_write_items

    def call_action(self: Any) -> Any:
        with _LOCK:
            action = self._get_action()
            REQUESTS[action] += 1
            if _journal is None or action not in _WRITES:
                return original_call(self)
            try:
                return original_call(self)
            finally:
                # Also after a refused request: a BatchWriteItem may have written part of its items.
                # moto's handler has replaced self.body with the parsed parameters by now.
                if isinstance(self.body, dict):
                    _record(self.dynamodb_backend, action, self.body)

    def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
        source = op["Item"] if op_type == "Put" else op["Key"]
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr else None
        return hash_key, range_key

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshot = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None or op_type == "ConditionCheck":
                    continue
                try:
                    hash_key, range_key = _key_of(table, op_type, op)
                except (KeyError, TypeError):
                    continue  # moto reports the malformed request itself
                before = table.get_item(hash_key, range_key)
                snapshot.append((table, hash_key, range_key, copy.deepcopy(before) if before else None))
            # moto's own whole-table backup becomes a no-op; our item snapshot does the rollback.
            Table.__deepcopy__ = lambda table, memo: table  # type: ignore[attr-defined]
            try:
                original_transact(self, transact_items)
            except Exception:
                for table, hash_key, range_key, before in reversed(snapshot):
                    table.delete_item(hash_key, range_key)
                    if before is not None:
                        table.put_item(before.to_json()["Attributes"])
                raise
            finally:
                del Table.__deepcopy__  # type: ignore[attr-defined]

    original_query = Table.query

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # moto passes it 8th
        if index_name or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        with _LOCK:  # held by call_action already; the instance attribute is seen by this call only
            partition = self.items.get(hash_key) or {}
            items = sorted(partition.values(), key=lambda item: item.range_key)
            self.all_items = lambda: items  # type: ignore[method-assign]
            try:
                return original_query(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    original_execute = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        heavy = _ITEM_KEYS.get(context.operation_model.name)
        result = self.result
        if not heavy or not isinstance(result, dict) or not heavy & result.keys():
            return original_execute(self, context)
        rest = DynamoResult.__new__(DynamoResult)
        rest._result = {k: v for k, v in result.items() if k not in heavy}
        status, headers, body = original_execute(rest, context)
        answer = json.loads(body) if body else {}
        answer.update({k: _plain(result[k]) for k in heavy if k in result})
        return status, headers, json.dumps(answer)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    execute_result.__wrapped__ = original_execute  # type: ignore[attr-defined]
    query.__wrapped__ = original_query  # type: ignore[attr-defined]  # the tests compare both
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    _installed = True
