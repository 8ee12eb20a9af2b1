from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fieldbill.domain import money


def _half_up_cents_by_integers(qty_micros: int, price_micros: int) -> Decimal:
    """Independent of Decimal rounding: integer product at 1e-12, rounded half-up to 1e-2."""
    product = qty_micros * price_micros  # units of 1e-12
    unit = 10**10  # 1e-12 -> 1e-2
    magnitude = (abs(product) + unit // 2) // unit  # half away from zero, as QuickBooks rounds
    sign = -1 if product < 0 else 1
    return Decimal(sign * magnitude).scaleb(-2)


@given(
    qty_micros=st.integers(min_value=0, max_value=10**12),
    price_micros=st.integers(min_value=0, max_value=10**11),
)
def test_line_amount_matches_quickbooks_half_up(qty_micros: int, price_micros: int) -> None:
    # Given a quantity and a unit price with up to 6 decimals
    qty = Decimal(qty_micros).scaleb(-6)
    price = Decimal(price_micros).scaleb(-6)
    # When the line amount is computed
    amount = money.line_amount(qty, price)
    # Then it equals qty x price rounded half-up to cents, computed with integers only
    assert amount == _half_up_cents_by_integers(qty_micros, price_micros)
    assert amount.as_tuple().exponent == -2


def test_half_cent_rounds_up() -> None:
    # Given a product ending exactly on half a cent
    # When rounded / Then it goes up, not to even
    assert money.line_amount(Decimal("1"), Decimal("0.125")) == Decimal("0.13")
    assert money.line_amount(Decimal("3"), Decimal("0.005")) == Decimal("0.02")  # 0.015


def test_to_decimal_never_uses_binary_float() -> None:
    # Given a float input / When converted / Then the decimal digits are kept, not binary noise
    assert money.to_decimal(0.1) == Decimal("0.1")


def test_hours_from_duration_is_exact_to_six_places() -> None:
    # Given 1 h 20 min 1 s / When converted to hours / Then exact division kept to 6 places
    assert money.hours_from_duration(timedelta(hours=1, minutes=20, seconds=1)) == Decimal("1.333611")


def test_hours_from_minutes_keeps_six_places() -> None:
    # Given 25 minutes / When converted / Then 25/60 rounded half-up at 6 places
    assert money.hours_from_minutes(Decimal(25)) == Decimal("0.416667")
    assert money.hours_from_minutes(Decimal(1)) == Decimal("0.016667")
