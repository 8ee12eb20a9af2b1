"""Make moto's DynamoDB (5.2.x, pinned) safe for concurrent callers and fast for transactions.

Two problems, one small patch (docs/decisions/0002-local-runtime.md):
1. moto's backend has no lock: two threads (two "Lambdas" of the local runtime) writing at once
   can corrupt its dicts. Real DynamoDB executes each request atomically, so every DynamoDB action
   here runs under one lock: the same semantics, serialised.
2. `transact_write_items` deep-copies the whole table once per transaction item to be able to roll
   back; a 100-item transaction on a 10,000-item table copies a million items. We snapshot only the
   items the transaction touches and restore those on failure, which is what rollback needs.
tests/integration/test_moto_patches.py pins both behaviours.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from typing import Any

_LOCK = threading.RLock()
_installed = False
# DynamoDB requests served, by action: the benchmark's request counts come from here.
REQUESTS: Counter[str] = Counter()


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    original_call = DynamoHandler.call_action
    original_transact = DynamoDBBackend.transact_write_items

    def call_action(self: Any) -> Any:
        with _LOCK:
            REQUESTS[self._get_action()] += 1
            return original_call(self)

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

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _installed = True
