"""Money and quantity rules, written down once.

QuickBooks checks every sales line: Amount == round_half_up(Qty * UnitPrice, 2) (error 6070
otherwise), so the same rule is applied here to every line we compute.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
# Quantities keep enough precision for a minute in hours (1/60 = 0.016666...) and a metre in km.
QUANTITY_PLACES = Decimal("0.000001")
UNIT_PRICE_PLACES = Decimal("0.000001")


def to_decimal(value: object) -> Decimal:
    """Convert an input to Decimal without going through float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr gives the shortest string that round-trips; never Decimal(float) binary noise.
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def quantity(value: Decimal) -> Decimal:
    return value.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP)


def unit_price(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PRICE_PLACES, rounding=ROUND_HALF_UP)


def hours_from_duration(duration: timedelta) -> Decimal:
    """Exact hours of a duration, then kept to quantity precision.

    Integer microseconds, never timedelta.total_seconds(): that is a float.
    """
    micros = duration // timedelta(microseconds=1)
    return quantity(Decimal(micros) / Decimal(3_600_000_000))


def hours_from_minutes(minutes: Decimal) -> Decimal:
    return quantity(minutes / Decimal(60))


def line_amount(qty: Decimal, unit_price: Decimal) -> Decimal:
    """Line amount = quantity x unit price, rounded half-up to cents (QuickBooks' own check)."""
    return cents(qty * unit_price)
