"""Request bodies of the HTTP API. Bad input is refused here with a 4xx naming the field."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fieldbill.domain.model import Destination, GroupingMode
from fieldbill.workflows.invoices.filters import InvoiceQuery  # wt-life: bulk on a filter

MAX_MONEY = Decimal("1000000000")
MAX_QUANTITY = Decimal("1000000")

# ---------------------------------------------------------------------------- strict scalars
# Pydantic's lax mode takes 1709539200 as a datetime, 0 as 1970-01-01, "yes" as true and "1_000"
# as 1000: a client's mistake would be stored. These types take only what docs/api.md promises.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _decimal_input(value: Any) -> Any:
    """A JSON number or a plain decimal string ("72.50"); no exponent, underscore, NaN or infinity."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", "must be a decimal number or string")
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise PydanticCustomError("decimal_format", "must be a plain decimal such as 72.50")
        return Decimal(value)
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        raise PydanticCustomError("decimal_type", "must be a decimal number or string")
    if not number.is_finite():
        raise PydanticCustomError("decimal_finite", "must be a finite number")
    try:
        # A JSON number written 1e3 is the amount 1000: stored and answered without an exponent.
        return Decimal(format(number, "f"))
    except InvalidOperation:
        raise PydanticCustomError("decimal_format", "must be a plain decimal") from None


def _iso_text(kind: str, pattern: re.Pattern[str] | None = None) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise PydanticCustomError(f"{kind}_type", f"must be an ISO 8601 {kind} string")
        return value

    return check


def _decimal_schema(minimum: Decimal, maximum: Decimal, places: int = 6) -> dict[str, Any]:
    """The schema of a decimal given as a JSON number or a string: the bounds, and for the string
    the decimal places the validators hold it to (a number's places are not put as multipleOf:
    JSON Schema validators check that in binary floating point and refuse 7.2513)."""
    number: dict[str, Any] = {"type": "number", "minimum": int(minimum), "maximum": int(maximum)}
    return {"anyOf": [number, {"type": "string", "pattern": rf"^[0-9]{{1,10}}(\.[0-9]{{1,{places}}})?$"}]}


Datetime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text("datetime")),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2024-03-04T09:00:00+00:00"]}),
]
Day = Annotated[
    date,
    BeforeValidator(_iso_text("date", _DATE_TEXT)),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2024-03-04"]}),
]


def _exact(places: int):
    def check(value: Decimal) -> Decimal:
        if value.as_tuple().exponent < -places:  # type: ignore[operator]
            raise ValueError(f"at most {places} decimal places")
        return value

    return check


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(ge=0, le=MAX_MONEY),
    AfterValidator(_exact(6)),
    WithJsonSchema(_decimal_schema(Decimal(0), MAX_MONEY)),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(ge=0, le=MAX_QUANTITY),
    AfterValidator(_exact(6)),
    WithJsonSchema(_decimal_schema(Decimal(0), MAX_QUANTITY)),
]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]

# Query parameters shared by the list routes.
PageLimit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")]
NamePrefix = Annotated[str | None, Query(min_length=1, max_length=200)]
IdQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
DayQuery = Annotated[Day | None, Query(description="YYYY-MM-DD")]


class Strict(BaseModel):
    # Built at first use, not at import (cold start); responses.Out does the same.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


ContactName = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^:]+$")]
Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=50)]


# ---- issue 17: a contact's phone and address, within what QuickBooks' customer holds
def _address_lines(value: str) -> str:
    lines = [ln.strip() for ln in value.strip().splitlines() if ln.strip()]
    if not lines or len(lines) > 5:
        raise PydanticCustomError("address_lines", "1 to 5 lines (QuickBooks' BillAddr Line1-Line5)")
    return "\n".join(lines)


Phone = Annotated[str, Field(min_length=1, max_length=30, pattern=r"^[0-9+()\-. x/#*]+$")]
Address = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_address_lines)]
Unit = Annotated[str, Field(min_length=1, max_length=20)]
AccountRef = Annotated[str, Field(min_length=1, max_length=100)]
ProductKind = Literal["service", "goods", "inventory", "non_inventory"]
LineKind = Literal["task_entry", "goods", "expense", "transport_distance", "transport_time"]
# Every kind of billable item in the ledger: task work, completed services, recurring charges.
ItemLineKind = Literal[
    "task_entry",
    "goods",
    "expense",
    "transport_distance",
    "transport_time",
    "service",
    "inventory",
    "trip_fee",
    "surcharge",
    "recurring",
]
Scope = Literal["task", "contact", "membership", "team", "tenant"]
Prices = Annotated[dict[Id, Money], Field(max_length=2000)]


class Patch(Strict):
    """A partial update: only the fields sent change; null clears a field unless it is required."""

    # The document says so too: a client (or a fuzzer) reads that an empty body is refused.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra={"minProperties": 1}, defer_build=True
    )

    required: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.required:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: send at least one field")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


# ---------------------------------------------------------------------------- people and catalogue
class ContactIn(Strict):
    id: Id | None = None
    name: ContactName
    email: Email | None = None
    tags: Tags = Field(default_factory=list)
    membership_id: Id | None = None
    team_id: Id | None = None
    price_list_id: Id | None = None
    # --- issue 15: tax per contact (domain/tax.resolve)
    tax_code_id: Id | None = Field(default=None, description="its own tax code instead of the default")
    tax_exempt: StrictBool | None = Field(default=None, description="never taxed (QuickBooks: Taxable false)")
    tax_exemption_reason: StrictInt | None = Field(
        default=None,
        description="why a tax-exempt contact is exempt: QuickBooks' TaxExemptionReasonId, 1 to 15 "
        "(1 Federal government ... 9 Resale ... 15 Foreign diplomat; sent with automated sales tax)",
    )
    # --- issue 17: contact details (the billing page shows them; QuickBooks gets them)
    phone: Phone | None = None
    address: Address | None = Field(default=None, description="1 to 5 lines, newline separated")


class ContactPatch(Patch):
    required = frozenset({"name", "tags"})
    name: ContactName | None = None
    email: Email | None = None
    tags: Tags | None = None
    membership_id: Id | None = None
    team_id: Id | None = None
    price_list_id: Id | None = None
    # --- issue 15: tax per contact (null clears)
    tax_code_id: Id | None = None
    tax_exempt: StrictBool | None = None
    tax_exemption_reason: StrictInt | None = None
    # --- issue 17: contact details (null clears)
    phone: Phone | None = None
    address: Address | None = None


class ProductIn(Strict):
    id: Id | None = None
    name: Name
    unit: Unit | None = None
    default_unit_price: Money | None = None
    kind: ProductKind = "service"
    income_account_ref: AccountRef | None = None
    expense_account_ref: AccountRef | None = None
    non_taxable: StrictBool | None = Field(default=None, description="never taxed (issue 15)")


class ProductPatch(Patch):
    required = frozenset({"name", "kind"})
    name: Name | None = None
    unit: Unit | None = None
    default_unit_price: Money | None = None
    kind: ProductKind | None = None
    income_account_ref: AccountRef | None = None
    expense_account_ref: AccountRef | None = None
    non_taxable: StrictBool | None = None  # issue 15


class PriceListIn(Strict):
    id: Id | None = None
    name: Name
    prices: Prices = Field(default_factory=dict, description="product id -> unit price")


class PriceListPatch(Patch):
    required = frozenset({"name", "prices"})
    name: Name | None = None
    prices: Prices | None = Field(
        default=None, description="replaces the whole map: product id -> unit price"
    )


class GroupIn(Strict):
    """A membership or a team."""

    id: Id | None = None
    name: Name


class GroupPatch(Patch):
    required = frozenset({"name"})
    name: Name | None = None


class AssignmentIn(Strict):
    scope: Scope
    scope_id: Id | None = Field(
        default=None,
        validate_default=True,
        description="the task, contact, membership or team; omitted at tenant scope",
    )
    line_kind: LineKind
    product_id: Id

    @field_validator("scope_id")
    @classmethod
    def _scope_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if value is None and scope not in (None, "tenant"):
            raise ValueError(f"is required at {scope} scope")
        return value


class AssignmentPatch(Patch):
    required = frozenset({"product_id"})
    product_id: Id | None = None


# ---------------------------------------------------------------------------- work


TaskStatus = Literal["draft", "done"]


class TaskIn(Strict):
    id: Id | None = None
    title: Name
    client_contact_id: Id | None = None
    billable: StrictBool = True
    status: TaskStatus = "draft"
    product_id: Id | None = None
    price_list_id: Id | None = None
    unit: Unit | None = None
    unit_price: Money | None = None


class TaskPatch(Patch):
    required = frozenset({"title", "billable", "status"})
    title: Name | None = None
    client_contact_id: Id | None = None
    billable: StrictBool | None = None
    status: TaskStatus | None = None
    product_id: Id | None = None
    price_list_id: Id | None = None
    unit: Unit | None = None
    unit_price: Money | None = None


EntryKind = Literal["time", "mileage", "goods", "expense"]
Text = Annotated[str, Field(max_length=1000)]
Worker = Annotated[str, Field(max_length=200)]


class EntryIn(Strict):
    id: Id | None = None
    kind: EntryKind
    description: Text | None = None
    worker: Worker | None = None
    started_at: Datetime
    stopped_at: Datetime | None = None
    distance_km: Quantity | None = Field(default=None, validate_default=True)
    transport_minutes: Quantity | None = None
    quantity: Quantity | None = Field(default=None, validate_default=True)
    unit_price: Money | None = None
    snapshot_unit_price: Money | None = None
    transport_time_snapshot_unit_price: Money | None = None
    product_id: Id | None = None

    # Field validators (not one model validator) so each error names its field.
    @field_validator("stopped_at")
    @classmethod
    def _stopped(cls, value: AwareDatetime | None, info: ValidationInfo) -> AwareDatetime | None:
        started = info.data.get("started_at")
        if value is not None and info.data.get("kind") not in (None, "time"):
            raise ValueError("only time entries are started and stopped")
        if value is not None and started is not None and value < started:
            raise ValueError("must not be before started_at")
        return value

    @field_validator("distance_km", "transport_minutes", "quantity")
    @classmethod
    def _by_kind(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        kind = info.data.get("kind")
        if info.field_name == "distance_km" and kind == "mileage" and value is None:
            raise ValueError("is required for a mileage entry")
        if info.field_name == "quantity" and kind in ("goods", "expense") and value is None:
            raise ValueError(f"is required for a {kind} entry")
        if (
            info.field_name in ("distance_km", "transport_minutes")
            and kind not in (None, "mileage")
            and value is not None
        ):
            raise ValueError("belongs to mileage entries")
        return value


class EntryPatch(Patch):
    """The kind never changes; cross-field rules are checked against the merged entry."""

    required = frozenset({"started_at"})
    description: Text | None = None
    worker: Worker | None = None
    started_at: Datetime | None = None
    stopped_at: Datetime | None = None
    distance_km: Quantity | None = None
    transport_minutes: Quantity | None = None
    quantity: Quantity | None = None
    unit_price: Money | None = None
    snapshot_unit_price: Money | None = None
    transport_time_snapshot_unit_price: Money | None = None
    product_id: Id | None = None

    def changes(self) -> dict[str, Any]:
        out = super().changes()
        for name in ("started_at", "stopped_at"):
            if out.get(name) is not None:
                out[name] = out[name].isoformat()
        return out


class StopIn(Strict):
    stopped_at: Datetime


# ---------------------------------------------------------------------------- billing commands
ContactIds = Annotated[list[Id], Field(min_length=1, max_length=500)]


class CompileIn(Strict):
    contact_ids: ContactIds | None = None
    date_from: Day | None = None
    date_to: Day | None = None


class GenerateIn(Strict):
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=5000)]
    grouping: GroupingMode = GroupingMode.PER_CONTACT
    destination: Destination | None = Field(
        default=None, description="quickbooks or local; left out, QuickBooks when the company is connected"
    )
    sync: StrictBool = Field(
        default=True, description="false keeps QuickBooks invoices as drafts until POST /invoices/{id}/sync"
    )
    issue_date: Day | None = None


class BillingRunIn(Strict):
    grouping: GroupingMode = GroupingMode.PER_CONTACT
    contact_ids: ContactIds | None = None
    date_from: Day | None = None
    date_to: Day | None = None
    sync: StrictBool = True
    issue_date: Day | None = None

    @field_validator("date_to")
    @classmethod
    def _range(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("date_from")
        if value and start and value < start:
            raise ValueError("date_to must not be before date_from")
        return value


# ---------------------------------------------------------------------------- invoices after generation
InvoiceText = Annotated[str, Field(max_length=4000)]
LineNo = Annotated[StrictInt, Field(ge=1, le=100000)]


class InvoiceLineIn(Strict):
    """A line of the invoice's new list: with line_no it keeps (and changes) that line; without,
    it is a new line (description, quantity, unit_price and product_id required)."""

    line_no: LineNo | None = None
    description: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    quantity: Quantity | None = None
    unit_price: Money | None = None
    product_id: Id | None = None
    taxable: StrictBool | None = None
    tax_code_id: Id | None = Field(
        default=None,
        description="issue 15: the line's own tax code (taxed at it whatever product or contact say)",
    )


class InvoicePatch(Patch):
    """Edit a draft (or an open invoice nothing is paid on). `lines` is the whole new list."""

    required = frozenset({"lines", "issue_date", "version"})
    version: StrictInt | None = Field(
        default=None, description="the version you read: 409 if the invoice changed since"
    )
    lines: Annotated[list[InvoiceLineIn], Field(min_length=1, max_length=250)] | None = None
    issue_date: Day | None = None
    due_date: Day | None = None
    terms_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = Field(
        default=None, description="Net-N: the due date becomes the invoice date + N days"
    )
    memo: InvoiceText | None = Field(default=None, description="internal note, never printed")
    customer_message: Annotated[str, Field(max_length=1000)] | None = None
    billing_email: Email | None = None


class ReasonIn(Strict):
    reason: Annotated[str, Field(max_length=500)] | None = None


class PaymentIn(Strict):
    id: Id | None = Field(
        default=None, description="your id for the payment: a retry with it records it once"
    )
    amount: Money
    date: Day | None = Field(default=None, description="defaults to today")
    method: Literal["cash", "check", "card", "bank_transfer", "other"] | None = None
    reference: Annotated[str, Field(max_length=100)] | None = None


class BulkIn(Strict):
    action: Literal["delete", "mark_sent", "void", "sync", "send", "print", "add_to_group"]
    # --- wt-life: a selection OR a filter (exactly one), the filter being GET /invoices' filters.
    invoice_ids: Annotated[list[Id], Field(min_length=1, max_length=500)] | None = None
    filter: InvoiceQuery | None = Field(
        default=None,
        description='instead of invoice_ids: GET /invoices\' filters, e.g. {"status": "draft", '
        '"contact_id": "c-1"}; every invoice matching when the operation runs',
    )
    reason: Annotated[str, Field(max_length=500)] | None = None
    # --- invoice groups (issue 16): add_to_group names an existing group or a new one.
    group_id: Id | None = Field(default=None, description="add_to_group: an existing group")
    group_name: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="add_to_group: a new group of this name"
    )


class SendIn(Strict):
    to: Email | None = Field(
        default=None, description="defaults to the invoice's billing email, else the contact's"
    )


# ------------------------------------------------------------------ credit memos (issue 13, wt-credit)
class CreditLineIn(Strict):
    description: Annotated[str, Field(max_length=4000)] = ""
    quantity: Quantity
    unit_price: Money
    product_id: Id | None = None
    # wt-life: left out, taxable as the invoice's lines of its product (no product: as all of them)
    taxable: StrictBool | None = None


class CreditMemoIn(Strict):
    id: Id | None = Field(
        default=None, description="your id for the credit memo: a retry with it records it once"
    )
    amount: Money | None = Field(default=None, description="the credit; or give lines instead")
    lines: Annotated[list[CreditLineIn], Field(min_length=1, max_length=100)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    date: Day | None = Field(default=None, description="defaults to today")
    # wt-life: an amount's tax; left out, taxable when every line of the invoice is
    taxable: StrictBool | None = Field(
        default=None,
        description="with amount: it credits tax too (left out: when all the invoice's lines are taxable)",
    )


# ---------------------------------------------------------------------------- tax codes (issue 15)
TaxRate = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(ge=0, le=100, description="percent: 7.25 means 7.25 %"),
    AfterValidator(_exact(4)),
    WithJsonSchema(_decimal_schema(Decimal(0), Decimal(100), places=4)),
]


class TaxCodeIn(Strict):
    id: Id | None = None
    name: Name
    rate: TaxRate
    description: Annotated[str, Field(max_length=500)] | None = None
    is_default: StrictBool = Field(default=False, description="new invoices are taxed by this code")
    active: StrictBool = True


class TaxCodePatch(Patch):
    required = frozenset({"name", "rate", "is_default", "active"})
    name: Name | None = None
    rate: TaxRate | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    is_default: StrictBool | None = None
    active: StrictBool | None = None


# ---------------------------------------------------------------------------- reconciliation (issue 15)
class ReconcileIn(Strict):
    date_from: Day = Field(description="first issue date (QuickBooks TxnDate) checked")
    date_to: Day = Field(description="last issue date checked")


class RepairIn(Strict):
    kind: Literal["sync_invoice", "pull_invoice", "push_again"] = Field(
        description="a difference's repair.kind: ours sent again, QuickBooks' read back, or (deleted "
        "in QuickBooks) ours made there again as a new invoice"
    )
    invoice_id: Id
    qbo_id: Id | None = Field(
        default=None, description="push_again: the deleted QuickBooks invoice (repair.qbo_id)"
    )
