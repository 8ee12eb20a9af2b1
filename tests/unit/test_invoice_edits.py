"""Editing an invoice (pure): what may change, and the totals, dates and items an edit leaves."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain import invoice_edits as ed
from fieldbill.domain.errors import InvalidTransition, ValidationError
from fieldbill.domain.model import InvoiceLine, InvoiceStatus, LineKind
from fieldbill.domain.states import is_overdue, status_for_balance


def _line(no: int, qty: str = "1", price: str = "80.00", item: str | None = "i") -> InvoiceLine:
    q, p = Decimal(qty), Decimal(price)
    return InvoiceLine(
        line_no=no,
        item_id=f"{item}{no}" if item else None,
        line_kind=LineKind.TASK_ENTRY,
        work_date=date(2026, 10, no),
        description=f"work {no}",
        product_id="p",
        product_name="Service",
        unit="h",
        quantity=q,
        unit_price=p,
        amount=(q * p).quantize(Decimal("0.01")),
    )


def _content(
    status: InvoiceStatus = InvoiceStatus.DRAFT, paid: str = "0", lines: int = 3
) -> ed.InvoiceContent:
    return ed.InvoiceContent(
        status=status,
        lines=tuple(_line(n) for n in range(1, lines + 1)),
        issue_date=date(2026, 10, 31),
        due_date=date(2026, 11, 30),
        terms_days=30,
        paid_and_credited=Decimal(paid),
    )


def test_a_kept_line_changes_and_a_removed_line_releases_its_item() -> None:
    done = ed.apply_edit(
        _content(),
        ed.InvoiceEdit(
            lines=(ed.LineChange(line_no=1, quantity=Decimal("1.333333")), ed.LineChange(line_no=3))
        ),
    )
    # 1.333333 x 80.00 = 106.66664 -> 106.67 (half-up to cents), plus line 3's 80.00
    assert [ln.amount for ln in done.lines] == [Decimal("106.67"), Decimal("80.00")]
    assert (done.subtotal, done.total, done.balance) == (
        Decimal("186.67"),
        Decimal("186.67"),
        Decimal("186.67"),
    )
    assert done.released_item_ids == ("i2",)
    assert done.changed == ("lines",)


def test_a_new_line_needs_its_price_quantity_and_a_known_product() -> None:
    with pytest.raises(ValidationError) as caught:
        ed.apply_edit(_content(), ed.InvoiceEdit(lines=(ed.LineChange(description="chlorine"),)))
    assert caught.value.field == "lines[0].quantity"
    with pytest.raises(ValidationError) as caught:
        change = ed.LineChange(description="x", quantity=Decimal(1), unit_price=Decimal(1), product_id="gone")
        ed.apply_edit(_content(), ed.InvoiceEdit(lines=(change,)))
    assert caught.value.field == "lines[0].product_id"
    added = ed.LineChange(
        description="Chlorine",
        quantity=Decimal(3),
        unit_price=Decimal("4.99"),
        product_id="p2",
        product_name="Chem",
    )
    done = ed.apply_edit(_content(lines=1), ed.InvoiceEdit(lines=(ed.LineChange(line_no=1), added)))
    assert [(ln.line_no, ln.item_id, ln.line_kind, ln.amount) for ln in done.lines] == [
        (1, "i1", LineKind.TASK_ENTRY, Decimal("80.00")),
        (2, None, LineKind.MANUAL, Decimal("14.97")),
    ]


@pytest.mark.parametrize(
    ("edit", "due"),
    [
        (ed.InvoiceEdit(terms_days=15), date(2026, 11, 15)),
        (ed.InvoiceEdit(issue_date=date(2026, 11, 1)), date(2026, 12, 1)),  # terms kept
        (ed.InvoiceEdit(issue_date=date(2026, 11, 1), due_date=date(2026, 11, 2)), date(2026, 11, 2)),
    ],
)
def test_the_due_date_follows_terms_and_issue_date_unless_given(edit: ed.InvoiceEdit, due: date) -> None:
    assert ed.apply_edit(_content(), edit).due_date == due


def test_refused_edits() -> None:
    with pytest.raises(ValidationError, match="due_date"):
        ed.apply_edit(_content(), ed.InvoiceEdit(due_date=date(2026, 10, 1)))
    with pytest.raises(ValidationError, match="lines"):
        ed.apply_edit(_content(), ed.InvoiceEdit(lines=()))
    with pytest.raises(ValidationError, match=r"lines\[1\].line_no"):
        ed.apply_edit(_content(), ed.InvoiceEdit(lines=(ed.LineChange(line_no=1), ed.LineChange(line_no=1))))
    for status in (
        InvoiceStatus.PAID,
        InvoiceStatus.PARTIALLY_PAID,
        InvoiceStatus.VOID,
        InvoiceStatus.DELETED,
    ):
        with pytest.raises(InvalidTransition):
            ed.apply_edit(_content(status), ed.InvoiceEdit(terms_days=10))
    with pytest.raises(InvalidTransition, match="paid or credited"):
        ed.apply_edit(_content(InvoiceStatus.OPEN, paid="5.00"), ed.InvoiceEdit(terms_days=10))


@given(
    quantities=st.lists(
        st.one_of(st.none(), st.decimals(min_value="0.000001", max_value="999", places=6)),
        min_size=1,
        max_size=6,
    )
)
def test_property_total_is_the_sum_of_lines_and_every_dropped_item_is_released(quantities) -> None:
    content = _content(lines=6)
    changes = tuple(
        ed.LineChange(line_no=n, quantity=q)
        for n, q in enumerate(quantities, start=1)
        if q is not None or n % 2
    ) or (ed.LineChange(line_no=1),)
    done = ed.apply_edit(content, ed.InvoiceEdit(lines=changes))
    assert done.total == sum((ln.amount for ln in done.lines), Decimal(0))
    assert all(ln.amount == (ln.quantity * ln.unit_price).quantize(Decimal("0.01")) for ln in done.lines)
    kept = {c.line_no for c in changes}
    assert set(done.released_item_ids) == {f"i{n}" for n in range(1, 7) if n not in kept}


def test_status_for_balance_and_overdue() -> None:
    assert status_for_balance(InvoiceStatus.OPEN, Decimal("100"), Decimal("0")) is InvoiceStatus.PAID
    assert (
        status_for_balance(InvoiceStatus.PAID, Decimal("100"), Decimal("40")) is InvoiceStatus.PARTIALLY_PAID
    )
    assert (
        status_for_balance(InvoiceStatus.PARTIALLY_PAID, Decimal("100"), Decimal("100")) is InvoiceStatus.OPEN
    )
    assert status_for_balance(InvoiceStatus.DRAFT, Decimal("100"), Decimal("0")) is InvoiceStatus.DRAFT
    today = date(2026, 12, 3)
    assert is_overdue(InvoiceStatus.OPEN, date(2026, 12, 2), today)
    assert not is_overdue(InvoiceStatus.OPEN, date(2026, 12, 3), today)
    assert not is_overdue(InvoiceStatus.PAID, date(2026, 1, 1), today)
    assert not is_overdue(InvoiceStatus.DRAFT, date(2026, 1, 1), today)
