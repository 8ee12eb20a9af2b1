"""Status changes, written one way: the domain's machine decides, the store writes conditionally.

Every status attribute of every record changes only through `change()` (which returns the
update actions, the condition and the history record for a write or a transaction) or `apply()`
(which performs the write). The write sets the status, appends the history entry and stamps
`updated_at` in one update, conditional on the status the machine decided from: a concurrent
writer wins or loses cleanly, and the audit trail can never disagree with the record.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from fieldbill.clock import now, now_iso
from fieldbill.domain.errors import Conflict
from fieldbill.domain.states import HistoryRecord, StateMachine
from fieldbill.store import common
from fieldbill.store.models import Entity, HistoryEntry


@dataclass(frozen=True, slots=True)
class Change:
    """One decided status change, ready to write (alone with `apply` or inside a transaction)."""

    actions: list[Action]
    condition: Any
    record: HistoryRecord


def _status_enum(machine: StateMachine[Any]) -> type[enum.StrEnum]:
    return type(next(iter(machine.allowed)))


def change(
    model: type[Entity],
    attribute: str,
    machine: StateMachine[Any],
    subject_id: str,
    current: str,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    extra: list[Action] | None = None,
    more_history: Sequence[HistoryEntry] = (),
) -> Change:
    """Ask `machine` whether `current -> target` is allowed (InvalidTransition if not, Conflict if
    already there) and build the write: status, history, updated_at, plus `extra` actions.
    `more_history` goes into the same history append (one update may append only once)."""
    kind = _status_enum(machine)
    record = machine.transition(subject_id, kind(current), kind(target), at=now(), actor=actor, reason=reason)
    status_attr = getattr(model, attribute)
    actions: list[Action] = [
        status_attr.set(record.to_status),
        model.updated_at.set(now_iso()),
        model.history.set(
            model.history.append(
                [common.history_entry(actor, record.from_status, record.to_status, reason), *more_history]
            )
        ),
        *(extra or []),
    ]
    return Change(actions=actions, condition=status_attr == record.from_status, record=record)


def apply(
    record: Entity,
    attribute: str,
    machine: StateMachine[Any],
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    extra: list[Action] | None = None,
    condition: Any = None,
) -> HistoryRecord:
    """Move `record` to `target` through `machine`, written conditionally on its current status
    (and `condition`, when given). The record is refreshed with the stored values. A concurrent
    change raises Conflict naming the record; the caller reads again and decides again."""
    current = str(getattr(record, attribute))
    decided = change(
        type(record),
        attribute,
        machine,
        record.id,
        current,
        target,
        actor=actor,
        reason=reason,
        extra=extra,
    )
    where = decided.condition if condition is None else decided.condition & condition
    try:
        record.update(actions=decided.actions, condition=where)
    except (UpdateError, TransactWriteError) as exc:
        if common.conditional_failed(exc):
            raise Conflict(
                f"{machine.name} {record.id!r} changed meanwhile (was {current}); read it again"
            ) from None
        raise
    return decided.record


def written(record: Entity, attribute: str, status: str) -> None:
    """Mirror on the in-memory record a status this module's change was just written with (no
    write): callers that keep working with the record see what the table holds."""
    setattr(record, attribute, status)


def nested(
    machine: StateMachine[Any],
    subject_id: str,
    current: str,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
) -> tuple[HistoryRecord, HistoryEntry]:
    """(wt-life) A status held inside its parent record (a credit memo in its invoice's list): the
    machine decides; the caller writes the parent conditional on the list as read (so on the old
    status), with the returned history entry, in one write."""
    kind = _status_enum(machine)
    record = machine.transition(subject_id, kind(current), kind(target), at=now(), actor=actor, reason=reason)
    return record, common.history_entry(actor, record.from_status, record.to_status, reason)
