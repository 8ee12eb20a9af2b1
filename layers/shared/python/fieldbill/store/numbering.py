"""Gapless per-tenant document numbers, allocated in the same transaction as the record taking one.

One counter item per tenant and sequence (`T#<tenant>#SEQ#<sequence>`, `next_value`) and one claim
item per number used (`T#<tenant>#NUMBER#<sequence>#<number>`, `owner_id`). Taking a number is
three parts of ONE DynamoDB transaction, with the caller's own writes:

1. the counter moves from n to n + 1, conditional on still being n (created at `start` the first
   time, conditional on not existing);
2. the claim of n is put, conditional on not existing (no two records ever share a number, even
   one a person typed);
3. the caller's record, written with n (usually a put conditional on not existing).

Either all three happen or none: a retry of the same record (its put refused: it exists), a write
refused for any other reason or a crash before the commit burns no number and takes none twice.
Two writers racing for n: one commits, the other's counter condition fails and it reads the
counter again (no gap, no duplicate). A number a person typed (mode AUTOMATIC_OVERRIDABLE) takes
only its claim; when the counter later reaches it, the counter steps over it (the number is used,
so that is not a gap).

Use (a store/ module that writes a record with a number; `write` adds the record's parts):

    def write(tx: TransactWrite, number: str | None) -> None:
        record.number = number
        tx.save(record, condition=Entity.pk.does_not_exist())

    number = numbering.write_numbered(tenant_id, "invoice", record.id, write, mode=Mode.AUTOMATIC_FIXED)

A refusal of the caller's own parts comes back as the TransactWriteError DynamoDB raised (the
caller knows what its conditions mean); a number a person typed that is taken is a Conflict (409).
`renumber` gives a record a new number when its old one turned out to be taken elsewhere (a
QuickBooks invoice typed there with our next number: error 6140).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.store import common
from fieldbill.store.models import META, Entity, NumberClaim, NumberSequence

DEFAULT_START = 1001  # QuickBooks' own first invoice number: a company switching sees no jump
NUMBER_MAX = 21  # QuickBooks' DocNumber limit: every number we make must fit it
ATTEMPTS = 20  # races lost in a row before giving up (each loss means someone else got a number)
_SEQUENCE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

Write = Callable[[TransactWrite, "str | None"], None]


class Mode(StrEnum):
    """How a kind of record is numbered."""

    NONE = "none"  # no number of ours (e.g. QuickBooks numbers the invoice)
    AUTOMATIC_OVERRIDABLE = "automatic_overridable"  # the sequence's next, unless a person typed one
    AUTOMATIC_FIXED = "automatic_fixed"  # always the sequence's next; a typed number is refused


def _check_sequence(sequence: str) -> None:
    if not _SEQUENCE_RE.match(sequence):
        raise ValueError(f"sequence name {sequence!r}: lower-case letters, digits, _")


def check_typed(number: str, field: str = "number") -> str:
    """A number a person typed: trimmed, 1 to 21 characters, no control characters (422 otherwise)."""
    cleaned = number.strip()
    if not cleaned or len(cleaned) > NUMBER_MAX or any(ord(c) < 32 for c in cleaned):
        raise ValidationError(field, f"1 to {NUMBER_MAX} printable characters")
    return cleaned


def next_number(tenant_id: str, sequence: str, start: int = DEFAULT_START) -> int:
    """The number the next record of the sequence takes (for display; the write decides)."""
    _check_sequence(sequence)
    counter = common.find(NumberSequence, NumberSequence.key(tenant_id, sequence))
    return int(counter.next_value) if counter is not None else start


def owner_of(tenant_id: str, sequence: str, number: str) -> str | None:
    """The record holding `number` in the sequence, if any."""
    claim = common.find(NumberClaim, NumberClaim.key(tenant_id, sequence, number))
    return str(claim.owner_id) if claim is not None else None


def write_numbered(
    tenant_id: str,
    sequence: str,
    owner_id: str,
    write: Write,
    *,
    mode: Mode,
    requested: str | None = None,
    start: int = DEFAULT_START,
    _extra: Write | None = None,
    hint: CounterHint | None = None,
) -> str | None:
    """Run `write(tx, number)` in one transaction with the allocation of `number`; the number.

    mode NONE: `write(tx, None)`, nothing allocated. AUTOMATIC_FIXED: the sequence's next
    (`requested` must be None: a 422 names `number`). AUTOMATIC_OVERRIDABLE: `requested` if given
    (its claim only, the counter stays; taken by another record → Conflict), else the next.
    """
    _check_sequence(sequence)
    if mode is Mode.NONE:
        with TransactWrite(connection=common.connection()) as tx:
            write(tx, None)
        return None
    if requested is not None:
        if mode is Mode.AUTOMATIC_FIXED:
            raise ValidationError("number", "numbers are given automatically here and cannot be typed")
        typed = check_typed(requested)
        _transact(tenant_id, sequence, owner_id, typed, None, write, _extra)
        return typed
    for attempt in range(ATTEMPTS):
        if attempt == 0 and hint is not None and hint.value is not None:
            counter, current = hint.counter, hint.value  # as our last allocation left it (wt-rec3)
        else:
            counter = _read_counter(tenant_id, sequence)
            current = int(counter.next_value) if counter is not None else start
        number = str(current)
        try:
            _transact(tenant_id, sequence, owner_id, number, (counter, current), write, _extra)
        except _Lost as lost:
            if hint is not None:
                hint.value = None  # another writer moved the counter: read it again
            if lost.number_taken:
                _step_over(tenant_id, sequence, counter, current, start)
            continue
        if hint is not None:
            hint.counter = (
                counter if counter is not None else _counter_record(tenant_id, sequence, current + 1)
            )
            hint.value = current + 1
        return number
    raise Conflict(f"the {sequence} number sequence is busy; try again")


def renumber(
    tenant_id: str,
    sequence: str,
    owner_id: str,
    old_number: str,
    taken_by: str,
    write: Write,
    *,
    start: int = DEFAULT_START,
) -> str:
    """Give `owner_id` the sequence's next number in place of `old_number`, which `taken_by`
    holds elsewhere (e.g. "quickbooks:Invoice:145"): the old claim passes to `taken_by` in the same
    transaction, so the old number stays used (no gap) and ours is unique again."""
    old = NumberClaim(NumberClaim.key(tenant_id, sequence, old_number), META)

    def hand_over(tx: TransactWrite, _: str | None) -> None:
        tx.update(
            old,
            actions=[NumberClaim.owner_id.set(taken_by), NumberClaim.updated_at.set(now_iso())],
            condition=NumberClaim.owner_id == owner_id,
        )

    number = write_numbered(
        tenant_id, sequence, owner_id, write, mode=Mode.AUTOMATIC_FIXED, start=start, _extra=hand_over
    )
    assert number is not None
    return number


# ---------------------------------------------------------------------------- wt-rec3: a run's counter
@dataclass
class CounterHint:
    """The counter as this caller's last allocation left it: a run writing many numbered records
    in a row (a period's drafts) skips the counter read before each. Safe: the transaction is
    still conditional on the counter's value, so a counter another writer moved fails it, and
    the next attempt reads the counter again."""

    counter: NumberSequence | None = None
    value: int | None = None


# ---------------------------------------------------------------------------- the transaction
class _Lost(Exception):
    """The counter moved (another record took the number) or the number is held: read again."""

    def __init__(self, number_taken: bool) -> None:
        super().__init__("lost the number")
        self.number_taken = number_taken


def _read_counter(tenant_id: str, sequence: str) -> NumberSequence | None:
    try:
        record = Entity.get(NumberSequence.key(tenant_id, sequence), META, consistent_read=True)
    except Entity.DoesNotExist:
        return None
    return record if isinstance(record, NumberSequence) else None


def _counter_record(tenant_id: str, sequence: str, next_value: int) -> NumberSequence:
    stamp = now_iso()
    return NumberSequence(
        pk=NumberSequence.key(tenant_id, sequence),
        sk=META,
        tenant_id=tenant_id,
        id=sequence,
        next_value=next_value,
        created_at=stamp,
        updated_at=stamp,
    )


def _claim_record(tenant_id: str, sequence: str, number: str, owner_id: str) -> NumberClaim:
    stamp = now_iso()
    return NumberClaim(
        pk=NumberClaim.key(tenant_id, sequence, number),
        sk=META,
        tenant_id=tenant_id,
        id=number,
        sequence=sequence,
        owner_id=owner_id,
        created_at=stamp,
        updated_at=stamp,
    )


def _counter_part(
    tx: TransactWrite, tenant_id: str, sequence: str, counter: NumberSequence | None, current: int
) -> None:
    if counter is None:
        tx.save(_counter_record(tenant_id, sequence, current + 1), condition=Entity.pk.does_not_exist())
    else:
        tx.update(
            counter,
            actions=[NumberSequence.next_value.set(current + 1), NumberSequence.updated_at.set(now_iso())],
            condition=NumberSequence.next_value == current,
        )


def _transact(
    tenant_id: str,
    sequence: str,
    owner_id: str,
    number: str,
    counted: tuple[NumberSequence | None, int] | None,
    write: Write,
    extra: Write | None,
) -> None:
    """The counter (when automatic), the claim, then the caller's parts, in one transaction.

    Why a refusal happened is read back, not taken from the cancellation reasons: their order is
    the order PynamoDB sends the parts in (checks, deletes, puts, updates), not ours."""
    try:
        with TransactWrite(connection=common.connection()) as tx:
            if counted is not None:
                _counter_part(tx, tenant_id, sequence, counted[0], counted[1])
            tx.save(
                _claim_record(tenant_id, sequence, number, owner_id), condition=Entity.pk.does_not_exist()
            )
            if extra is not None:
                extra(tx, number)
            write(tx, number)
    except TransactWriteError as exc:
        if not (common.conditional_failed(exc) or common.transaction_conflict(exc)):
            raise
        holder = owner_of(tenant_id, sequence, number)
        if holder is not None and holder != owner_id:
            if counted is None:
                raise Conflict(f"{sequence} number {number!r} is already used by {holder}") from None
            raise _Lost(number_taken=True) from None
        if counted is not None:
            counter = _read_counter(tenant_id, sequence)
            now_at = int(counter.next_value) if counter is not None else None
            if now_at != (counted[1] if counted[0] is not None else None) or common.transaction_conflict(exc):
                raise _Lost(number_taken=False) from None
        raise  # the caller's own condition (e.g. the record exists: a retry), nothing taken


def _step_over(
    tenant_id: str, sequence: str, counter: NumberSequence | None, current: int, start: int
) -> None:
    """The counter's number is held (a person typed it): move the counter past it, alone and
    conditionally (a racing writer may have moved it already: then nothing to do)."""
    try:
        with TransactWrite(connection=common.connection()) as tx:
            _counter_part(tx, tenant_id, sequence, counter, current)
    except TransactWriteError as exc:
        if not common.conditional_failed(exc):
            raise
