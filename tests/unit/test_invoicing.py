from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldbill.domain import money
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.domain.invoicing import generate_invoices, invoice_id
from fieldbill.domain.model import (
    BillableItem,
    GroupingMode,
    InvoiceStatus,
    ItemStatus,
    LineKind,
    PriceSource,
    ProductScope,
    SyncStatus,
)

G = GroupingMode
ISSUE = date(2024, 6, 1)


def item(
    id: str,
    *,
    contact: str = "c1",
    task: str = "task1",
    day: date = date(2024, 5, 6),
    qty: str = "1.5",
    price: str = "80",
    status: ItemStatus = ItemStatus.PENDING,
) -> BillableItem:
    q, p = Decimal(qty), Decimal(price)
    return BillableItem(
        id=id,
        tenant_id="t1",
        entry_id=id.split(".")[0],
        task_id=task,
        contact_id=contact,
        line_kind=LineKind.TASK_ENTRY,
        work_date=day,
        description="Pool service",
        product_id="default-work",
        product_name="Work",
        product_scope=ProductScope.DEFAULT,
        unit="hour",
        quantity=q,
        unit_price=p,
        price_source=PriceSource.TASK,
        amount=money.line_amount(q, p),
        status=status,
    )


ITEMS = [
    item("a.task_entry", contact="c1", task="t-a", day=date(2024, 5, 30)),
    item("b.task_entry", contact="c1", task="t-b", day=date(2024, 6, 2), qty="2"),
    item("c.task_entry", contact="c2", task="t-c", day=date(2024, 5, 1), price="33.333"),
    item("d.task_entry", contact="c1", task="t-a", day=date(2024, 5, 2)),
]


def _generate(items, mode=G.PER_CONTACT, run_id="run1", **kw):
    return generate_invoices(items, mode=mode, run_id=run_id, issue_date=ISSUE, **kw)


def test_per_contact_gives_one_invoice_per_contact() -> None:
    # Given items of two contacts / When generated per contact
    invoices = _generate(ITEMS, G.PER_CONTACT)
    # Then one draft invoice each, lines in (work date, item id) order
    assert [(i.contact_id, i.item_ids) for i in invoices] == [
        ("c1", ("d.task_entry", "a.task_entry", "b.task_entry")),
        ("c2", ("c.task_entry",)),
    ]
    first = invoices[0]
    assert (first.status, first.sync_status) == (InvoiceStatus.DRAFT, SyncStatus.NOT_SYNCED)
    assert [line.line_no for line in first.lines] == [1, 2, 3]
    assert first.subtotal == first.total == Decimal("120.00") + Decimal("120.00") + Decimal("160.00")


def test_per_task_gives_one_invoice_per_task() -> None:
    # Given items of three tasks / When generated per task
    invoices = _generate(ITEMS, G.PER_TASK)
    # Then one invoice per task, each naming its task
    assert [(i.task_id, i.item_ids) for i in invoices] == [
        ("t-a", ("d.task_entry", "a.task_entry")),
        ("t-b", ("b.task_entry",)),
        ("t-c", ("c.task_entry",)),
    ]


def test_per_task_splits_a_task_whose_client_changed() -> None:
    # Given items of one task compiled for two different contacts
    items = [item("a.task_entry", contact="c1"), item("b.task_entry", contact="c2")]
    # When generated per task / Then one invoice per contact, never a mixed one
    assert [i.contact_id for i in _generate(items, G.PER_TASK)] == ["c1", "c2"]


def test_per_contact_month_splits_by_calendar_month_of_work_date() -> None:
    # Given c1 items in May and June / When generated per contact and month
    invoices = _generate(ITEMS, G.PER_CONTACT_MONTH)
    # Then May and June are separate invoices
    assert [(i.contact_id, i.period, i.item_ids) for i in invoices] == [
        ("c1", "2024-05", ("d.task_entry", "a.task_entry")),
        ("c1", "2024-06", ("b.task_entry",)),
        ("c2", "2024-05", ("c.task_entry",)),
    ]


def test_lines_carry_item_details_and_amounts() -> None:
    # Given one item priced 33.333 x 1.5 / When invoiced
    [invoice] = _generate([ITEMS[2]])
    [line] = invoice.lines
    # Then the line copies the item and its half-up amount
    assert (line.line_kind, line.product_id, line.product_name, line.unit) == (
        LineKind.TASK_ENTRY,
        "default-work",
        "Work",
        "hour",
    )
    assert (line.quantity, line.unit_price, line.amount) == (
        Decimal("1.5"),
        Decimal("33.333"),
        Decimal("50.00"),
    )


def test_due_date_defaults_to_net_30_and_is_configurable() -> None:
    # Given / When generated with and without net days
    default = _generate(ITEMS[:1])[0]
    net_14 = _generate(ITEMS[:1], net_days=14)[0]
    # Then the due date follows
    assert (default.issue_date, default.due_date) == (ISSUE, ISSUE + timedelta(days=30))
    assert net_14.due_date == ISSUE + timedelta(days=14)


def test_invoice_ids_are_deterministic_per_run_and_items() -> None:
    # Given the same selection in another order
    first = _generate(ITEMS, G.PER_TASK)
    retry = _generate(list(reversed(ITEMS)), G.PER_TASK)
    other_run = _generate(ITEMS, G.PER_TASK, run_id="run2")
    # Then a retry writes the same invoices; another run gets other ids
    assert first == retry
    assert [i.id for i in first] != [i.id for i in other_run]
    assert first[0].id == invoice_id("t1", "run1", ["a.task_entry", "d.task_entry"])


@pytest.mark.parametrize("status", [ItemStatus.INVOICED, ItemStatus.UNBILLABLE, ItemStatus.VOID])
def test_only_pending_items_can_be_invoiced(status) -> None:
    # Given a selected item that is not pending / When generated / Then Conflict
    with pytest.raises(Conflict):
        _generate([ITEMS[0], item("x.task_entry", status=status)])


def test_selecting_an_item_twice_is_invalid() -> None:
    # Given a duplicate selection / When generated / Then a validation error
    with pytest.raises(ValidationError):
        _generate([ITEMS[0], ITEMS[0]])


def test_negative_net_days_is_invalid() -> None:
    # Given negative net days / When generated / Then a validation error
    with pytest.raises(ValidationError):
        _generate(ITEMS, net_days=-1)


def test_nothing_selected_gives_no_invoice() -> None:
    # Given an empty selection / When generated / Then no invoice
    assert _generate([]) == []


# --- property: money is conserved, whatever the grouping -------------------------------------


@st.composite
def pending_items(draw: st.DrawFn) -> list[BillableItem]:
    count = draw(st.integers(1, 25))
    return [
        item(
            f"i{n}.task_entry",
            contact=draw(st.sampled_from(["c1", "c2", "c3"])),
            task=draw(st.sampled_from(["ta", "tb", "tc", "td"])),
            day=date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 400))),
            qty=str(Decimal(draw(st.integers(0, 10**8))).scaleb(-6)),
            price=str(Decimal(draw(st.integers(0, 10**9))).scaleb(-6)),
        )
        for n in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(pending_items(), st.sampled_from(GroupingMode))
def test_invoice_totals_conserve_item_amounts(items, mode) -> None:
    # Given random pending items / When generated with any grouping
    invoices = _generate(items, mode)
    # Then every item is on exactly one invoice and no cent is created or lost
    item_total = sum(i.amount for i in items)
    line_total = sum(line.amount for inv in invoices for line in inv.lines)
    assert sorted(i for inv in invoices for i in inv.item_ids) == sorted(i.id for i in items)
    assert line_total == item_total == sum(inv.total for inv in invoices)
    for inv in invoices:
        assert inv.total == inv.subtotal == sum(line.amount for line in inv.lines)
        assert [line.line_no for line in inv.lines] == list(range(1, len(inv.lines) + 1))


def test_grouping_mode_may_be_given_as_a_string() -> None:
    # Given the mode as the API sends it / When generated / Then same as the enum
    assert _generate(ITEMS, "per_task") == _generate(ITEMS, G.PER_TASK)


def test_unknown_grouping_mode_is_invalid() -> None:
    # Given an unknown mode / When generated / Then a validation error
    with pytest.raises(ValidationError):
        _generate(ITEMS, "per_planet")
