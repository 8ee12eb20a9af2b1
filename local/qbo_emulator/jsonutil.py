"""JSON in and out: money is parsed to Decimal and written back as JSON numbers."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            exponent = o.as_tuple().exponent
            return int(o) if isinstance(exponent, int) and exponent >= 0 else float(o)
        return super().default(o)


def dumps(obj: Any) -> str:
    return json.dumps(obj, cls=_Encoder)


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_float=Decimal)


def to_wire(obj: Any) -> Any:
    """Deep copy as the client would see it (Decimals stay Decimal for exact comparisons)."""
    return loads(dumps(obj))


def to_decimal(value: Any) -> Decimal | None:
    """Decimal from a JSON value; None for null/empty; raises ValueError when not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
