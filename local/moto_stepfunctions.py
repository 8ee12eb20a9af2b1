"""Record moto's Step Functions executions (5.2.x, pinned) so a restarted local stack can resume them.

moto runs an execution's interpreter on a thread; its progress cannot be saved and loaded. What
can be kept is what a resume needs: each execution's state machine, name, input and the hash of
the definition it started with, written when it starts (before StartExecution answers) and
deleted when it ends (an ended execution needs nothing to resume). On restart the stack starts
every execution that was still running again, under the same name (so the same ARN), from its
first state: this works because the billing run keeps its progress in DynamoDB and every step is
idempotent (docs/decisions/0004-durable-local-state.md). Executions that cannot be resumed are reported to
the caller, which fails them through the product's own failure path.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from typing import Any

_LOCK = threading.Lock()
_installed = False
_journal: Any = None
_NS = "sfn:executions"


@dataclass
class ExecutionRecord:
    arn: str
    state_machine_arn: str
    name: str
    input: str
    definition_sha256: str


def definition_hash(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


def set_journal(journal: Any) -> None:
    global _journal
    with _LOCK:
        _journal = journal


def _put(record: ExecutionRecord) -> None:
    with _LOCK:
        if _journal is not None:
            _journal.put(_NS, record.arn, json.dumps(asdict(record)).encode())


def _ended(arn: str) -> None:
    with _LOCK:
        if _journal is not None:
            forget(_journal, arn)


def running(journal: Any) -> list[ExecutionRecord]:
    """Executions that had started and not ended when the stack stopped."""
    return [ExecutionRecord(**json.loads(v)) for v in journal.load(_NS).values()]


def forget(journal: Any, arn: str) -> None:
    journal.write(deletes=[(_NS, arn)])


def _input_text(execution: Any) -> str:
    """The execution's input as StartExecution takes it (moto keeps it parsed)."""
    data = execution.input_data
    if data is None:
        return "{}"
    return data if isinstance(data, str) else json.dumps(data)


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    original_start = Execution.start
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def start(self: Any) -> None:
        # Recorded before the interpreter's thread starts, so the end is always recorded after it.
        _put(
            ExecutionRecord(
                arn=self.exec_arn,
                state_machine_arn=self.state_machine.arn,
                name=self.name,
                input=_input_text(self),
                definition_sha256=definition_hash(self.state_machine.definition),
            )
        )
        try:
            original_start(self)
        except BaseException:
            _ended(self.exec_arn)
            raise

    def terminated(self: Any) -> None:
        original_terminated(self)
        _ended(self.execution.exec_arn)

    start.__wrapped__ = original_start  # type: ignore[attr-defined]
    terminated.__wrapped__ = original_terminated  # type: ignore[attr-defined]
    Execution.start = start  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
    _installed = True
