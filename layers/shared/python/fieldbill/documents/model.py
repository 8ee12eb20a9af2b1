"""What a printed invoice shows: typed views the renderer takes (no layout library imported here,
so the API's cold start does not pay for one; fieldbill.documents.invoice_pdf renders them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from fieldbill.domain.money import CENT

LOGO_TYPES = {"image/png", "image/jpeg", "image/gif"}


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    taxable: bool = False


@dataclass(frozen=True)
class Logo:
    data: bytes
    media_type: str = "image/png"

    def __post_init__(self) -> None:
        if self.media_type not in LOGO_TYPES:
            raise ValueError(f"logo must be one of {sorted(LOGO_TYPES)}, not {self.media_type}")


@dataclass(frozen=True)
class InvoiceDocument:
    """What a printed invoice shows; every amount a Decimal."""

    tenant_name: str
    customer_name: str
    number: str
    issue_date: date
    status: str
    lines: Sequence[DocumentLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    balance: Decimal
    due_date: date | None = None
    currency: str = "USD"
    billing_address: Sequence[str] = field(default_factory=tuple)
    billing_email: str | None = None
    logo: Logo | None = None
    # A bill-profile period invoice (issue 16): the account's balance from earlier invoices when it
    # was made, shown beside the total and never in it (QuickBooks has no balance forward).
    balance_forward: Decimal | None = None


def money(value: Decimal) -> str:
    """Two decimals, thousands grouped, from Decimal (never float): 1234.5 -> "1,234.50"."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, not {type(value).__name__}")
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def quantity(value: Decimal) -> str:
    """A quantity as entered, without trailing zeros: 1.500000 -> "1.5", 2.000000 -> "2"."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"
