"""Pricing a completed service visit (issue 17): pure, Decimal only, no I/O.

A visit compiles into billable items of the same ledger as task entries, one per line, with
deterministic ids so a visit is billed at most once:

| line       | id                          | quantity                                   | price            |
|------------|-----------------------------|--------------------------------------------|------------------|
| service    | f"{visit}.service"          | by billing method (below)                  | service type     |
| trip fee   | f"{visit}.trip_fee"         | by the trip-fee service type's method      | trip-fee type    |
| inventory  | f"{visit}.inventory.{n}"    | quantity used (n: 1-based position)        | inventory item   |
| surcharge  | f"{visit}.surcharge"        | 1                                          | % of the visit   |

Billing methods: `fixed` (quantity 1), `hourly` (billable hours), `hourly_per_worker` (billable
hours x number of workers). Billable hours: the duration in exact minutes (integer microseconds,
never a float), rounded UP to the service type's round-up increment (15 -> the next quarter hour;
0 -> no rounding), then raised to the minimum billable hours, then kept to quantity precision
(money.quantity, 6 places, half-up). The minimum applies per worker, before multiplying.

Unit price: the customer's own price for that service type / inventory item when the company's
pricing source is `customer` and the customer has one; else the list price (an inventory line's
price snapshot taken when it was used, else the item's price; a service type's base price).
Amounts: money.line_amount (quantity x unit price, half-up to cents: QuickBooks' own check).
Surcharge: surcharge_percent of the sum of the visit's other line amounts, half-up to cents,
one line. Remove $0 lines (company setting) drops lines whose amount is 0.00 (before the
surcharge is computed). Each line records why it costs what it costs (`why`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import (
    BillableItem,
    Destination,
    ItemStatus,
    LineKind,
    PriceSource,
    ProductScope,
)

ZERO = Decimal("0")
HUNDRED = Decimal("100")


class BillingMethod(enum.StrEnum):
    FIXED = "fixed"
    HOURLY = "hourly"
    HOURLY_PER_WORKER = "hourly_per_worker"


class BillingStatus(enum.StrEnum):
    """A service's badge: its invoice destination, or its exclusion."""

    QBO = "qbo"
    QBD = "qbd"
    LOCAL = "local"
    UNBILLABLE = "unbillable"


class PricingSource(enum.StrEnum):
    CUSTOMER = "customer"  # the customer's own price when it has one, else the list price
    LIST = "list"  # always the list price (service type / inventory item)


DESTINATIONS: Mapping[BillingStatus, Destination] = {
    BillingStatus.QBO: Destination.QUICKBOOKS,
    BillingStatus.QBD: Destination.QUICKBOOKS_DESKTOP,
    BillingStatus.LOCAL: Destination.LOCAL,
}
BADGES: Mapping[BillingStatus, str] = {
    BillingStatus.QBO: "QBO",
    BillingStatus.QBD: "QBD",
    BillingStatus.LOCAL: "Local",
    BillingStatus.UNBILLABLE: "Unbillable",
}


def resolve_billing_status(
    own: str | None, type_default: str | None, company_default: str | None
) -> BillingStatus:
    """The service's own status when set, else its service type's default, else the company's
    default invoice type (callers give the connection-based default when the company set none)."""
    for value in (own, type_default, company_default):
        if value:
            return BillingStatus(value)
    return BillingStatus.LOCAL


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceType:
    id: str
    name: str
    billing_method: BillingMethod
    price: Decimal
    taxable: bool = False
    round_up_minutes: int = 0
    minimum_hours: Decimal = ZERO
    trip_fee_id: str | None = None  # the service type that IS this type's trip fee
    unit: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "billing_method", BillingMethod(self.billing_method))
        if self.round_up_minutes < 0:
            raise ValidationError("round_up_minutes", "must not be negative")
        if self.minimum_hours < 0 or self.price < 0:
            raise ValidationError("price", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryItem:
    id: str
    name: str
    price: Decimal
    taxable: bool = False
    unit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsedItem:
    item_id: str
    quantity: Decimal
    unit_price: Decimal | None = None  # the price snapshot taken when it was used


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    id: str
    tenant_id: str
    contact_id: str
    service_date: date
    service_type_id: str
    worker_ids: tuple[str, ...]
    started_at: datetime | None = None
    ended_at: datetime | None = None
    inventory: tuple[UsedItem, ...] = ()
    billing_status: BillingStatus | None = None

    @property
    def duration(self) -> timedelta:
        if self.started_at is None or self.ended_at is None:
            return timedelta(0)
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingSettings:
    pricing_source: PricingSource = PricingSource.CUSTOMER
    surcharge_percent: Decimal = ZERO
    remove_zero_lines: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "pricing_source", PricingSource(self.pricing_source))
        if self.surcharge_percent < 0:
            raise ValidationError("surcharge_percent", "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class PricedLine:
    line_kind: LineKind
    suffix: str  # the item id is f"{visit id}.{suffix}"
    product_id: str
    product_name: str
    description: str
    unit: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    price_source: PriceSource
    taxable: bool
    why: dict[str, str] = field(default_factory=dict)


def exact_minutes(duration: timedelta) -> Decimal:
    return Decimal(duration // timedelta(microseconds=1)) / Decimal(60_000_000)


def billable_hours(
    duration: timedelta, round_up_minutes: int, minimum_hours: Decimal
) -> tuple[Decimal, dict[str, str]]:
    """Hours one worker bills for `duration`: rounded up to the increment, then the minimum."""
    minutes = exact_minutes(duration)
    rounded = minutes
    if round_up_minutes > 0:
        steps = (minutes / Decimal(round_up_minutes)).to_integral_value(rounding=ROUND_CEILING)
        rounded = steps * Decimal(round_up_minutes)
    hours = money.quantity(rounded / Decimal(60))
    minimum_applied = hours < minimum_hours
    if minimum_applied:
        hours = money.quantity(minimum_hours)
    why = {
        "minutes": format(money.quantity(minutes).normalize(), "f"),
        "round_up_minutes": str(round_up_minutes),
        "rounded_minutes": format(money.quantity(rounded).normalize(), "f"),
        "minimum_hours": format(minimum_hours, "f"),
        "minimum_applied": "true" if minimum_applied else "false",
    }
    return hours, why


def _choose_price(
    product_id: str,
    list_price: Decimal,
    list_source: PriceSource,
    customer_prices: Mapping[str, Decimal],
    settings: PricingSettings,
) -> tuple[Decimal, PriceSource, dict[str, str]]:
    own = customer_prices.get(product_id)
    why = {"list_price": format(list_price, "f"), "pricing_source": str(settings.pricing_source)}
    if own is not None:
        why["customer_price"] = format(own, "f")
    if settings.pricing_source is PricingSource.CUSTOMER and own is not None:
        return own, PriceSource.CUSTOMER, why
    return list_price, list_source, why


def _service_line(
    kind: LineKind,
    suffix: str,
    stype: ServiceType,
    visit: Visit,
    customer_prices: Mapping[str, Decimal],
    settings: PricingSettings,
) -> PricedLine:
    why: dict[str, str] = {"billing_method": str(stype.billing_method)}
    if stype.billing_method is BillingMethod.FIXED:
        quantity = Decimal("1")
    else:
        hours, detail = billable_hours(visit.duration, stype.round_up_minutes, stype.minimum_hours)
        why |= detail
        why["hours"] = format(hours, "f")
        quantity = hours
        if stype.billing_method is BillingMethod.HOURLY_PER_WORKER:
            workers = max(len(visit.worker_ids), 1)
            why["workers"] = str(workers)
            quantity = money.quantity(hours * workers)
    price, source, price_why = _choose_price(
        stype.id, stype.price, PriceSource.PRODUCT, customer_prices, settings
    )
    why |= price_why
    return PricedLine(
        line_kind=kind,
        suffix=suffix,
        product_id=stype.id,
        product_name=stype.name,
        description=stype.name,
        unit=stype.unit or ("hour" if stype.billing_method is not BillingMethod.FIXED else None),
        quantity=quantity,
        unit_price=price,
        amount=money.line_amount(quantity, price),
        price_source=source,
        taxable=stype.taxable,
        why=why,
    )


def price_visit(
    visit: Visit,
    service_types: Mapping[str, ServiceType],
    inventory_items: Mapping[str, InventoryItem],
    customer_prices: Mapping[str, Decimal],
    settings: PricingSettings,
) -> list[PricedLine]:
    """The lines of one completed visit, in a fixed order: service, trip fee, inventory, surcharge."""
    stype = service_types.get(visit.service_type_id)
    if stype is None:
        raise ValidationError("service_type_id", f"no service type {visit.service_type_id!r}")
    lines = [_service_line(LineKind.SERVICE, "service", stype, visit, customer_prices, settings)]
    if stype.trip_fee_id:
        fee = service_types.get(stype.trip_fee_id)
        if fee is None:
            raise ValidationError("trip_fee_id", f"no trip-fee service type {stype.trip_fee_id!r}")
        lines.append(_service_line(LineKind.TRIP_FEE, "trip_fee", fee, visit, customer_prices, settings))
    for n, used in enumerate(visit.inventory, start=1):
        item = inventory_items.get(used.item_id)
        if item is None:
            raise ValidationError(f"inventory[{n - 1}].item_id", f"no inventory item {used.item_id!r}")
        list_price, list_source = (
            (used.unit_price, PriceSource.SNAPSHOT)
            if used.unit_price is not None
            else (item.price, PriceSource.PRODUCT)
        )
        price, source, why = _choose_price(item.id, list_price, list_source, customer_prices, settings)
        quantity = money.quantity(used.quantity)
        lines.append(
            PricedLine(
                line_kind=LineKind.INVENTORY,
                suffix=f"inventory.{n}",
                product_id=item.id,
                product_name=item.name,
                description=item.name,
                unit=item.unit,
                quantity=quantity,
                unit_price=price,
                amount=money.line_amount(quantity, price),
                price_source=source,
                taxable=item.taxable,
                why=why,
            )
        )
    if settings.remove_zero_lines:
        lines = [line for line in lines if line.amount != ZERO]
    if settings.surcharge_percent > 0 and lines:
        base = sum((line.amount for line in lines), ZERO)
        amount = money.cents(base * settings.surcharge_percent / HUNDRED)
        if amount != ZERO or not settings.remove_zero_lines:
            lines.append(
                PricedLine(
                    line_kind=LineKind.SURCHARGE,
                    suffix="surcharge",
                    product_id="surcharge",
                    product_name="Surcharge",
                    description=f"Surcharge {format(settings.surcharge_percent.normalize(), 'f')}%",
                    unit=None,
                    quantity=Decimal("1"),
                    unit_price=amount,
                    amount=amount,
                    price_source=PriceSource.PRODUCT,
                    taxable=False,
                    why={
                        "surcharge_percent": format(settings.surcharge_percent, "f"),
                        "base": format(base, "f"),
                    },
                )
            )
    return lines


def visit_items(visit: Visit, lines: Sequence[PricedLine], status: ItemStatus) -> list[BillableItem]:
    """The ledger's billable items of a visit (entry_id is the visit id: the bill-once key)."""
    return [
        BillableItem(
            id=f"{visit.id}.{line.suffix}",
            tenant_id=visit.tenant_id,
            entry_id=visit.id,
            task_id="",
            contact_id=visit.contact_id,
            line_kind=line.line_kind,
            work_date=visit.service_date,
            description=line.description,
            product_id=line.product_id,
            product_name=line.product_name,
            product_scope=ProductScope.VISIT,
            unit=line.unit,
            quantity=line.quantity,
            unit_price=line.unit_price,
            price_source=line.price_source,
            amount=line.amount,
            status=status,
            taxable=line.taxable,
        )
        for line in lines
    ]
