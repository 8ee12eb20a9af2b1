"""Request and response models of the job-shop job routes (issue 14, api/routes_jobs.py).

Kept apart from schemas.py / responses.py so the job routes' models are read in one place; the
scalar types are the shared strict ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    model_validator,
)

from fieldbill.api.responses import DecimalText, InvoiceOut, Out, Record
from fieldbill.api.schemas import MAX_MONEY, Day, Id, Money, Name, Quantity, Strict, _decimal_input, _exact
from fieldbill.workflows.invoices.filters import JobPolicyName as PolicyName  # one list of policies

SignedMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(ge=-MAX_MONEY, le=MAX_MONEY),
    AfterValidator(_exact(2)),
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$"}]}
    ),
]
Percent = Annotated[Decimal, BeforeValidator(_decimal_input), Field(gt=0, le=100), AfterValidator(_exact(4))]
Category = Annotated[str, Field(min_length=1, max_length=100)]
BillingTypeName = Literal["order_items", "production_charges"]
ChargeKindName = Literal["billable", "customer_alteration", "non_billable"]
JobStatusName = Literal["open", "closed", "billed"]


# ---------------------------------------------------------------------------- requests
class InvoiceableIn(Strict):
    """An order item (quantity x its unit price) or a charge (category and kind; priced from the
    price structure: the job's or customer's price list, else the product's default price; a
    unit_price given is used only when neither has one)."""

    id: Id
    kind: Literal["order_item", "charge"]
    product_id: Id
    description: Annotated[str, Field(max_length=1000)] = ""
    quantity: Quantity
    unit_price: Money | None = None
    category: Category | None = None
    charge_kind: ChargeKindName | None = None
    taxable: StrictBool = False

    @model_validator(mode="after")
    def _kind_fields(self) -> InvoiceableIn:
        if self.kind == "charge" and self.charge_kind is None:
            raise ValueError("a charge needs charge_kind")
        if self.kind == "order_item" and (self.charge_kind is not None or self.unit_price is None):
            raise ValueError("an order item has a unit_price and no charge_kind")
        return self


class JobIn(Strict):
    id: Id
    name: Name | None = None
    customer_id: Id
    billing_type: BillingTypeName
    price_list_id: Id | None = None
    invoiceables: Annotated[list[InvoiceableIn], Field(max_length=500)] = Field(default_factory=list)


class JobStatusIn(Strict):
    reason: Annotated[str, Field(max_length=500)] | None = None


class JobInvoiceIn(Strict):
    """A policy's invoice. Progress: amount, percent, items (itemized) or categories (grouped), and
    apply_deposits to net open deposits; deposit: amount; complete: nothing (it bills what is
    left); correction: a signed amount, items or categories (grouped)."""

    id: Id | None = Field(
        default=None,
        description=(
            "your id for this invoice of the job; without one the request itself is its identity: "
            "the same request again (a double-click) is answered with the first invoice"
        ),
    )
    policy: PolicyName
    amount: SignedMoney | None = None
    percent: Percent | None = None
    items: Annotated[dict[Id, SignedMoney], Field(max_length=500)] | None = None
    categories: Annotated[dict[Category, SignedMoney], Field(max_length=100)] | None = None
    apply_deposits: Money | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    customer_id: Id | None = Field(
        default=None, description="split billing: any customer (the job's by default)"
    )
    issue_date: Day | None = Field(
        default=None, description="today by default; backdating is limited per tenant"
    )
    terms_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 30
    number: Annotated[str, Field(min_length=1, max_length=21)] | None = Field(
        default=None, description="only when numbering is automatic (overridable)"
    )


class GlEntryIn(Strict):
    account: Annotated[str, Field(min_length=1, max_length=100)]
    debit: Money = Decimal("0")
    credit: Money = Decimal("0")


class ApproveIn(Strict):
    distribution: Annotated[list[GlEntryIn], Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="GL distribution; the tenant's default accounts when absent"
    )


class ExportIn(Strict):
    invoice_ids: Annotated[list[Id], Field(min_length=1, max_length=100)]
    target: Literal["quickbooks", "csv", "iif"]


class JobSettingsIn(Strict):
    numbering: Literal["none", "automatic", "automatic_fixed"] = "automatic"
    backdating_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 30
    accounting_integration: StrictBool = False
    receivable_account: Annotated[str, Field(min_length=1, max_length=100)] = "Accounts Receivable"
    income_account: Annotated[str, Field(min_length=1, max_length=100)] = "Sales"
    deposit_account: Annotated[str, Field(min_length=1, max_length=100)] = "Customer Deposits"
    category_accounts: Annotated[
        dict[Category, Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)
    ] = Field(default_factory=dict)


# ---------------------------------------------------------------------------- responses
class InvoiceableOut(Out):
    id: str
    kind: str
    product_id: str
    description: str
    quantity: DecimalText
    unit_price: DecimalText
    category: str
    charge_kind: str | None = None
    taxable: bool
    counts: bool = Field(description="counts towards the suggested price under the billing type")
    amount: DecimalText
    price: DecimalText = Field(description="amount plus corrections; 0 when it does not count")
    billed: DecimalText
    remaining: DecimalText


class JobOut(Record):
    name: str | None = None
    customer_id: str
    billing_type: BillingTypeName
    status: JobStatusName
    price_list_id: str | None = None
    version: int
    invoice_count: int
    suggested_price: DecimalText
    invoiced: DecimalText = Field(description="billed against invoiceables so far (deposits not included)")
    deposits: DecimalText
    open_deposits: DecimalText
    remaining: DecimalText = Field(description="still to invoice: unbilled remainders less open deposits")
    invoiceables: list[InvoiceableOut]


class DraftLineOut(Out):
    line_kind: str
    description: str
    product_id: str
    amount: DecimalText
    invoiceable_id: str | None = None
    category: str | None = None
    taxable: bool


class JobInvoiceDraftOut(Out):
    policy: PolicyName
    invoice_type: Literal["partial", "complete", "correction"]
    total: DecimalText
    lines: list[DraftLineOut]
    job_after: JobOut


class JobInvoicesOut(Out):
    job: JobOut
    invoices: list[InvoiceOut]


class ExportOut(Out):
    target: str
    url: str | None = Field(default=None, description="presigned GET link of the file (csv, iif)")
    expires_at: str | None = None
    invoices: list[InvoiceOut]


class JournalAccountOut(Out):
    account: str
    debit: DecimalText
    credit: DecimalText


class JournalOut(Out):
    count: int
    total: DecimalText
    by_type: dict[str, DecimalText]
    taxable: DecimalText = Field(description="tax distribution: amounts on taxable lines")
    non_taxable: DecimalText
    by_account: list[JournalAccountOut]
    invoices: list[InvoiceOut]


class JobSettingsOut(Out):
    numbering: str
    backdating_days: int
    accounting_integration: bool
    receivable_account: str
    income_account: str
    deposit_account: str
    category_accounts: dict[str, str]


class JobPage(Out):
    items: list[JobOut]
    next_cursor: str | None = Field(description="pass back as cursor for the next page; null at the end")


class DeletedJobOut(Out):
    deleted: Literal[True]
    id: str
