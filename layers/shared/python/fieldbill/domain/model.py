"""Billing domain types: frozen dataclasses, validated on construction, no I/O.

Records never change in place: a state change is `dataclasses.replace` plus a HistoryRecord
(see states.py), so the store can write the new state conditionally on the old one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from fieldbill.domain import money
from fieldbill.domain.errors import ValidationError


class LineKind(enum.StrEnum):
    TASK_ENTRY = "task_entry"
    GOODS = "goods"
    EXPENSE = "expense"
    TRANSPORT_DISTANCE = "transport_distance"
    TRANSPORT_TIME = "transport_time"
    # A line a person added to an invoice (no billable item behind it).
    MANUAL = "manual"
    # --- recurring billing (issue 16): a recurring service's charge for one billing period.
    RECURRING = "recurring"
    # --- job invoices (issue 14; domain/job_policies.JobLineKind): no billable item behind them.
    JOB_ITEM = "job_item"
    JOB_CATEGORY = "job_category"
    JOB_SUMMARY = "job_summary"
    JOB_DEPOSIT = "job_deposit"
    JOB_DEPOSIT_APPLIED = "job_deposit_applied"
    # ---- completed services (issue 17): the lines a visit compiles into
    SERVICE = "service"
    INVENTORY = "inventory"
    TRIP_FEE = "trip_fee"
    SURCHARGE = "surcharge"


TRANSPORT_LINE_KINDS = frozenset({LineKind.TRANSPORT_DISTANCE, LineKind.TRANSPORT_TIME})


class EntryKind(enum.StrEnum):
    TIME = "time"
    MILEAGE = "mileage"
    GOODS = "goods"
    EXPENSE = "expense"


class TaskStatus(enum.StrEnum):
    DRAFT = "draft"
    DONE = "done"


class EntryStatus(enum.StrEnum):
    UNBILLED = "unbilled"
    BILLED = "billed"


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    INVOICED = "invoiced"
    UNBILLABLE = "unbillable"
    # An item withdrawn so its entry can be edited and compiled again; kept, never deleted.
    VOID = "void"


class InvoiceStatus(enum.StrEnum):
    """draft -> open (sent, or synced to QuickBooks) -> partially_paid -> paid; a draft is deleted,
    an open invoice voided. Overdue is not a status: it is derived from the due date."""

    DRAFT = "draft"
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    DELETED = "deleted"


class SyncStatus(enum.StrEnum):
    NOT_SYNCED = "not_synced"
    PENDING = "pending"
    SYNCED = "synced"
    ERROR = "error"
    # A create whose response was lost: the consumer looks it up in QuickBooks before any retry.
    UNKNOWN = "unknown"


class Destination(enum.StrEnum):
    QUICKBOOKS = "quickbooks"
    LOCAL = "local"
    # ---- issue 17: a QuickBooks Desktop invoice waits here for the Desktop connection; the
    # QuickBooks Online sync never picks it up (it sends only "quickbooks").
    QUICKBOOKS_DESKTOP = "quickbooks_desktop"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    COMPILING = "compiling"
    GENERATING = "generating"
    SYNCING = "syncing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    CANCELLED = "cancelled"  # a person stopped it; what it made so far stays


class ProductScope(enum.StrEnum):
    """Where a line's product came from, most specific first."""

    ENTRY = "entry"
    TASK = "task"
    CONTACT = "contact"
    MEMBERSHIP = "membership"
    TEAM = "team"
    TENANT = "tenant"
    DEFAULT = "default"
    # ---- issue 17: a visit's line: its product is the visit's service type or inventory item
    VISIT = "visit"


# Scopes a ProductAssignment may be made at (entry products are explicit, defaults are built in).
ASSIGNMENT_SCOPES = (
    ProductScope.TASK,
    ProductScope.CONTACT,
    ProductScope.MEMBERSHIP,
    ProductScope.TEAM,
    ProductScope.TENANT,
)


class PriceSource(enum.StrEnum):
    SNAPSHOT = "snapshot"
    ENTRY = "entry"
    TASK = "task"
    PRICE_LIST = "price_list"
    PRODUCT = "product"
    NONE = "none"
    # ---- issue 17: the customer's own price for a service type or inventory item
    CUSTOMER = "customer"


class GroupingMode(enum.StrEnum):
    PER_CONTACT = "per_contact"
    PER_TASK = "per_task"
    PER_CONTACT_MONTH = "per_contact_month"


def _coerce_enums(record: object, **fields: type[enum.StrEnum]) -> None:
    """Accept plain strings (the store and the API hold strings) and keep enum members, so the
    domain can compare with `is`; an unknown value is a validation error."""
    for name, enum_type in fields.items():
        value = getattr(record, name)
        try:
            object.__setattr__(record, name, enum_type(value))
        except ValueError:
            raise ValidationError(name, f"unknown {enum_type.__name__} {value!r}") from None


def _check_amount(name: str, value: Decimal | None, *, required: bool = False) -> None:
    """Money and quantities are non-negative Decimals; floats are refused, not converted."""
    if value is None:
        if required:
            raise ValidationError(name, "is required")
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(name, f"must be a finite Decimal, got {value!r}")
    if value < 0:
        raise ValidationError(name, "must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingContext:
    """A task's optional billing defaults."""

    product_id: str | None = None
    price_list_id: str | None = None
    unit: str | None = None
    unit_price: Decimal | None = None

    def __post_init__(self) -> None:
        _check_amount("billing.unit_price", self.unit_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    id: str
    tenant_id: str
    name: str
    membership_id: str | None = None
    team_id: str | None = None
    price_list_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    id: str
    tenant_id: str
    title: str
    client_contact_id: str | None
    billable: bool
    status: TaskStatus = TaskStatus.DRAFT
    billing: BillingContext = field(default_factory=BillingContext)

    def __post_init__(self) -> None:
        _coerce_enums(self, status=TaskStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEntry:
    """One piece of recorded work on a task.

    started_at is when the work happened for every kind; only time entries run and are stopped
    (stopped_at), mileage/goods/expense entries are complete when recorded.
    snapshot_unit_price is a price captured when the entry was recorded and applies to the
    entry's primary line; a mileage entry's transport_time line has its own snapshot field.
    """

    id: str
    tenant_id: str
    task_id: str
    kind: EntryKind
    started_at: datetime
    stopped_at: datetime | None = None
    status: EntryStatus = EntryStatus.UNBILLED
    description: str | None = None
    product_id: str | None = None
    snapshot_unit_price: Decimal | None = None
    # mileage
    distance_km: Decimal | None = None
    transport_minutes: Decimal | None = None
    transport_time_snapshot_unit_price: Decimal | None = None
    # goods and expense
    quantity: Decimal | None = None
    unit_price: Decimal | None = None

    def __post_init__(self) -> None:
        _coerce_enums(self, kind=EntryKind, status=EntryStatus)
        # Aware datetimes only: the work date (and the invoice month) depends on the offset.
        for name in ("started_at", "stopped_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValidationError(name, "must be timezone-aware")
        if self.stopped_at is not None and self.stopped_at < self.started_at:
            raise ValidationError("stopped_at", "must not be before started_at")
        _check_amount("snapshot_unit_price", self.snapshot_unit_price)
        _check_amount("unit_price", self.unit_price)
        _check_amount("transport_minutes", self.transport_minutes)
        _check_amount("transport_time_snapshot_unit_price", self.transport_time_snapshot_unit_price)
        _check_amount("distance_km", self.distance_km, required=self.kind is EntryKind.MILEAGE)
        needs_quantity = self.kind in (EntryKind.GOODS, EntryKind.EXPENSE)
        _check_amount("quantity", self.quantity, required=needs_quantity)

    @property
    def is_stopped(self) -> bool:
        return self.kind is not EntryKind.TIME or self.stopped_at is not None

    @property
    def work_date(self) -> date:
        return self.started_at.date()


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    id: str
    tenant_id: str
    name: str
    unit: str | None = None
    default_unit_price: Decimal | None = None
    # True for the fallback defaults the resolver creates (see products.py).
    auto_created: bool = False

    def __post_init__(self) -> None:
        _check_amount("default_unit_price", self.default_unit_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceList:
    id: str
    tenant_id: str
    name: str
    prices: Mapping[str, Decimal] = field(default_factory=dict)  # product id -> unit price

    def __post_init__(self) -> None:
        for product_id, price in self.prices.items():
            _check_amount(f"prices[{product_id}]", price, required=True)

    def price_for(self, product_id: str) -> Decimal | None:
        return self.prices.get(product_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductAssignment:
    """Product to use for one line kind at one scope (scope_id is the tenant id at tenant scope)."""

    tenant_id: str
    scope: ProductScope
    scope_id: str
    line_kind: LineKind
    product_id: str

    def __post_init__(self) -> None:
        _coerce_enums(self, scope=ProductScope, line_kind=LineKind)
        if self.scope not in ASSIGNMENT_SCOPES:
            raise ValidationError("scope", f"products cannot be assigned at {self.scope} scope")


@dataclass(frozen=True, slots=True, kw_only=True)
class BillableItem:
    """One billable line of one entry; id = f"{entry_id}.{line_kind}" so it exists at most once."""

    id: str
    tenant_id: str
    entry_id: str
    task_id: str
    contact_id: str
    line_kind: LineKind
    work_date: date
    description: str
    product_id: str
    product_name: str
    product_scope: ProductScope
    unit: str | None
    quantity: Decimal
    unit_price: Decimal
    price_source: PriceSource
    amount: Decimal
    status: ItemStatus = ItemStatus.PENDING
    invoice_id: str | None = None
    # Issue 17: a visit's line is taxable when its service type / inventory item is (the invoice
    # line carries it; tax amounts are computed on invoices, not here).
    taxable: bool = False

    def __post_init__(self) -> None:
        _coerce_enums(
            self,
            line_kind=LineKind,
            product_scope=ProductScope,
            price_source=PriceSource,
            status=ItemStatus,
        )
        _check_amount("quantity", self.quantity, required=True)
        _check_amount("unit_price", self.unit_price, required=True)
        # The amount is never free: invoices and QuickBooks rely on this identity.
        if self.amount != money.line_amount(self.quantity, self.unit_price):
            raise ValidationError("amount", "must equal line_amount(quantity, unit_price)")


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceLine:
    line_no: int
    item_id: str | None  # None: a line a person added to the invoice, not compiled from work
    line_kind: LineKind
    work_date: date | None
    description: str
    product_id: str
    product_name: str
    unit: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    taxable: bool = False
    # --- issue 15, per-line tax (domain/tax.resolve): the code and rate this line is taxed at,
    # which level decided (line | product | contact | tenant; None: made before, the invoice's
    # rate applies) and its share of the invoice's tax.
    tax_code_id: str | None = None
    tax_rate: Decimal | None = None
    tax_source: str | None = None
    tax_amount: Decimal | None = None

    def __post_init__(self) -> None:
        _coerce_enums(self, line_kind=LineKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoice:
    id: str
    tenant_id: str
    run_id: str
    contact_id: str
    grouping: GroupingMode
    group_key: str
    issue_date: date
    due_date: date
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    total: Decimal
    task_id: str | None = None  # set when grouped per task
    period: str | None = None  # "YYYY-MM" when grouped per contact and month
    status: InvoiceStatus = InvoiceStatus.DRAFT
    sync_status: SyncStatus = SyncStatus.NOT_SYNCED
    destination: Destination = Destination.QUICKBOOKS
    credit_memo_id: str | None = None  # set when the invoice is credited instead of voided
    # Sales tax (issue 15, domain/tax.py): total = subtotal + tax_total at the code's rate.
    tax_total: Decimal = Decimal("0.00")
    tax_code_id: str | None = None
    tax_rate: Decimal | None = None

    def __post_init__(self) -> None:
        _coerce_enums(
            self,
            grouping=GroupingMode,
            status=InvoiceStatus,
            sync_status=SyncStatus,
            destination=Destination,
        )

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(line.item_id for line in self.lines if line.item_id is not None)
