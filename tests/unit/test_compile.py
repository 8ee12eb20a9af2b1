from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldbill.domain.compile import billable_item_id, compile_task, is_eligible, line_kinds_for
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import (
    EntryKind,
    EntryStatus,
    ItemStatus,
    LineKind,
    PriceSource,
    ProductScope,
)
from tests.unit import factories as f

L = LineKind


def _compile(entries, *, task=None, contact=None, assignments=None, price_lists=None, products=None):
    t = task or f.task()
    c = contact if contact is not None else (f.contact() if t.client_contact_id else None)
    return compile_task(t, c, entries, assignments or f.assignments(), price_lists or {}, products or {})


def test_time_entry_becomes_one_pending_task_entry_item() -> None:
    # Given a stopped 90-minute entry on a billable task priced 80/hour
    task = f.task(billing=f.billing(unit_price=Decimal("80")))
    # When compiled
    [item] = _compile([f.time_entry(minutes=90)], task=task)
    # Then one pending item of 1.5 hours at 80 = 120.00, with its provenance
    assert item.id == "e1.task_entry"
    assert (item.line_kind, item.status, item.quantity, item.amount) == (
        L.TASK_ENTRY,
        ItemStatus.PENDING,
        Decimal("1.5"),
        Decimal("120.00"),
    )
    assert (item.product_id, item.product_scope, item.price_source) == (
        "default-work",
        ProductScope.DEFAULT,
        PriceSource.TASK,
    )
    assert (item.contact_id, item.task_id, item.entry_id, item.work_date) == (
        "c1",
        "task1",
        "e1",
        f.START.date(),
    )


def test_hours_are_exact_duration_over_3600() -> None:
    # Given a 1 h 20 min 1 s entry
    entry = f.time_entry(stopped_at=f.START + timedelta(seconds=4801))
    # When compiled / Then the quantity is 4801/3600 to 6 places
    [item] = _compile([entry])
    assert item.quantity == Decimal("1.333611")


def test_goods_and_expense_lines_use_entry_quantity() -> None:
    # Given a goods and an expense entry
    entries = [f.goods_entry(qty="3", price="4.50"), f.expense_entry(qty="2", price="12.345")]
    # When compiled
    items = {i.line_kind: i for i in _compile(entries)}
    # Then each becomes its own kind with its quantity and rounded amount
    assert (items[L.GOODS].quantity, items[L.GOODS].amount) == (Decimal(3), Decimal("13.50"))
    assert (items[L.EXPENSE].quantity, items[L.EXPENSE].amount) == (Decimal(2), Decimal("24.69"))


def test_mileage_without_minutes_yields_distance_only() -> None:
    # Given mileage entries without minutes and with zero minutes
    entries = [f.mileage_entry("m1", km="12.5"), f.mileage_entry("m2", km="3", minutes="0")]
    # When compiled
    items = _compile(entries)
    # Then only distance lines, priced at the default 5.0/km
    assert [(i.id, i.quantity, i.amount) for i in items] == [
        ("m1.transport_distance", Decimal("12.5"), Decimal("62.50")),
        ("m2.transport_distance", Decimal("3"), Decimal("15.00")),
    ]


def test_mileage_with_minutes_adds_transport_time_in_hours() -> None:
    # Given 25 minutes of transport
    entry = f.mileage_entry(km="10", minutes="25")
    # When compiled
    items = {i.line_kind: i for i in _compile([entry])}
    # Then a transport_time line of 25/60 h at 1000.0/h, rounded half-up
    time = items[L.TRANSPORT_TIME]
    assert time.id == "m1.transport_time"
    assert time.quantity == Decimal("0.416667")
    assert time.amount == Decimal("416.67")
    assert (time.product_name, time.unit) == ("Transport Time", "hour")
    assert items[L.TRANSPORT_DISTANCE].unit == "km"


def test_zero_priced_line_is_compiled_not_dropped() -> None:
    # Given a time entry with no pricing source anywhere
    # When compiled
    [item] = _compile([f.time_entry()])
    # Then it is still a pending line, at zero, marked price_source none
    assert (item.unit_price, item.amount, item.price_source) == (
        Decimal(0),
        Decimal("0.00"),
        PriceSource.NONE,
    )


def test_item_records_resolution_and_price_sources() -> None:
    # Given a contact assignment with a price list price for it
    products = {"svc": f.product("svc", price="40")}
    contact = f.contact(price_list_id="pl")
    a = f.assignments(f.assign(ProductScope.CONTACT, "c1", L.TASK_ENTRY, "svc"))
    # When compiled
    [item] = _compile(
        [f.time_entry(minutes=60)],
        contact=contact,
        assignments=a,
        products=products,
        price_lists={"pl": f.price_list("pl", svc="65")},
    )
    # Then the user can see why the line costs 65
    assert (item.product_id, item.product_scope, item.price_source, item.amount) == (
        "svc",
        ProductScope.CONTACT,
        PriceSource.PRICE_LIST,
        Decimal("65.00"),
    )


@pytest.mark.parametrize(
    ("task_kw", "entry_kw"),
    [
        ({}, {"stopped_at": None}),  # running time entry
        ({}, {"status": EntryStatus.BILLED}),  # already billed
        ({"billable": False}, {}),  # non-billable task
        ({"client_contact_id": None}, {}),  # client is not a contact
    ],
    ids=["unstopped", "billed", "non-billable-task", "no-contact-client"],
)
def test_ineligible_entries_are_excluded(task_kw, entry_kw) -> None:
    # Given an entry that fails one eligibility rule
    task = f.task(**task_kw)
    entry = f.time_entry(**entry_kw)
    # When compiled / Then no item, and no error
    assert not is_eligible(task, entry)
    assert _compile([entry], task=task) == []


def test_compiling_twice_gives_the_same_item_ids() -> None:
    # Given the same entries
    entries = [f.time_entry(), f.mileage_entry(minutes="5"), f.goods_entry()]
    # When compiled twice, in different input orders
    first = _compile(entries)
    second = _compile(list(reversed(entries)))
    # Then the items (ids included) are identical, ids derived from (entry id, line kind)
    assert first == second
    assert {i.id for i in first} == {
        billable_item_id("e1", L.TASK_ENTRY),
        "m1.transport_distance",
        "m1.transport_time",
        "g1.goods",
    }


def test_entry_of_another_task_is_rejected() -> None:
    # Given an entry of another task / When compiled / Then a validation error, not a silent bill
    with pytest.raises(ValidationError):
        _compile([f.time_entry(task_id="other")])


def test_wrong_contact_is_rejected() -> None:
    # Given a contact that is not the task's client / When compiled / Then a validation error
    with pytest.raises(ValidationError):
        _compile([f.time_entry()], contact=f.contact(id="c2"))


def test_time_entry_cannot_stop_before_it_starts() -> None:
    # Given / When an entry stops before it starts / Then it is invalid
    with pytest.raises(ValidationError):
        f.time_entry(stopped_at=f.START - timedelta(minutes=1))


def test_float_money_is_refused() -> None:
    # Given / When a float unit price is given / Then it is refused, never converted silently
    with pytest.raises(ValidationError):
        f.goods_entry(unit_price=4.5)


# --- property: one item per line kind of every eligible entry, none for the rest --------------


@st.composite
def entries(draw: st.DrawFn) -> list:
    result = []
    for n in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(EntryKind))
        status = draw(st.sampled_from(EntryStatus))
        minutes = draw(st.integers(0, 600))
        entry_id = f"e{n}"
        if kind is EntryKind.TIME:
            stopped = draw(st.booleans())
            stop = f.START + timedelta(minutes=minutes) if stopped else None
            entry = f.time_entry(entry_id, stopped_at=stop, status=status)
        elif kind is EntryKind.MILEAGE:
            transport = draw(st.sampled_from([None, "0", str(minutes)]))
            entry = f.mileage_entry(entry_id, km="7.3", minutes=transport, status=status)
        elif kind is EntryKind.GOODS:
            entry = f.goods_entry(entry_id, status=status)
        else:
            entry = f.expense_entry(entry_id, price=None, status=status)
        result.append(entry)
    return result


@settings(max_examples=150, deadline=None)
@given(entries(), st.booleans(), st.booleans())
def test_every_eligible_entry_yields_one_item_per_line_kind(entry_list, billable, has_contact) -> None:
    # Given random entries on a task that may or may not be billable / have a contact client
    task = f.task(billable=billable, client_contact_id="c1" if has_contact else None)
    # When compiled
    items = _compile(entry_list, task=task)
    # Then eligible entries give exactly their line kinds, ineligible ones nothing
    expected = sorted(
        billable_item_id(e.id, kind)
        for e in entry_list
        if billable and has_contact and e.status is EntryStatus.UNBILLED and e.is_stopped
        for kind in line_kinds_for(e)
    )
    assert sorted(i.id for i in items) == expected
    assert all(i.status is ItemStatus.PENDING for i in items)
    for e in entry_list:
        if e.kind is EntryKind.MILEAGE:
            assert (L.TRANSPORT_TIME in line_kinds_for(e)) == bool(e.transport_minutes)


def test_store_strings_become_enum_members() -> None:
    # Given kind and status as plain strings (as stored)
    entry = f.time_entry(kind="time", status="unbilled")
    # When built / Then they are enum members and the entry compiles
    assert entry.kind is EntryKind.TIME and entry.status is EntryStatus.UNBILLED
    assert len(_compile([entry])) == 1


def test_unknown_entry_kind_is_invalid() -> None:
    # Given / When an entry of an unknown kind is built / Then a validation error
    with pytest.raises(ValidationError):
        f.time_entry(kind="teleport")
