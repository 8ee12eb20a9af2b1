"""Gapless per-tenant numbers taken in the same transaction as the record (store/numbering.py),
on the local DynamoDB: a retry or a refused write never burns or repeats a number."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.domain import model as dm
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.store import common, numbering
from fieldbill.store.models import META, BillableItem, Entity, Invoice, Team
from fieldbill.store.numbering import Mode
from fieldbill.workflows.billing import pages as billing
from tests.integration.seed import seed_work

SEQ = "invoice"


def _team_writer(tenant: str, team_id: str, taken: dict[str, str | None]):
    """A record (a team) written with its number, as a store module would."""

    def write(tx: TransactWrite, number: str | None) -> None:
        taken[team_id] = number
        record = Team(pk=Team.key(tenant, team_id), sk=META, tenant_id=tenant, id=team_id, name=f"n {number}")
        tx.save(record, condition=Entity.pk.does_not_exist())

    return write


def _write(tenant: str, team_id: str, mode: Mode = Mode.AUTOMATIC_FIXED, requested: str | None = None):
    taken: dict[str, str | None] = {}
    return numbering.write_numbered(
        tenant, SEQ, team_id, _team_writer(tenant, team_id, taken), mode=mode, requested=requested
    )


def test_numbers_follow_each_other_from_the_start(stack, tenant_id):
    assert numbering.next_number(tenant_id, SEQ) == 1001
    assert [_write(tenant_id, f"t{i}") for i in range(3)] == ["1001", "1002", "1003"]
    assert numbering.next_number(tenant_id, SEQ) == 1004
    assert numbering.owner_of(tenant_id, SEQ, "1002") == "t1"


def test_a_retry_of_the_same_record_burns_no_number(stack, tenant_id):
    assert _write(tenant_id, "a") == "1001"
    with pytest.raises(TransactWriteError):
        _write(tenant_id, "a")  # the record exists: the caller's condition refuses, nothing is taken
    assert numbering.next_number(tenant_id, SEQ) == 1002
    assert _write(tenant_id, "b") == "1002"


def test_a_refused_write_burns_no_number(stack, tenant_id):
    def refused(tx: TransactWrite, number: str | None) -> None:
        ghost = Team(Team.key(tenant_id, "ghost"), META)
        tx.update(ghost, actions=[Team.name.set("x")], condition=Entity.pk.exists())  # no such record

    with pytest.raises(TransactWriteError):
        numbering.write_numbered(tenant_id, SEQ, "ghost", refused, mode=Mode.AUTOMATIC_FIXED)
    assert numbering.next_number(tenant_id, SEQ) == 1001
    assert numbering.owner_of(tenant_id, SEQ, "1001") is None


def test_writers_racing_get_distinct_numbers_without_a_gap(stack, tenant_id):
    got: list[str | None] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            got.append(_write(tenant_id, f"r{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(int(n) for n in got if n) == list(range(1001, 1009))


def test_a_typed_number_is_claimed_once_and_the_counter_steps_over_it(stack, tenant_id):
    assert _write(tenant_id, "typed", Mode.AUTOMATIC_OVERRIDABLE, requested=" 1001 ") == "1001"
    with pytest.raises(Conflict):
        _write(tenant_id, "again", Mode.AUTOMATIC_OVERRIDABLE, requested="1001")
    assert common.find(Team, Team.key(tenant_id, "again")) is None  # nothing written
    # The counter was still at 1001: the next automatic number steps over the typed one.
    assert _write(tenant_id, "auto", Mode.AUTOMATIC_OVERRIDABLE) == "1002"


def test_fixed_numbering_refuses_a_typed_number_and_none_allocates_nothing(stack, tenant_id):
    with pytest.raises(ValidationError) as caught:
        _write(tenant_id, "x", Mode.AUTOMATIC_FIXED, requested="77")
    assert caught.value.field == "number"
    assert _write(tenant_id, "y", Mode.NONE) is None
    assert common.find(Team, Team.key(tenant_id, "y")) is not None
    assert numbering.next_number(tenant_id, SEQ) == 1001


def test_renumber_hands_the_old_number_to_its_holder_elsewhere(stack, tenant_id):
    assert _write(tenant_id, "inv") == "1001"

    def write(tx: TransactWrite, number: str | None) -> None:
        record = Team(Team.key(tenant_id, "inv"), META)
        tx.update(record, actions=[Team.name.set(f"n {number}")], condition=Entity.pk.exists())

    assert numbering.renumber(tenant_id, SEQ, "inv", "1001", "quickbooks:Invoice:7", write) == "1002"
    assert numbering.owner_of(tenant_id, SEQ, "1001") == "quickbooks:Invoice:7"
    assert numbering.owner_of(tenant_id, SEQ, "1002") == "inv"
    assert common.get(Team, Team.key(tenant_id, "inv")).name == "n 1002"


def test_generated_local_invoices_are_numbered_in_their_write(stack, tenant_id):
    seed_work(tenant_id, contacts=3, entries_per_contact=1)
    billing.compile_all(tenant_id, "t", billing.Scope())
    items = [
        i
        for i in Entity.gsi1.query(BillableItem.status_key(tenant_id, "pending"))
        if isinstance(i, BillableItem)
    ]
    first = billing.generate(
        tenant_id, "t", "run1", dm.GroupingMode.PER_CONTACT, items, date(2026, 11, 1), dm.Destination.LOCAL
    )
    again = billing.generate(
        tenant_id, "t", "run1", dm.GroupingMode.PER_CONTACT, items, date(2026, 11, 1), dm.Destination.LOCAL
    )
    assert again.invoice_ids == [] or set(again.invoice_ids) <= set(first.invoice_ids)
    stored = [common.get(Invoice, Invoice.key(tenant_id, i)) for i in first.invoice_ids]
    assert sorted(int(r.number) for r in stored) == [1001, 1002, 1003]
    assert numbering.next_number(tenant_id, SEQ) == 1004  # the repeated generate took none


def test_quickbooks_invoices_without_custom_numbers_get_none_of_ours(stack, tenant_id):
    seed_work(tenant_id, contacts=1, entries_per_contact=1)
    billing.compile_all(tenant_id, "t", billing.Scope())
    items = [
        i
        for i in Entity.gsi1.query(BillableItem.status_key(tenant_id, "pending"))
        if isinstance(i, BillableItem)
    ]
    done = billing.generate(tenant_id, "t", "run1", dm.GroupingMode.PER_CONTACT, items, date(2026, 11, 1))
    assert common.get(Invoice, Invoice.key(tenant_id, done.invoice_ids[0])).number is None
    assert numbering.next_number(tenant_id, SEQ) == 1001


def _hinted(tenant: str, team_id: str, hint: numbering.Hint) -> str | None:
    taken: dict[str, str | None] = {}
    return numbering.write_numbered(
        tenant, SEQ, team_id, _team_writer(tenant, team_id, taken), mode=Mode.AUTOMATIC_FIXED, hint=hint
    )


def test_a_hinted_writer_reads_the_counter_once_and_a_stale_hint_still_takes_no_number_twice(
    stack, tenant_id
):
    """A bulk writer keeps the counter as its last write left it (no read per record); another
    writer or a typed number moving the counter meanwhile makes the hint stale: the counter's
    condition refuses it and the writer reads again, with no gap and no number twice."""
    from local import moto_dynamodb

    hint = numbering.Hint()
    assert _hinted(tenant_id, "h0", hint) == "1001"
    moto_dynamodb.REQUESTS.clear()
    assert _hinted(tenant_id, "h1", hint) == "1002"
    assert dict(moto_dynamodb.REQUESTS) == {"TransactWriteItems": 1}  # no GetItem of the counter
    assert _write(tenant_id, "other") == "1003"  # another writer: the hint says 1003 still
    assert _write(tenant_id, "typed", Mode.AUTOMATIC_OVERRIDABLE, requested="1005") == "1005"
    assert _hinted(tenant_id, "h2", hint) == "1004"
    assert _hinted(tenant_id, "h3", hint) == "1006"  # steps over the typed 1005
    owners = {n: numbering.owner_of(tenant_id, SEQ, str(n)) for n in range(1001, 1007)}
    assert owners == {1001: "h0", 1002: "h1", 1003: "other", 1004: "h2", 1005: "typed", 1006: "h3"}


# ---- A writer of many records in a row skips the counter's read (make bench "services")
def test_a_hint_skips_the_counters_read_and_a_stale_one_still_takes_the_next_number(stack, tenant_id):
    from local import moto_dynamodb

    hint = numbering.Hint()

    def hinted(team_id: str) -> str | None:
        taken: dict[str, str | None] = {}
        writer = _team_writer(tenant_id, team_id, taken)
        return numbering.write_numbered(tenant_id, SEQ, team_id, writer, mode=Mode.AUTOMATIC_FIXED, hint=hint)

    # Given a first record written with a hint (its commit leaves the counter's next value in it)
    assert hinted("h1") == "1001" and hint.next_value == 1002
    # When the next is written, Then one transaction and no read of the counter
    moto_dynamodb.REQUESTS.clear()
    assert hinted("h2") == "1002"
    assert dict(moto_dynamodb.REQUESTS) == {"TransactWriteItems": 1}
    # Given another writer takes a number meanwhile (the hint is stale)
    assert _write(tenant_id, "other") == "1003"
    # Then the hinted writer still takes the next one: no duplicate, no gap
    assert hinted("h3") == "1004"
    assert [numbering.owner_of(tenant_id, SEQ, str(n)) for n in range(1001, 1005)] == [
        "h1",
        "h2",
        "other",
        "h3",
    ]
