from __future__ import annotations

from decimal import Decimal

import pytest

from fieldbill.domain.errors import NotFound
from fieldbill.domain.model import LineKind, PriceSource
from fieldbill.domain.pricing import price_line
from fieldbill.domain.products import default_product_spec
from tests.unit import factories as f

L = LineKind
P = PriceSource


def _price(line_kind, *, entry, task=None, contact=None, product=None, price_lists=None):
    return price_line(
        line_kind,
        entry=entry,
        task=task or f.task(),
        contact=contact or f.contact(),
        product=product or f.product("work"),
        price_lists=price_lists or {},
    )


# --- transport lines: snapshot -> product default -> task -> none ------------------------------


def test_transport_distance_prefers_entry_snapshot() -> None:
    # Given a snapshot price, a default product price and a task price
    entry = f.mileage_entry(snapshot_unit_price=Decimal("4.2"))
    task = f.task(billing=f.billing(unit_price=Decimal("80")))
    # When the distance line is priced
    price = _price(
        L.TRANSPORT_DISTANCE, entry=entry, task=task, product=default_product_spec("t1", L.TRANSPORT_DISTANCE)
    )
    # Then the snapshot wins
    assert (price.unit_price, price.source) == (Decimal("4.2"), P.SNAPSHOT)


def test_transport_distance_uses_default_product_price_before_task_price() -> None:
    # Given no snapshot, the default Transport product and a task price
    task = f.task(billing=f.billing(unit_price=Decimal("80")))
    # When priced
    price = _price(
        L.TRANSPORT_DISTANCE,
        entry=f.mileage_entry(),
        task=task,
        product=default_product_spec("t1", L.TRANSPORT_DISTANCE),
    )
    # Then the product's 5.0 per km applies
    assert (price.unit_price, price.source) == (Decimal("5"), P.PRODUCT)


def test_transport_time_uses_its_own_snapshot_then_default_price() -> None:
    # Given a mileage entry whose snapshot is a per-km price, and one with a time snapshot
    per_km_only = f.mileage_entry(minutes="30", snapshot_unit_price=Decimal("4.2"))
    with_time = f.mileage_entry(minutes="30", transport_time_snapshot_unit_price=Decimal("700"))
    product = default_product_spec("t1", L.TRANSPORT_TIME)
    # When the time lines are priced
    fallback = _price(L.TRANSPORT_TIME, entry=per_km_only, product=product)
    snap = _price(L.TRANSPORT_TIME, entry=with_time, product=product)
    # Then a per-km snapshot never prices hours
    assert (fallback.unit_price, fallback.source) == (Decimal("1000"), P.PRODUCT)
    assert (snap.unit_price, snap.source) == (Decimal("700"), P.SNAPSHOT)


def test_transport_falls_back_to_task_price() -> None:
    # Given an assigned transport product without a default price, and a task price
    task = f.task(billing=f.billing(unit_price=Decimal("2.75")))
    # When priced
    price = _price(
        L.TRANSPORT_DISTANCE, entry=f.mileage_entry(), task=task, product=f.product("km", unit="km")
    )
    # Then the task price applies
    assert (price.unit_price, price.source) == (Decimal("2.75"), P.TASK)


def test_transport_ignores_price_lists() -> None:
    # Given only a contact price list pricing the product
    contact = f.contact(price_list_id="pl")
    lists = {"pl": f.price_list("pl", km="9")}
    # When priced / Then the transport order has no price list step
    price = _price(
        L.TRANSPORT_DISTANCE,
        entry=f.mileage_entry(),
        contact=contact,
        product=f.product("km"),
        price_lists=lists,
    )
    assert (price.unit_price, price.source) == (Decimal(0), P.NONE)


# --- work, goods, expense: snapshot -> entry -> task -> price list -> product -> none ------------


@pytest.mark.parametrize("entry_factory", [f.goods_entry, f.expense_entry])
def test_goods_and_expense_snapshot_beats_entry_price(entry_factory) -> None:
    # Given an entry with its own price and a snapshot
    entry = entry_factory(price="4.50", snapshot_unit_price=Decimal("3.99"))
    line_kind = L.GOODS if entry_factory is f.goods_entry else L.EXPENSE
    # When priced / Then the snapshot wins
    price = _price(line_kind, entry=entry)
    assert (price.unit_price, price.source) == (Decimal("3.99"), P.SNAPSHOT)


def test_goods_entry_price_beats_task_price() -> None:
    # Given a goods entry price and a task price
    task = f.task(billing=f.billing(unit_price=Decimal("80")))
    # When priced / Then the entry's own price wins
    price = _price(L.GOODS, entry=f.goods_entry(price="4.50"), task=task)
    assert (price.unit_price, price.source) == (Decimal("4.5"), P.ENTRY)


def test_time_line_uses_task_price_before_price_list() -> None:
    # Given a task price and a contact price list for the product
    task = f.task(billing=f.billing(unit_price=Decimal("85")))
    contact = f.contact(price_list_id="pl")
    # When priced / Then the task's agreed rate wins
    price = _price(
        L.TASK_ENTRY,
        entry=f.time_entry(),
        task=task,
        contact=contact,
        price_lists={"pl": f.price_list("pl", work="70")},
    )
    assert (price.unit_price, price.source) == (Decimal("85"), P.TASK)


def test_task_price_list_beats_contact_price_list() -> None:
    # Given a task price list and a contact price list both pricing the product
    task = f.task(billing=f.billing(price_list_id="task-pl"))
    contact = f.contact(price_list_id="contact-pl")
    lists = {
        "task-pl": f.price_list("task-pl", work="60"),
        "contact-pl": f.price_list("contact-pl", work="70"),
    }
    # When priced / Then the task's list wins
    price = _price(L.TASK_ENTRY, entry=f.time_entry(), task=task, contact=contact, price_lists=lists)
    assert (price.unit_price, price.source) == (Decimal("60"), P.PRICE_LIST)


def test_contact_price_list_applies_without_task_list() -> None:
    # Given only a contact price list
    contact = f.contact(price_list_id="pl")
    # When priced / Then its price applies
    price = _price(
        L.TASK_ENTRY, entry=f.time_entry(), contact=contact, price_lists={"pl": f.price_list("pl", work="70")}
    )
    assert (price.unit_price, price.source) == (Decimal("70"), P.PRICE_LIST)


def test_product_default_price_is_the_last_source() -> None:
    # Given a price list that does not price the product, and a product default price
    contact = f.contact(price_list_id="pl")
    # When priced / Then the product's default applies
    price = _price(
        L.TASK_ENTRY,
        entry=f.time_entry(),
        contact=contact,
        product=f.product("work", price="55"),
        price_lists={"pl": f.price_list("pl", other="1")},
    )
    assert (price.unit_price, price.source) == (Decimal("55"), P.PRODUCT)


@pytest.mark.parametrize(
    ("line_kind", "entry"),
    [
        (L.TASK_ENTRY, f.time_entry()),
        (L.GOODS, f.goods_entry(price=None)),
        (L.EXPENSE, f.expense_entry(price=None)),
        (L.TRANSPORT_DISTANCE, f.mileage_entry()),
    ],
)
def test_no_source_prices_at_zero(line_kind, entry) -> None:
    # Given no snapshot, entry, task, price list or product price
    # When priced
    price = _price(line_kind, entry=entry, product=f.product("bare"))
    # Then the price is zero and says so
    assert (price.unit_price, price.source) == (Decimal(0), P.NONE)


def test_unit_price_kept_to_six_places() -> None:
    # Given a price with more than 6 decimals / When priced / Then half-up at 6 places
    price = _price(L.GOODS, entry=f.goods_entry(price="1.23456789"))
    assert price.unit_price == Decimal("1.234568")


def test_missing_price_list_is_not_found() -> None:
    # Given a contact naming a price list that was not loaded
    # When a time line needs it / Then NotFound
    with pytest.raises(NotFound):
        _price(L.TASK_ENTRY, entry=f.time_entry(), contact=f.contact(price_list_id="gone"))
