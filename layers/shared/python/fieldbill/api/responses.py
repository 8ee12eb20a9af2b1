"""Response bodies of the HTTP API: what a client may rely on, declared once for docs/openapi.json.

Built from records only in fieldbill.api.views, field by field, so a storage attribute (keys,
ciphertext, history maps, sync tokens) never reaches a client unless it is declared here.
Money and quantities are plain decimal strings (`"72.50"`, never `"1E+3"` or a float).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

DecimalText = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["72.50"])]
BadgeName = Literal["QBO", "Pending", "Error", "Local", "Unbillable", "QBD"]  # QBD: issue 17


class Out(BaseModel):
    # forbid: the document says additionalProperties false, so any leak fails the schema check.
    # defer_build: a cold start builds the validators of the models its first request uses, not all.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


# ---------------------------------------------------------------------------- errors
class ErrorField(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    field: str = Field(
        description="the request's own name: a body field (dotted), a query parameter, a header"
    )
    message: str
    # Where the field is (body, query, path, header) and the validator's type, when known.
    in_: str | None = Field(default=None, alias="in")
    type: str | None = None


class ErrorDetail(BaseModel):
    # Extra members by code: not_found has entity and id, invalid_transition machine/current/requested.
    model_config = ConfigDict(extra="allow", defer_build=True)

    code: str = Field(examples=["validation_error"])
    message: str
    fields: list[ErrorField] = Field(default_factory=list)


class ErrorOut(BaseModel):
    """Every 4xx and 5xx of the API (and of the gateway's 401 and 404) has this shape."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    error: ErrorDetail


# ---------------------------------------------------------------------------- shared
T = TypeVar("T")


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass back as cursor for the next page; null at the end")


class Record(Out):
    id: str
    created_at: str | None = None
    updated_at: str | None = None


class DeletedOut(Out):
    deleted: Literal[True]
    id: str


class HistoryEntryOut(Out):
    at: str
    actor: str
    from_: str | None = Field(default=None, alias="from")
    to: str
    reason: str | None = None


class HistoryOut(Out):
    entity: str
    id: str
    deleted: bool
    history: list[HistoryEntryOut]


# ---------------------------------------------------------------------------- people and catalogue
class ContactOut(Record):
    name: str
    email: str | None = None
    tags: list[str]
    membership_id: str | None = None
    team_id: str | None = None
    price_list_id: str | None = None
    balance: DecimalText
    active: bool
    qbo_id: str | None = None
    # --- recurring billing (issue 16)
    bill_profile_id: str | None = None
    terms_days: int | None = None
    qbo_dirty_since: str | None = Field(
        default=None, description="changed here at this time and not yet in QuickBooks (issue 15)"
    )
    tax_code_id: str | None = None
    tax_exempt: bool = False
    tax_exemption_reason: int | None = None  # issue 15: QuickBooks' TaxExemptionReasonId (1-15)
    # --- issue 17
    phone: str | None = None
    address: str | None = None


class ProductOut(Record):
    name: str
    unit: str | None = None
    default_unit_price: DecimalText | None = None
    kind: str
    auto_created: bool
    income_account_ref: str | None = None
    expense_account_ref: str | None = None
    qbo_id: str | None = None
    qbo_dirty_since: str | None = Field(
        default=None, description="changed here at this time and not yet in QuickBooks (issue 15)"
    )
    active: bool
    non_taxable: bool = False


class PriceListOut(Record):
    name: str
    prices: dict[str, DecimalText] = Field(description="product id -> unit price")


class GroupOut(Record):
    """A membership or a team."""

    name: str


class AssignmentOut(Record):
    scope: str
    scope_id: str
    line_kind: str
    product_id: str


# ---------------------------------------------------------------------------- work
class TaskOut(Record):
    title: str
    client_contact_id: str | None = None
    billable: bool
    status: str
    product_id: str | None = None
    price_list_id: str | None = None
    unit: str | None = None
    unit_price: DecimalText | None = None


class EntryOut(Record):
    task_id: str
    kind: str
    description: str | None = None
    worker: str | None = None
    work_date: str
    started_at: str | None = None
    stopped_at: str | None = None
    distance_km: DecimalText | None = None
    transport_minutes: DecimalText | None = None
    quantity: DecimalText | None = None
    unit_price: DecimalText | None = None
    snapshot_unit_price: DecimalText | None = None
    transport_time_snapshot_unit_price: DecimalText | None = None
    product_id: str | None = None
    billed: bool
    billed_at: str | None = None
    billed_by: str | None = None


# ---------------------------------------------------------------------------- billing
class Badged(Record):
    badge: BadgeName
    badge_detail: dict[str, Any] | None = Field(
        default=None, description="for Error: QuickBooks' code, message, detail and element"
    )


class ItemOut(Badged):
    entry_id: str | None = None
    task_id: str | None = None
    contact_id: str
    line_kind: str
    description: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    unit: str | None = None
    quantity: DecimalText
    unit_price: DecimalText
    amount: DecimalText
    product_scope: str | None = None
    price_source: str | None = None
    status: str
    invoice_id: str | None = None
    destination: str | None = None
    work_date: str
    run_id: str | None = None
    # --- issue 17: a completed service's line says which service and why this price
    visit_id: str | None = Field(default=None, description="the completed service this line bills")
    price_detail: dict[str, str] | None = Field(
        default=None,
        description="why this price: billing method, minutes, rounding, minimum, workers, list and "
        "customer price, pricing source",
    )


class InvoiceLineOut(Out):
    item_id: str | None = None
    line_kind: str
    description: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    unit: str | None = None
    quantity: DecimalText
    unit_price: DecimalText
    amount: DecimalText
    work_date: str | None = None
    line_no: int | None = None
    taxable: bool = False
    # --- issue 15, per-line tax: the code and rate it is taxed at, who decided, its share of the tax
    tax_code_id: str | None = None
    tax_rate: DecimalText | None = None
    tax_source: Literal["line", "product", "contact", "tenant"] | None = None
    tax_amount: DecimalText | None = None
    # --- job invoices (issue 14)
    invoiceable_id: str | None = None
    category: str | None = None


class PaymentOut(Out):
    id: str
    amount: DecimalText
    date: str
    method: str | None = None
    reference: str | None = None
    source: str
    recorded_by: str | None = None
    recorded_at: str | None = None
    qbo_id: str | None = None
    qbo_error: dict[str, Any] | None = Field(default=None, description="QuickBooks refused it: why")


# ---- credit memos (issue 13, wt-credit) ----
class CreditMemoLineOut(Out):
    description: str | None = None
    product_id: str | None = None
    quantity: DecimalText
    unit_price: DecimalText
    amount: DecimalText
    taxable: bool | None = Field(default=None, description="it credits tax too")


class CreditMemoOut(Out):
    id: str
    amount: DecimalText
    applied: DecimalText = Field(description="the part that lowered the invoice's balance")
    unapplied: DecimalText = Field(description="the rest: the contact's credit (lowers the account balance)")
    date: str
    reason: str
    lines: list[CreditMemoLineOut] = Field(default_factory=list)
    full: bool = Field(
        default=False, description="the invoice is fully credited: its items are billable again"
    )
    recorded_by: str | None = None
    recorded_at: str | None = None
    qbo_id: str | None = Field(default=None, description="QuickBooks' CreditMemo")
    qbo_apply_id: str | None = Field(
        default=None, description="QuickBooks' Payment applying it to the invoice"
    )
    qbo_error: dict[str, Any] | None = Field(default=None, description="QuickBooks refused it: why")
    # --- removal (wt-life)
    status: Literal["live", "removed"] = Field(default="live", description="removed: DELETE undid it")
    removed_by: str | None = None
    removed_at: str | None = None
    removed_reason: str | None = None
    # --- tax (wt-life): amount = subtotal + tax_total, the credit's total
    subtotal: DecimalText | None = Field(default=None, description="before tax")
    tax_total: DecimalText | None = Field(default=None, description="the tax it credits")
    tax_rate: DecimalText | None = None
    taxable: bool | None = Field(default=None, description="a credit of an amount alone: taxable")
    qbo_total: DecimalText | None = Field(default=None, description="QuickBooks' TotalAmt of the CreditMemo")
    qbo_removed: bool | None = Field(
        default=None, description="removed: QuickBooks no longer holds it nor its applying Payment"
    )


class CreditMemoList(Out):
    invoice_id: str
    items: list[CreditMemoOut]


# ---- end credit memos ----


class AccountBalanceOut(Out):
    contact_id: str
    account_balance: DecimalText = Field(description="open invoices' balances minus unapplied credits")
    open_invoices: int
    quickbooks_balance: DecimalText | None = Field(
        default=None, description="the customer's balance QuickBooks last reported (null: not linked)"
    )
    differs_by: DecimalText | None = Field(
        default=None, description="account_balance - quickbooks_balance; 0 when both agree"
    )


class SyncWaitOut(Out):
    """issue 15: an invoice's sync waiting on its company."""

    reason: Literal["disconnected", "needs_reconnect", "throttled", "rate_limited", "desktop_connection"]
    retry_at: str | None = Field(
        default=None, description="expected retry time (UTC); null: after a reconnect"
    )
    detail: str


class InvoiceOut(Badged):
    contact_id: str
    status: str
    destination: str
    sync_status: str
    sync_error: dict[str, Any] | None = None
    grouping: str | None = None
    group_key: str | None = None
    lines: list[InvoiceLineOut]
    item_ids: list[str]
    subtotal: DecimalText
    total: DecimalText
    balance: DecimalText | None = None
    currency: str
    issue_date: str
    due_date: str | None = None
    run_id: str | None = None
    version: int
    qbo_id: str | None = None
    qbo_doc_number: str | None = None
    qbo_total: DecimalText | None = None
    qbo_synced_version: int | None = None
    number: str | None = None
    synced_at: str | None = None
    terms_days: int | None = None
    memo: str | None = None
    customer_message: str | None = None
    billing_email: str | None = None
    sent_at: str | None = None
    sent_via: str | None = None
    delivery_status: str | None = Field(
        default=None, description="of its latest email: sent, delivered, bounced ..."
    )
    amount_paid: DecimalText = "0"
    amount_credited: DecimalText = "0"
    payments: list[PaymentOut] = Field(default_factory=list)
    credit_memos: list[CreditMemoOut] = Field(default_factory=list)  # wt-credit
    qbo_send: dict[str, Any] | None = Field(
        default=None, description="QuickBooks' own send: status queued|sent|failed, to, version, at, error"
    )
    overdue: bool = Field(default=False, description="derived: something is owed after the due date")
    # --- recurring billing (issue 16)
    bill_profile_id: str | None = None
    period_key: str | None = None
    balance_forward: DecimalText | None = Field(
        default=None, description="the account balance when it was created: shown, not in its total"
    )
    account_balance: DecimalText | None = Field(
        default=None, description="in lists and GET: what the contact's open invoices owe now"
    )
    # --- job invoices (issue 14): absent on invoices of billing runs
    job_id: str | None = None
    policy: str | None = None
    invoice_type: Literal["partial", "complete", "correction"] | None = None
    workflow_status: Literal["invoiced", "approved", "exported", "posted"] | None = Field(
        default=None, description="accounting workflow; posted invoices are locked"
    )
    distribution: list[dict[str, Any]] | None = Field(
        default=None, description="GL entries: account, debit, credit"
    )
    approved_at: str | None = None
    exported_at: str | None = None
    export_ref: str | None = None
    posted_at: str | None = None
    credit_target_id: str | None = Field(
        default=None, description="a negative correction: the job invoice its QuickBooks credit memo credits"
    )
    # issue 15: tax, QuickBooks' figures, the flag when they differ, and where its sync stands
    tax_total: DecimalText = Field(default="0", description="total = subtotal + tax_total")
    tax_code_id: str | None = Field(default=None, description="the tax code whose rate was applied")
    tax_rate: DecimalText | None = Field(default=None, description="percent, copied from the code")
    tax_source: str | None = Field(
        default=None, description="quickbooks: QuickBooks computed the tax (automated sales tax)"
    )
    qbo_tax_total: DecimalText | None = Field(default=None, description="QuickBooks' TotalTax")
    totals_differ: bool = Field(
        default=False, description="derived: QuickBooks' TotalAmt differs from total by any amount"
    )
    dirty: bool = Field(default=False, description="changed here since QuickBooks last took it")
    sync_wait: SyncWaitOut | None = Field(
        default=None, description="GET /invoices/{id} only: why its sync waits on the company, until when"
    )


class BillingRunOut(Record):
    status: str
    stage: str
    contact_ids: list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None
    grouping: str
    sync: bool
    counts: dict[str, Any]
    errors: list[dict[str, Any]]
    started_by: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class OperationOut(Record):
    kind: str
    status: str
    request: dict[str, Any]
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class OperationAccepted(Out):
    operation_id: str
    status: str = Field(
        description="poll GET /operations/{operation_id} until it succeeded, failed or is cancelled"
    )


class SyncAccepted(Out):
    invoice_id: str
    sync_status: str


# ---------------------------------------------------------------------------- QuickBooks
class ConnectOut(Out):
    authorization_url: str


class CallbackOut(Out):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    connected: bool
    tenant_id: str
    realm_id: str | None = None
    reconnected: bool
    requeued_invoices: int | None = None
    pushed_records: int | None = Field(
        default=None, description="contacts and products changed while disconnected, pushed now (issue 15)"
    )


class LastSyncOut(Out):
    at: str | None = None
    mode: str | None = None
    counts: dict[str, Any]


class ConnectionOut(Out):
    """The connection status resource (tokens, the OAuth state and the lease are never shown)."""

    status: Literal["connected", "needs_reconnect", "disconnected"]
    realm_id: str | None = None
    company_name: str | None = None
    settings: dict[str, Any]
    settings_complete: bool
    missing_settings: list[str]
    last_sync: dict[str, LastSyncOut | None]
    last_errors: list[dict[str, Any]]
    updated_at: str | None = None
    history: list[HistoryEntryOut] = Field(default_factory=list)


class AccountOut(Out):
    id: str
    name: str | None = None
    fully_qualified_name: str | None = None
    account_type: str | None = None
    account_sub_type: str | None = None


class AccountsOut(Out):
    type: str
    items: list[AccountOut]


class PullAccepted(Out):
    data_type: str
    status: str
    realm_id: str | None = None


# ---------------------------------------------------------------------------- documents
class PrintOut(Out):
    """A print of many invoices: one PDF, fetched with a plain GET of `url` until `expires_at`."""

    url: str = Field(description="presigned GET link to the PDF; no bearer token needed")
    expires_at: str = Field(description="when the link stops working (ISO 8601, UTC)")
    expires_in: int = Field(description="seconds the link lives from this answer")
    invoice_count: int
    size_bytes: int


class SentOut(Out):
    invoice: InvoiceOut
    message_id: str = Field(description="ours: one per invoice version and recipient")
    recipient: str
    subject: str
    sent_now: bool = Field(
        description="false: this version already went to this recipient; nothing sent again"
    )
    delivery_status: str


# ---------------------------------------------------------------------------- tax codes (issue 15)
class TaxCodeOut(Record):
    name: str
    rate: DecimalText = Field(description="percent")
    description: str | None = None
    is_default: bool
    active: bool


class RepairOut(Out):
    """issue 15: a reconciliation repair queued."""

    kind: str
    invoice_id: str
    status: str
    qbo_id: str | None = Field(default=None, description="push_again: the deleted QuickBooks invoice")
    new_qbo_id: str | None = Field(default=None, description="push_again: the new one, once made")
