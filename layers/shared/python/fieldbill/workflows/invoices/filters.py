"""The invoice list's filters, parsed in ONE place: GET /invoices (query parameters) and a bulk
command on a filter (`POST /invoices/bulk` with `filter`, resolved later by the jobs worker) take
exactly the same names and values, and refuse the same bad or unknown ones (400 naming it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic import ValidationError as PydanticValidationError

from fieldbill.domain.errors import BadFilter

if TYPE_CHECKING:  # the API's schemas import this module: the store only where a filter is read
    from fieldbill.store import invoices as invoice_store

InvoiceStatusName = Literal["draft", "open", "partially_paid", "paid", "void", "deleted"]
SyncStatusName = Literal["not_synced", "pending", "synced", "error", "unknown"]
DestinationName = Literal["quickbooks", "local"]
JobPolicyName = Literal[
    "deposit",
    "progress_summary",
    "progress_itemized",
    "progress_itemized_grouped",
    "complete",
    "complete_grouped",
    "correction",
    "correction_grouped",
]
AMOUNT_PATTERN = r"^(eq|lt|gt|lte|gte):[0-9]{1,10}(\.[0-9]{1,2})?$"
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(value: Any) -> Any:
    # The query's parser hands over a date; a JSON filter gives the same YYYY-MM-DD text (no
    # timestamps, no datetimes: as the list's own parameters).
    if isinstance(value, date) or (isinstance(value, str) and _DAY.fullmatch(value)):
        return value
    raise ValueError("must be a date, YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_day), WithJsonSchema({"type": "string", "format": "date"})]
Amount = Annotated[str, Field(pattern=AMOUNT_PATTERN, description="operator:amount, e.g. gt:0")]
RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]


class InvoiceQuery(BaseModel):
    """Every filter GET /invoices takes (not its paging or sort): the same names and values."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)

    status: InvoiceStatusName | None = None
    sync_status: SyncStatusName | None = None
    destination: DestinationName | None = None
    contact_id: RecordId | None = None
    issue_date_from: Day | None = None
    issue_date_to: Day | None = None
    due_date_from: Day | None = None
    due_date_to: Day | None = None
    overdue: Literal["true", "false"] | None = None
    total: Amount | None = None
    balance: Amount | None = None
    account_balance: Amount | None = None
    tag: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    q: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    bill_profile_id: RecordId | None = None
    period: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")] | None = None
    job_id: RecordId | None = None
    invoice_type: Literal["partial", "complete", "correction"] | None = None
    policy: JobPolicyName | None = None
    workflow_status: Literal["invoiced", "approved", "exported", "posted"] | None = None


FILTER_NAMES = frozenset(InvoiceQuery.model_fields)


def _name(prefix: str, field: str) -> str:
    return f"{prefix}{field}"


def check(values: Mapping[str, Any], where: str = "query", prefix: str = "") -> InvoiceQuery:
    """The filters, checked: the first bad or unknown one is BadFilter naming it (`prefix` + name,
    e.g. filter.balance for a bulk command's filter)."""
    try:
        query = InvoiceQuery.model_validate(dict(values))
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "filter"
        message = "no such filter" if first.get("type") == "extra_forbidden" else str(first.get("msg"))
        raise BadFilter(_name(prefix, field), message, where) from None
    for start, end in (("issue_date_from", "issue_date_to"), ("due_date_from", "due_date_to")):
        low, high = getattr(query, start), getattr(query, end)
        if low and high and high < low:
            raise BadFilter(_name(prefix, end), "must not be before the start of the range", where)
    return query


def to_filter(query: InvoiceQuery, today: date, sort: str = "date") -> invoice_store.InvoiceFilter:
    """What the store reads: the checked filters, `overdue` against `today`."""
    from fieldbill.store import invoices as invoice_store

    def amount(field: str) -> invoice_store.AmountFilter | None:
        return invoice_store.amount_filter(field, getattr(query, field))

    return invoice_store.InvoiceFilter(
        status=query.status,
        sync_status=query.sync_status,
        destination=query.destination,
        contact_id=query.contact_id,
        issue_date_from=query.issue_date_from,
        issue_date_to=query.issue_date_to,
        due_date_from=query.due_date_from,
        due_date_to=query.due_date_to,
        overdue=None if query.overdue is None else query.overdue == "true",
        total=amount("total"),
        balance=amount("balance"),
        today=today,
        account_balance=amount("account_balance"),
        tag=query.tag,
        q=query.q,
        bill_profile_id=query.bill_profile_id,
        period_key=query.period,
        sort=sort,
        job_id=query.job_id,
        invoice_type=query.invoice_type,
        policy=query.policy,
        workflow_status=query.workflow_status,
    )


def parse(
    values: Mapping[str, Any], today: date, *, sort: str = "date", where: str = "query", prefix: str = ""
) -> invoice_store.InvoiceFilter:
    return to_filter(check(values, where, prefix), today, sort)


def json_schema() -> dict[str, Any]:
    """The filter object as the OpenAPI document shows it (the model's own schema)."""
    return InvoiceQuery.model_json_schema()
