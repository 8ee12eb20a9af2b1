"""Pricing a completed service visit: one test per rule (domain/service_pricing.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fieldbill.domain import invoicing
from fieldbill.domain import service_pricing as sp
from fieldbill.domain.model import GroupingMode, ItemStatus, LineKind, PriceSource

D = Decimal
START = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def _type(**kw) -> sp.ServiceType:
    values = {"id": "weekly", "name": "Weekly cleaning", "billing_method": "fixed", "price": D("85.00")}
    return sp.ServiceType(**(values | kw))


def _visit(minutes: float = 60, workers: int = 1, inventory=(), type_id: str = "weekly") -> sp.Visit:
    return sp.Visit(
        id="v1",
        tenant_id="t",
        contact_id="c1",
        service_date=date(2026, 11, 3),
        service_type_id=type_id,
        worker_ids=tuple(f"w{n}" for n in range(workers)),
        started_at=START,
        ended_at=START + timedelta(minutes=minutes),
        inventory=tuple(inventory),
    )


def _price(visit, types, items=None, prices=None, **settings) -> list[sp.PricedLine]:
    return sp.price_visit(
        visit,
        {t.id: t for t in types},
        {i.id: i for i in (items or [])},
        prices or {},
        sp.PricingSettings(**settings),
    )


def test_fixed_price_bills_one_unit_at_the_base_price_whatever_the_duration() -> None:
    (line,) = _price(_visit(minutes=137), [_type()])
    assert (line.line_kind, line.quantity, line.unit_price, line.amount) == (
        LineKind.SERVICE,
        D("1"),
        D("85.00"),
        D("85.00"),
    )
    assert line.why["billing_method"] == "fixed"


def test_hourly_bills_the_duration_in_hours() -> None:
    (line,) = _price(_visit(minutes=90), [_type(billing_method="hourly", price=D("60"))])
    assert (line.quantity, line.amount) == (D("1.500000"), D("90.00"))


def test_hourly_per_worker_multiplies_hours_by_the_number_of_workers() -> None:
    (line,) = _price(
        _visit(minutes=90, workers=3), [_type(billing_method="hourly_per_worker", price=D("60"))]
    )
    assert (line.quantity, line.amount, line.why["workers"]) == (D("4.500000"), D("270.00"), "3")


def test_round_up_goes_to_the_next_increment_never_down() -> None:
    stype = _type(billing_method="hourly", price=D("60"), round_up_minutes=15)
    (line,) = _price(_visit(minutes=61), [stype])
    assert line.quantity == D("1.250000")  # 61 min -> 75 min
    (exact,) = _price(_visit(minutes=60), [stype])
    assert exact.quantity == D("1.000000")  # already on the increment: unchanged
    assert line.why["rounded_minutes"] == "75"


def test_minimum_hours_raise_a_short_visit_and_apply_per_worker() -> None:
    stype = _type(
        billing_method="hourly_per_worker", price=D("50"), minimum_hours=D("1"), round_up_minutes=15
    )
    (line,) = _price(_visit(minutes=20, workers=2), [stype])
    assert (line.quantity, line.amount, line.why["minimum_applied"]) == (D("2.000000"), D("100.00"), "true")
    (longer,) = _price(_visit(minutes=80, workers=2), [stype])
    assert longer.why["minimum_applied"] == "false"


def test_the_trip_fee_type_is_added_as_its_own_line_to_types_that_include_it() -> None:
    fee = _type(id="trip", name="Trip fee", price=D("15.00"))
    with_fee = _type(trip_fee_id="trip")
    lines = _price(_visit(), [with_fee, fee])
    assert [(ln.line_kind, ln.suffix, ln.amount) for ln in lines] == [
        (LineKind.SERVICE, "service", D("85.00")),
        (LineKind.TRIP_FEE, "trip_fee", D("15.00")),
    ]
    # a type without the flag gets no trip fee
    assert len(_price(_visit(), [_type(), fee])) == 1


def test_customer_price_wins_over_the_list_price_when_the_company_uses_customer_prices() -> None:
    salt = sp.InventoryItem(id="salt", name="Salt bag", price=D("12.00"), taxable=True)
    visit = _visit(inventory=[sp.UsedItem(item_id="salt", quantity=D("2"), unit_price=D("11.50"))])
    prices = {"weekly": D("70.00"), "salt": D("10.00")}
    service, used = _price(visit, [_type()], [salt], prices, pricing_source="customer")
    assert (service.unit_price, service.price_source) == (D("70.00"), PriceSource.CUSTOMER)
    assert (used.unit_price, used.amount, used.price_source) == (D("10.00"), D("20.00"), PriceSource.CUSTOMER)
    assert service.why["list_price"] == "85.00"


def test_the_company_setting_list_flips_back_to_list_prices() -> None:
    salt = sp.InventoryItem(id="salt", name="Salt bag", price=D("12.00"))
    visit = _visit(inventory=[sp.UsedItem(item_id="salt", quantity=D("2"), unit_price=D("11.50"))])
    prices = {"weekly": D("70.00"), "salt": D("10.00")}
    service, used = _price(visit, [_type()], [salt], prices, pricing_source="list")
    assert (service.unit_price, service.price_source) == (D("85.00"), PriceSource.PRODUCT)
    # the snapshot taken when the salt was used is its list price
    assert (used.unit_price, used.price_source) == (D("11.50"), PriceSource.SNAPSHOT)
    assert service.why["customer_price"] == "70.00"  # shown, not used


def test_surcharge_is_a_percentage_of_the_visit_rounded_half_up_to_cents() -> None:
    lines = _price(_visit(), [_type(price=D("85.05"))], surcharge_percent=D("3"))
    surcharge = lines[-1]
    # 3% of 85.05 = 2.5515 -> 2.55
    assert (surcharge.line_kind, surcharge.amount, surcharge.quantity) == (
        LineKind.SURCHARGE,
        D("2.55"),
        D("1"),
    )
    half = _price(_visit(), [_type(price=D("50.50"))], surcharge_percent=D("1"))[-1]
    assert half.amount == D("0.51")  # 0.505 -> 0.51 (half-up, not banker's)


def test_remove_zero_lines_drops_free_lines_only_when_the_company_asks() -> None:
    fee = _type(id="trip", name="Trip fee", price=D("0.00"))
    stype = _type(trip_fee_id="trip")
    kept = _price(_visit(), [stype, fee])
    assert [ln.line_kind for ln in kept] == [LineKind.SERVICE, LineKind.TRIP_FEE]
    removed = _price(_visit(), [stype, fee], remove_zero_lines=True)
    assert [ln.line_kind for ln in removed] == [LineKind.SERVICE]


def test_taxable_lines_follow_their_service_type_and_inventory_item_onto_the_invoice() -> None:
    salt = sp.InventoryItem(id="salt", name="Salt", price=D("10"), taxable=True)
    visit = _visit(inventory=[sp.UsedItem(item_id="salt", quantity=D("1"))])
    lines = _price(visit, [_type(taxable=False)], [salt], surcharge_percent=D("10"))
    items = sp.visit_items(visit, lines, ItemStatus.PENDING)
    assert [(i.id, i.taxable) for i in items] == [
        ("v1.service", False),
        ("v1.inventory.1", True),
        ("v1.surcharge", False),
    ]
    invoice = invoicing.build_invoice(
        items, run_id="r", grouping=GroupingMode.PER_CONTACT, issue_date=date(2026, 11, 30)
    )
    assert {ln.item_id: ln.taxable for ln in invoice.lines} == {
        "v1.service": False,
        "v1.inventory.1": True,
        "v1.surcharge": False,
    }
    # tax amounts are not computed here (the invoice's tax is wired in by the tax-code work)
    assert invoice.total == D("104.50")


def test_every_amount_is_decimal_and_equals_quantity_times_price_in_cents() -> None:
    stype = _type(billing_method="hourly_per_worker", price=D("33.33"), round_up_minutes=7)
    for minutes in (1, 13, 59, 61, 119, 241):
        for line in _price(_visit(minutes=minutes, workers=2), [stype], surcharge_percent=D("2.5")):
            assert isinstance(line.amount, Decimal) and isinstance(line.quantity, Decimal)
            assert line.amount == (line.quantity * line.unit_price).quantize(
                D("0.01"), rounding="ROUND_HALF_UP"
            )


def test_billing_status_comes_from_the_service_then_its_type_then_the_company() -> None:
    assert sp.resolve_billing_status("unbillable", "qbo", "local") is sp.BillingStatus.UNBILLABLE
    assert sp.resolve_billing_status(None, "qbd", "local") is sp.BillingStatus.QBD
    assert sp.resolve_billing_status(None, None, "qbo") is sp.BillingStatus.QBO
    with pytest.raises(ValueError):
        sp.resolve_billing_status("paper", None, None)


def test_a_quickbooks_desktop_invoice_and_service_show_the_qbd_badge() -> None:
    from fieldbill.domain import badges

    assert badges.destination_badge("quickbooks_desktop").badge is badges.Badge.QBD
    assert badges.invoice_badge("quickbooks_desktop", "not_synced", None).badge is badges.Badge.QBD
    assert sp.DESTINATIONS[sp.BillingStatus.QBD] == "quickbooks_desktop"
    assert sp.BADGES[sp.resolve_billing_status(None, "qbd", "qbo")] == "QBD"


# ---- The tax of a visit's invoice (domain/tax.py applies it to every new invoice)
def test_tax_falls_on_the_taxable_lines_only_once_per_invoice_half_up() -> None:
    from fieldbill.domain import tax

    salt = sp.InventoryItem(id="salt", name="Salt", price=D("10.05"), taxable=True)
    acid = sp.InventoryItem(id="acid", name="Acid", price=D("4.99"), taxable=False)
    visit = _visit(
        inventory=[sp.UsedItem(item_id="salt", quantity=D("3")), sp.UsedItem(item_id="acid", quantity=D("2"))]
    )
    lines = _price(visit, [_type(taxable=False)], [salt, acid], surcharge_percent=D("2"))
    invoice = invoicing.build_invoice(
        sp.visit_items(visit, lines, ItemStatus.PENDING),
        run_id="r",
        grouping=GroupingMode.PER_CONTACT,
        issue_date=date(2026, 11, 30),
    )
    rules = tax.TaxRules(codes={"ca": tax.TaxCode("ca", "California", D("7.25"))}, default_code="ca")
    taxed = tax.apply(invoice, rules)
    # subtotal: 85.00 + 30.15 (salt) + 9.98 (acid) + 2.50 surcharge (2 % of 125.13 = 2.5026)
    assert taxed.subtotal == D("127.63")
    # only salt is taxable: 30.15 x 7.25 % = 2.185875 -> 2.19 (half-up, once per invoice)
    assert {ln.item_id: ln.taxable for ln in taxed.lines} == {
        "v1.service": False,
        "v1.inventory.1": True,
        "v1.inventory.2": False,
        "v1.surcharge": False,
    }
    assert (taxed.tax_total, taxed.total) == (D("2.19"), D("129.82"))
    assert all(isinstance(v, Decimal) for v in (taxed.subtotal, taxed.tax_total, taxed.total))
