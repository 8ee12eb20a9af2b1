"""Single-table PynamoDB models. Keys are built here and nowhere else (docs/data-model.md).

Every item carries `pk`/`sk`, up to two generic GSI key pairs and a `type` discriminator. Every
record whose state changes keeps its audit trail in `history`, appended in the same write that
changes the state, so a state change and its record can never disagree and cost no extra item.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from fieldbill.settings import get_settings


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read back as Decimal (PynamoDB's NumberAttribute goes through float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class _LazyTableMeta(type):
    # The table name is read from the environment at first use, never at import.
    @property
    def table_name(cls) -> str:
        return get_settings().table_name


class _Meta(metaclass=_LazyTableMeta):
    pass


class Gsi1(GlobalSecondaryIndex["Entity"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["Entity"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Gsi3(GlobalSecondaryIndex["Entity"]):
    """Sparse: only posted job invoices carry its keys (Invoice.posted_key; wt-jobs2)."""

    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class HistoryEntry(MapAttribute[str, Any]):
    """One state change: who (user or run), when, from, to, why."""

    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    from_state = UnicodeAttribute(null=True)
    to_state = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)


META = "#"


def tenant_prefix(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def qbo_ref_key(tenant_id: str, entity: str) -> str:
    """gsi2 partition of a tenant's contacts (Customer) or products (Item) by QuickBooks id: set by
    whoever links the record (the outbound sync or an inbound pull), read by webhooks and pulls."""
    return f"{tenant_prefix(tenant_id)}#QBO#{entity}"


class Entity(Model):
    Meta = _Meta  # type: ignore[assignment]

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi1 = Gsi1()
    gsi2 = Gsi2()
    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    history = ListAttribute(of=HistoryEntry, default=list)
    ttl = NumberAttribute(null=True)
    # How many live records point at this one (tasks at a contact, assignments at a product…);
    # raised and lowered in the transaction that writes the referencing record; delete needs 0.
    ref_count = NumberAttribute(null=True)

    # Declarative keys: a record of a tenant lives at "T#<tenant>#<PREFIX>#<id>" and its kind is
    # listed (gsi1) at "T#<tenant>#<LIST>". An entity whose keys have another shape says so with
    # its own builder; tests/unit/test_keys.py pins every key string.
    PREFIX: ClassVar[str] = ""
    LIST: ClassVar[str] = ""

    @classmethod
    def key(cls, tenant_id: str, record_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}#{record_id}"

    @classmethod
    def list_key(cls, tenant_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#{cls.LIST}"


# ---------------------------------------------------------------------------- people and catalogue
class Contact(Entity, discriminator="Contact"):
    PREFIX = "CONTACT"
    LIST = "CONTACTS"

    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    tags = ListAttribute(of=UnicodeAttribute, default=list)
    membership_id = UnicodeAttribute(null=True)
    team_id = UnicodeAttribute(null=True)
    price_list_id = UnicodeAttribute(null=True)
    balance = DecimalAttribute(default=lambda: Decimal("0"))
    active = BooleanAttribute(default=True)
    qbo_id = UnicodeAttribute(null=True)
    qbo_sync_token = UnicodeAttribute(null=True)
    # --- recurring billing (issue 16): the account's bill profile and its own Net-N over the
    # profile's terms.
    bill_profile_id = UnicodeAttribute(null=True)
    terms_days = NumberAttribute(null=True)
    # issue 15: changed here since QuickBooks took it (the change's stamp; store/qbo_links.py)
    qbo_dirty_since = UnicodeAttribute(null=True)
    # --- issue 15, tax per contact (domain/tax.resolve): its own code, or tax-exempt
    tax_code_id = UnicodeAttribute(null=True)
    tax_exempt = BooleanAttribute(null=True)
    # issue 15: why it is exempt (QuickBooks' TaxExemptionReasonId, domain/tax.EXEMPTION_REASONS)
    tax_exemption_reason = NumberAttribute(null=True)
    # --- issue 17: contact details the billing page shows (QuickBooks: PrimaryPhone,
    # BillAddr one line per line)
    phone = UnicodeAttribute(null=True)
    address = UnicodeAttribute(null=True)


class Product(Entity, discriminator="Product"):
    PREFIX = "PRODUCT"
    LIST = "PRODUCTS"

    name = UnicodeAttribute()
    unit = UnicodeAttribute(null=True)
    default_unit_price = DecimalAttribute(null=True)
    kind = UnicodeAttribute(default="service")
    auto_created = BooleanAttribute(default=False)
    income_account_ref = UnicodeAttribute(null=True)
    expense_account_ref = UnicodeAttribute(null=True)
    qbo_id = UnicodeAttribute(null=True)
    qbo_sync_token = UnicodeAttribute(null=True)
    # False when the item was made inactive (or deleted) in QuickBooks.
    active = BooleanAttribute(default=True)
    # issue 15: changed here since QuickBooks took it (the change's stamp; store/qbo_links.py)
    qbo_dirty_since = UnicodeAttribute(null=True)
    # ---- issue 17: a product is also a billing-page service type (catalog_role "service_type")
    # or inventory item ("inventory_item"); its `kind` stays its QuickBooks item type, so both
    # reach QuickBooks through the product sync unchanged.
    catalog_role = UnicodeAttribute(null=True)
    taxable = BooleanAttribute(default=False)
    cost = DecimalAttribute(null=True)
    billing_method = UnicodeAttribute(null=True)  # fixed | hourly | hourly_per_worker
    round_up_minutes = NumberAttribute(null=True)
    minimum_hours = DecimalAttribute(null=True)
    default_billing_status = UnicodeAttribute(null=True)  # qbo | qbd | local | unbillable
    default_inventory = ListAttribute(of=UnicodeAttribute, null=True)  # inventory item ids
    trip_fee_id = UnicodeAttribute(null=True)  # the service type that is this type's trip fee
    is_trip_fee = BooleanAttribute(default=False)
    # --- issue 15, tax per product (domain/tax.resolve): never taxed (a service type's or
    # inventory item's own `taxable: false` says the same)
    non_taxable = BooleanAttribute(null=True)


class PriceList(Entity, discriminator="PriceList"):
    PREFIX = "PRICELIST"
    LIST = "PRICELISTS"

    name = UnicodeAttribute()
    # product id -> unit price as a decimal string (a map of Decimals, kept exact)
    prices = MapAttribute[str, Any](default=dict)


class Membership(Entity, discriminator="Membership"):
    PREFIX = "MEMBERSHIP"
    LIST = "MEMBERSHIPS"

    name = UnicodeAttribute()


class Team(Entity, discriminator="Team"):
    PREFIX = "TEAM"
    LIST = "TEAMS"

    name = UnicodeAttribute()


class ProductAssignment(Entity, discriminator="ProductAssignment"):
    """All of a tenant's assignments share one partition: a compile loads them in one query."""

    scope = UnicodeAttribute()  # task | contact | membership | team | tenant
    scope_id = UnicodeAttribute()
    line_kind = UnicodeAttribute()
    product_id = UnicodeAttribute()

    PREFIX = "ASSIGN"

    @classmethod
    def key(cls, tenant_id: str) -> str:  # type: ignore[override]  # one partition per tenant: no id
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}"

    @staticmethod
    def sort_key(scope: str, scope_id: str, line_kind: str) -> str:
        return f"{scope}#{scope_id}#{line_kind}"


# ---------------------------------------------------------------------------- work
class Task(Entity, discriminator="Task"):
    PREFIX = "TASK"
    LIST = "TASKS"

    title = UnicodeAttribute()
    client_contact_id = UnicodeAttribute(null=True)
    billable = BooleanAttribute(default=True)
    status = UnicodeAttribute(default="draft")
    product_id = UnicodeAttribute(null=True)
    price_list_id = UnicodeAttribute(null=True)
    unit = UnicodeAttribute(null=True)
    unit_price = DecimalAttribute(null=True)


class TaskEntry(Entity, discriminator="TaskEntry"):
    """Lives in its task's partition. While stopped and unbilled it sits in the sparse
    `gsi2` "unbilled" index that compile reads; billing removes it from that index."""

    task_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # time | mileage | goods | expense
    description = UnicodeAttribute(null=True)
    worker = UnicodeAttribute(null=True)
    work_date = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    stopped_at = UnicodeAttribute(null=True)
    distance_km = DecimalAttribute(null=True)
    transport_minutes = DecimalAttribute(null=True)
    quantity = DecimalAttribute(null=True)
    unit_price = DecimalAttribute(null=True)
    snapshot_unit_price = DecimalAttribute(null=True)
    transport_time_snapshot_unit_price = DecimalAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    billed = BooleanAttribute(default=False)
    billed_at = UnicodeAttribute(null=True)
    billed_by = UnicodeAttribute(null=True)

    @staticmethod
    def key(tenant_id: str, task_id: str) -> str:
        return Task.key(tenant_id, task_id)

    @staticmethod
    def sort_key(entry_id: str) -> str:
        return f"ENTRY#{entry_id}"

    @staticmethod
    def unbilled_key(tenant_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#UNBILLED"

    @staticmethod
    def unbilled_sort_key(work_date: str, task_id: str, entry_id: str) -> str:
        return f"{work_date}#{task_id}#{entry_id}"


# ---------------------------------------------------------------------------- billing
class BillableItem(Entity, discriminator="BillableItem"):
    PREFIX = "ITEM"

    entry_id = UnicodeAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    contact_id = UnicodeAttribute()
    line_kind = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    product_name = UnicodeAttribute(null=True)
    unit = UnicodeAttribute(null=True)
    quantity = DecimalAttribute()
    unit_price = DecimalAttribute()
    amount = DecimalAttribute()
    product_scope = UnicodeAttribute(null=True)
    price_source = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="pending")
    invoice_id = UnicodeAttribute(null=True)
    # Its invoice's destination (quickbooks | local), copied when invoiced: the billing page filters
    # and badges by it without reading the invoice.
    destination = UnicodeAttribute(null=True)
    work_date = UnicodeAttribute()
    run_id = UnicodeAttribute(null=True)
    # ---- issue 17: a visit's line carries what the billing page filters and shows, so one query
    # of the status partition pages customers (docs/data-model.md, pattern S1).
    visit_id = UnicodeAttribute(null=True)
    service_type_id = UnicodeAttribute(null=True)
    service_type_name = UnicodeAttribute(null=True)
    worker_ids = ListAttribute(of=UnicodeAttribute, null=True)
    worker_names = ListAttribute(of=UnicodeAttribute, null=True)
    billing_status = UnicodeAttribute(null=True)  # the visit's own or its type's; null: company's
    taxable = BooleanAttribute(default=False)
    price_detail = MapAttribute[str, Any](null=True)  # why this price (domain/service_pricing)

    @staticmethod
    def status_key(tenant_id: str, status: str) -> str:
        return f"{tenant_prefix(tenant_id)}#ITEMS#{status}"

    @staticmethod
    def status_sort_key(contact_id: str, work_date: str, item_id: str) -> str:
        return f"{contact_id}#{work_date}#{item_id}"


class InvoiceLine(MapAttribute[str, Any]):
    item_id = UnicodeAttribute(null=True)
    line_kind = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    product_name = UnicodeAttribute(null=True)
    unit = UnicodeAttribute(null=True)
    quantity = DecimalAttribute()
    unit_price = DecimalAttribute()
    amount = DecimalAttribute()
    work_date = UnicodeAttribute(null=True)
    line_no = NumberAttribute(null=True)
    taxable = BooleanAttribute(default=False)
    # --- issue 15, per-line tax (domain/model.InvoiceLine)
    tax_code_id = UnicodeAttribute(null=True)
    tax_rate = DecimalAttribute(null=True)
    tax_source = UnicodeAttribute(null=True)
    tax_amount = DecimalAttribute(null=True)
    # --- job invoices (issue 14): the invoiceable or charge category a line bills.
    invoiceable_id = UnicodeAttribute(null=True)
    category = UnicodeAttribute(null=True)


class Payment(MapAttribute[str, Any]):
    """A payment recorded here (source "fieldbill") or seen in QuickBooks (source "quickbooks")."""

    id = UnicodeAttribute()
    amount = DecimalAttribute()
    date = UnicodeAttribute()
    method = UnicodeAttribute(null=True)
    reference = UnicodeAttribute(null=True)
    source = UnicodeAttribute(default="fieldbill")
    recorded_by = UnicodeAttribute(null=True)
    recorded_at = UnicodeAttribute(null=True)
    qbo_id = UnicodeAttribute(null=True)
    qbo_error = MapAttribute[str, Any](null=True)


# ---- credit memos (issue 13, wt-credit) ---------------------------------------------------------
class CreditMemoLine(MapAttribute[str, Any]):
    description = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    quantity = DecimalAttribute()
    unit_price = DecimalAttribute()
    amount = DecimalAttribute()
    taxable = BooleanAttribute(null=True)  # wt-life: the line credits tax too (domain/credit_tax.py)


class CreditMemo(MapAttribute[str, Any]):
    """A credit memo against an invoice (a correction): `applied` of it lowered the invoice's
    balance, `unapplied` is the contact's credit. In QuickBooks a CreditMemo (`qbo_id`) and, when
    some of it is applied, a Payment of 0 linking it to the invoice (`qbo_apply_id`)."""

    id = UnicodeAttribute()
    amount = DecimalAttribute()
    applied = DecimalAttribute()
    unapplied = DecimalAttribute()
    date = UnicodeAttribute()
    reason = UnicodeAttribute()
    lines = ListAttribute(of=CreditMemoLine, default=list)
    full = BooleanAttribute(default=False)
    recorded_by = UnicodeAttribute(null=True)
    recorded_at = UnicodeAttribute(null=True)
    qbo_id = UnicodeAttribute(null=True)
    qbo_apply_id = UnicodeAttribute(null=True)
    qbo_error = MapAttribute[str, Any](null=True)
    # --- removal (wt-life): status live (absent: live) -> removed through CREDIT_MEMO_MACHINE, with
    # who, when and why; qbo_removed once its applying Payment and CreditMemo are deleted there.
    status = UnicodeAttribute(null=True)
    removed_by = UnicodeAttribute(null=True)
    removed_at = UnicodeAttribute(null=True)
    removed_reason = UnicodeAttribute(null=True)
    qbo_removed = BooleanAttribute(null=True)
    history = ListAttribute(of=HistoryEntry, null=True)
    # --- tax (wt-life, decision 0011 amended): amount = subtotal + tax_total (what it credits);
    # `taxable` for a credit of an amount alone; qbo_total: the CreditMemo's TotalAmt in QuickBooks.
    subtotal = DecimalAttribute(null=True)
    tax_total = DecimalAttribute(null=True)
    tax_rate = DecimalAttribute(null=True)
    taxable = BooleanAttribute(null=True)
    qbo_total = DecimalAttribute(null=True)


class InvoiceVersion(MapAttribute[str, Any]):
    """The content of an invoice version QuickBooks holds (wt-credit): kept when a person edits an
    invoice QuickBooks has, so an edit QuickBooks refuses can give it back (store/edit_refusals.py)."""

    version = NumberAttribute()
    lines = ListAttribute(of=InvoiceLine, default=list)
    item_ids = ListAttribute(of=UnicodeAttribute, default=list)
    subtotal = DecimalAttribute()
    total = DecimalAttribute()
    issue_date = UnicodeAttribute()
    due_date = UnicodeAttribute(null=True)
    terms_days = NumberAttribute(null=True)
    memo = UnicodeAttribute(null=True)
    customer_message = UnicodeAttribute(null=True)
    billing_email = UnicodeAttribute(null=True)


# ---- end credit memos --------------------------------------------------------------------------


class Invoice(Entity, discriminator="Invoice"):
    """Lines are kept on the invoice item: one write stores the whole document."""

    contact_id = UnicodeAttribute()
    status = UnicodeAttribute(default="draft")
    destination = UnicodeAttribute(default="quickbooks")
    sync_status = UnicodeAttribute(default="not_synced")
    sync_error = MapAttribute[str, Any](null=True)
    grouping = UnicodeAttribute(null=True)
    group_key = UnicodeAttribute(null=True)
    lines = ListAttribute(of=InvoiceLine, default=list)
    item_ids = ListAttribute(of=UnicodeAttribute, default=list)
    subtotal = DecimalAttribute(default=lambda: Decimal("0"))
    total = DecimalAttribute(default=lambda: Decimal("0"))
    balance = DecimalAttribute(null=True)
    currency = UnicodeAttribute(default="USD")
    issue_date = UnicodeAttribute()
    due_date = UnicodeAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)
    qbo_id = UnicodeAttribute(null=True)
    qbo_sync_token = UnicodeAttribute(null=True)
    qbo_doc_number = UnicodeAttribute(null=True)
    qbo_total = DecimalAttribute(null=True)
    # The invoice version QuickBooks holds: a message for an older version is a no-op.
    qbo_synced_version = NumberAttribute(null=True)
    # Who may create it in QuickBooks now (a sync message id) and until when (epoch seconds):
    # two copies of its message never create it twice (store/invoice_sync.claim_create).
    create_claim = UnicodeAttribute(null=True)
    create_claim_until = NumberAttribute(null=True)
    # Our document number (<= 21 chars), sent as DocNumber when the company uses custom numbers.
    number = UnicodeAttribute(null=True)
    synced_at = UnicodeAttribute(null=True)
    # The lifecycle (issue 13): terms, texts a person sets, sending, payments.
    terms_days = NumberAttribute(null=True)
    memo = UnicodeAttribute(null=True)
    customer_message = UnicodeAttribute(null=True)
    billing_email = UnicodeAttribute(null=True)
    sent_at = UnicodeAttribute(null=True)
    sent_via = UnicodeAttribute(null=True)  # email | marked | quickbooks
    # Payments kept on the invoice (one write changes payments, balance and status together).
    payments = ListAttribute(of=Payment, default=list)
    # Payments removed here, kept while QuickBooks may still hold them (its Payment deleted
    # through the queue): the inbound flow must not take them back from QuickBooks' balance.
    removed_payments = ListAttribute(of=Payment, null=True)
    amount_paid = DecimalAttribute(default=lambda: Decimal("0"))
    amount_credited = DecimalAttribute(default=lambda: Decimal("0"))
    # Email delivery (store/messages.py): where the invoice is emailed by default, and the delivery
    # status of its latest message (domain/delivery.py), never its own `status`.
    delivery_status = UnicodeAttribute(null=True)
    delivery_message_id = UnicodeAttribute(null=True)
    # Credit memos (issue 13, wt-credit): kept on the invoice like its payments, so one write
    # changes the credits, the balance and the status together (amount_credited is their applied sum).
    credit_memos = ListAttribute(of=CreditMemo, default=list)
    # Removed credit memos (wt-life): out of the live list above (so the credits, balance and account
    # balance sums read only live ones), kept for the audit and for their deletion in QuickBooks.
    removed_credit_memos = ListAttribute(of=CreditMemo, null=True)
    # --- recurring billing (issue 16): the bill profile and period it bills (its id is derived
    # from them and the account), and the account balance brought forward when it was created:
    # shown on the invoice, never part of its total.
    bill_profile_id = UnicodeAttribute(null=True)
    period_key = UnicodeAttribute(null=True)
    balance_forward = DecimalAttribute(null=True)
    # QuickBooks' own send (wt-credit, store/qbo_send.py): {status queued|sent|failed, to, version,
    # at, error} of the latest send asked of QuickBooks.
    qbo_send = MapAttribute[str, Any](null=True)
    # The version QuickBooks holds, while an edit of it is on its way there (wt-credit).
    last_good = InvoiceVersion(null=True)
    # --- job invoices (issue 14, store/jobs.py): the job billed, its policy and type, and the
    # accounting workflow (domain/states.WORKFLOW_MACHINE) beside the payment status above.
    job_id = UnicodeAttribute(null=True)
    policy = UnicodeAttribute(null=True)
    invoice_type = UnicodeAttribute(null=True)  # partial | complete | correction
    workflow_status = UnicodeAttribute(null=True)  # invoiced | approved | exported | posted
    distribution = ListAttribute(of=MapAttribute, null=True)  # [{account, debit, credit}]
    approved_at = UnicodeAttribute(null=True)
    exported_at = UnicodeAttribute(null=True)
    export_ref = UnicodeAttribute(null=True)  # quickbooks, or the export file's key
    posted_at = UnicodeAttribute(null=True)
    # A negative correction is a credit memo in QuickBooks, recorded on this invoice of the job.
    credit_target_id = UnicodeAttribute(null=True)
    # --- posted job invoices by posting time (issue 14, wt-jobs2; sparse gsi3): set in the write
    # that posts, so the journal reads a period by a key range instead of filtering the list.
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    gsi3 = Gsi3()
    # Sales tax and QuickBooks' figures (issue 15, domain/tax.py): total = subtotal + tax_total.
    # tax_source "quickbooks": QuickBooks computed the tax (automated sales tax) and its TotalTax
    # and TotalAmt were taken; qbo_tax_total is its TotalTax as last answered.
    tax_total = DecimalAttribute(null=True)
    tax_code_id = UnicodeAttribute(null=True)
    tax_rate = DecimalAttribute(null=True)
    tax_source = UnicodeAttribute(null=True)
    qbo_tax_total = DecimalAttribute(null=True)
    # The record differs from QuickBooks' copy in fields QuickBooks holds (issue 15 item 5): set
    # in the same write as the change, cleared when a sync of that version lands.
    dirty = BooleanAttribute(null=True)
    # --- issue 15, reconciliation: times QuickBooks' copy was deleted there and ours pushed again
    # as a new invoice (part of the create's requestid: QuickBooks would replay the first create)
    qbo_pushes = NumberAttribute(null=True)
    qbo_deleted_id = UnicodeAttribute(null=True)  # the QuickBooks invoice it replaces (deleted there)

    @staticmethod
    def key(tenant_id: str, invoice_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#INVOICE#{invoice_id}"

    @staticmethod
    def list_key(tenant_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#INVOICES"

    @staticmethod
    def run_key(tenant_id: str, run_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#RUN#{run_id}#INVOICES"

    @staticmethod
    def run_sort_key(sync_status: str, invoice_id: str) -> str:
        return f"{sync_status}#{invoice_id}"

    # --- the journal's index (wt-jobs2): posted job invoices of a tenant by posting time.
    @staticmethod
    def posted_key(tenant_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#POSTED"

    @staticmethod
    def posted_sort_key(posted_at: str, invoice_id: str) -> str:
        return f"{posted_at}#{invoice_id}"


class SentMessage(Entity, discriminator="SentMessage"):
    """One email of one invoice version to one recipient; its id is the deterministic message key
    (domain/delivery.message_key), so a retried send finds it. Found again by SES's message id
    (gsi1) when SES reports the message's delivery, bounce or complaint."""

    invoice_id = UnicodeAttribute()
    invoice_version = NumberAttribute()
    recipient = UnicodeAttribute()
    sender = UnicodeAttribute()
    subject = UnicodeAttribute()
    status = UnicodeAttribute(default="sending")
    # While `sending`: no other send of this message before then (the SES call may be under way).
    lease_until = NumberAttribute(null=True)
    ses_message_id = UnicodeAttribute(null=True)
    sent_at = UnicodeAttribute(null=True)
    last_error = MapAttribute[str, Any](null=True)
    # The last SES event applied (type, time, detail such as a bounce's type and diagnostic).
    last_event = MapAttribute[str, Any](null=True)

    @staticmethod
    def key(tenant_id: str, message_id: str) -> str:
        return f"{tenant_prefix(tenant_id)}#MESSAGE#{message_id}"

    @staticmethod
    def ses_key(ses_message_id: str) -> str:
        """gsi1 partition of a message by SES's id (SES events carry only that)."""
        return f"SESMESSAGE#{ses_message_id}"


# ---------------------------------------------------------------------------- runs and operations
class BillingRun(Entity, discriminator="BillingRun"):
    PREFIX = "RUN"
    LIST = "RUNS"

    status = UnicodeAttribute(default="queued")
    stage = UnicodeAttribute(default="queued")
    scope_key = UnicodeAttribute()
    contact_ids = ListAttribute(of=UnicodeAttribute, null=True)
    date_from = UnicodeAttribute(null=True)
    date_to = UnicodeAttribute(null=True)
    grouping = UnicodeAttribute(default="per_contact")
    sync = BooleanAttribute(default=True)
    counts = MapAttribute[str, Any](default=dict)
    errors = ListAttribute(of=MapAttribute, default=list)
    execution_arn = UnicodeAttribute(null=True)
    started_by = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    cursor = UnicodeAttribute(null=True)


class RunLock(Entity, discriminator="RunLock"):
    """At most one active run per tenant and scope: created conditionally, deleted when the run ends."""

    PREFIX = "RUNLOCK"

    run_id = UnicodeAttribute()


class Operation(Entity, discriminator="Operation"):
    PREFIX = "OP"

    kind = UnicodeAttribute()
    status = UnicodeAttribute(default="queued")
    request = MapAttribute[str, Any](default=dict)
    result = MapAttribute[str, Any](null=True)
    error = MapAttribute[str, Any](null=True)


# ---------------------------------------------------------------------------- QuickBooks
class QboConnection(Entity, discriminator="QboConnection"):
    realm_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="disconnected")  # connected | needs_reconnect | disconnected
    company_name = UnicodeAttribute(null=True)
    access_token_enc = UnicodeAttribute(null=True)
    refresh_token_enc = UnicodeAttribute(null=True)
    access_expires_at = NumberAttribute(null=True)
    # Bumped on every token rotation: a refresh is stored only if nobody rotated in between.
    token_version = NumberAttribute(default=0)
    refresh_lease_until = NumberAttribute(null=True)
    settings = MapAttribute[str, Any](default=dict)
    watermarks = MapAttribute[str, Any](default=dict)
    last_errors = ListAttribute(of=MapAttribute, default=list)
    oauth_state = UnicodeAttribute(null=True)

    PREFIX = "QBO"

    @classmethod
    def key(cls, tenant_id: str) -> str:  # type: ignore[override]  # one connection per tenant: no id
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}"

    @staticmethod
    def realm_key(realm_id: str) -> str:
        return f"REALM#{realm_id}"

    @staticmethod
    def connected_key() -> str:
        """gsi2 partition listing connected companies (the schedules pull each of them)."""
        return "QBO#CONNECTED"


class InboundEvent(Entity, discriminator="QboInboundEvent"):
    """A webhook event already applied (or being applied): a conditional put makes it once only.
    Lives in its own partition per event, expires after a week (Intuit retries for about a day)."""

    realm_id = UnicodeAttribute(null=True)
    state = UnicodeAttribute(default="applying")  # applying | applied

    PREFIX = "QBOEVENT"

    @classmethod
    def key(cls, event_id: str) -> str:  # type: ignore[override]  # a realm's event, not a tenant's record
        return f"{cls.PREFIX}#{event_id}"


# ---------------------------------------------------------------- numbering (issue 15: store/numbering.py)
class NumberSequence(Entity, discriminator="NumberSequence"):
    """A tenant's counter of one document sequence (invoices, job invoices…): `next_value` is the
    number the next record takes; it only moves in the transaction that writes that record."""

    PREFIX = "SEQ"

    next_value = NumberAttribute()


class NumberClaim(Entity, discriminator="NumberClaim"):
    """One number of one sequence, held by one record: two records can never share a number (an
    automatic one or one a person typed). `id` is the number; `owner_id` the record holding it."""

    sequence = UnicodeAttribute()
    owner_id = UnicodeAttribute()

    PREFIX = "NUMBER"

    @classmethod
    def key(cls, tenant_id: str, sequence: str, number: str) -> str:  # type: ignore[override]
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}#{sequence}#{number}"


# ---------------------------------------------------------------------------- recurring billing (issue 16)
class BillProfile(Entity, discriminator="BillProfile"):
    """How and when a group of accounts is billed: cadence, billing day and start, terms, skip $0."""

    PREFIX = "BILLPROFILE"
    LIST = "BILLPROFILES"

    name = UnicodeAttribute()
    cadence = UnicodeAttribute()
    start_date = UnicodeAttribute()
    billing_day = NumberAttribute(default=1)
    every_weeks = NumberAttribute(default=1)
    terms_days = NumberAttribute(default=30)
    skip_zero = BooleanAttribute(default=False)


class RecurringService(Entity, discriminator="RecurringService"):
    """An active service of an account (weekly cart pickup, pool cleaning): listed per tenant by
    contact (gsi1), so a run reads every account's services in a request or two."""

    PREFIX = "RSERVICE"
    LIST = "RSERVICES"

    contact_id = UnicodeAttribute()
    name = UnicodeAttribute()
    product_id = UnicodeAttribute()
    product_name = UnicodeAttribute()
    rate = DecimalAttribute()
    basis = UnicodeAttribute()
    start_date = UnicodeAttribute()
    end_date = UnicodeAttribute(null=True)
    visit_weekday = NumberAttribute(null=True)

    @staticmethod
    def list_sort_key(contact_id: str, service_id: str) -> str:
        return f"{contact_id}#{service_id}"


class AccountBalance(Entity, discriminator="AccountBalance"):
    """A contact's account balance (what its open invoices still owe), kept up to date in the same
    transaction as every invoice write that changes it. All of a tenant's live in one partition:
    the invoice list reads every account balance in one request."""

    balance = DecimalAttribute(default=lambda: Decimal("0"))

    PREFIX = "ACCTBAL"

    @classmethod
    def key(cls, tenant_id: str) -> str:  # type: ignore[override]  # one partition per tenant: no id
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}"


class InvoiceGroup(Entity, discriminator="InvoiceGroup"):
    """A named collection of invoices; its members live in its partition (sk INV#<invoice id>)."""

    PREFIX = "IGROUP"
    LIST = "IGROUPS"

    name = UnicodeAttribute()

    @staticmethod
    def member_sort_key(invoice_id: str) -> str:
        return f"INV#{invoice_id}"


class InvoiceGroupMember(Entity, discriminator="InvoiceGroupMember"):
    group_id = UnicodeAttribute()
    invoice_id = UnicodeAttribute()


class PeriodPreview(Entity, discriminator="PeriodPreview"):
    """What a preview showed (each account's fingerprint and total), kept a day under its
    fingerprint: a commit that finds other data says which accounts changed."""

    PREFIX = "RPREVIEW"

    accounts = MapAttribute[str, Any](default=dict)
    # The run's own choices (invoice date, skip $0, destination) the preview was made with,
    # and how many parts (sk PART#nnnn, beside META) hold its accounts: one item holds 400 KB.
    parameters = MapAttribute[str, Any](null=True)
    parts = NumberAttribute(null=True)

    @staticmethod
    def part_sort_key(number: int) -> str:
        return f"PART#{number:04d}"


# ---------------------------------------------------------------------------- job-shop jobs (issue 14)
# Not the asynchronous "jobs" (operations, Operation above): a job shop's job and its invoices.
class JobInvoiceable(MapAttribute[str, Any]):
    """An order item or a job charge, embedded in its job: one read returns the whole job."""

    id = UnicodeAttribute()
    kind = UnicodeAttribute()  # order_item | charge
    description = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute()
    quantity = DecimalAttribute()
    unit_price = DecimalAttribute()
    category = UnicodeAttribute()
    charge_kind = UnicodeAttribute(null=True)  # billable | customer_alteration | non_billable
    taxable = BooleanAttribute(default=False)
    billed = DecimalAttribute(default=lambda: Decimal("0"))
    adjusted = DecimalAttribute(default=lambda: Decimal("0"))


class Job(Entity, discriminator="Job"):
    """A job with its invoiceables, deposits and invoice count in ONE item (listed on gsi1 by id):
    the suggested price and what is left of a job cost one read, and a job invoice is written in
    one transaction with the job it changes (conditional on `version`)."""

    PREFIX = "JOB"
    LIST = "JOBS"

    name = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute()
    billing_type = UnicodeAttribute()
    status = UnicodeAttribute(default="open")
    price_list_id = UnicodeAttribute(null=True)
    invoiceables = ListAttribute(of=JobInvoiceable, default=list)
    deposits = DecimalAttribute(default=lambda: Decimal("0"))
    deposits_applied = DecimalAttribute(default=lambda: Decimal("0"))
    invoice_count = NumberAttribute(default=0)
    version = NumberAttribute(default=1)


class JobBillingSettings(Entity, discriminator="JobBillingSettings"):
    """A tenant's job-invoicing settings (domain/job_accounting.JobBillingSettings)."""

    PREFIX = "JOBSETTINGS"

    numbering = UnicodeAttribute(default="automatic")  # none | automatic | automatic_fixed
    backdating_days = NumberAttribute(default=30)
    accounting_integration = BooleanAttribute(default=False)
    receivable_account = UnicodeAttribute(null=True)
    income_account = UnicodeAttribute(null=True)
    deposit_account = UnicodeAttribute(null=True)
    category_accounts = MapAttribute[str, Any](default=dict)

    @classmethod
    def key(cls, tenant_id: str) -> str:  # type: ignore[override]  # one per tenant: no id
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}"


# ---------------------------------------------------------------------------- completed services (issue 17)
class Worker(Entity, discriminator="Worker"):
    """A technician; `user_id` links the tenant's user (the JWT subject) when they have one."""

    PREFIX = "WORKER"
    LIST = "WORKERS"

    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    active = BooleanAttribute(default=True)


# ---- (issue 17): one worker per user of the tenant
class WorkerUser(Entity, discriminator="WorkerUser"):
    """The tenant's user (JWT subject, `id`) a worker signs in as (`worker_id`): put if absent in
    the transaction that links them, deleted in the one that unlinks them: one user, one worker."""

    PREFIX = "WORKERUSER"

    worker_id = UnicodeAttribute()


# ---- back-fills run once per tenant, on first use (store/backfills.py)
class Backfill(Entity, discriminator="Backfill"):
    """A tenant's data was brought up to a newer shape (`id`: the back-fill's name), so the reads
    that need it do not run it again."""

    PREFIX = "BACKFILL"

    result = UnicodeAttribute(null=True)


class CustomerPrice(Entity, discriminator="CustomerPrice"):
    """A customer's own price for a service type or inventory item; lives in the contact's
    partition, so pricing a visit reads the customer's prices in one query."""

    contact_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    unit_price = DecimalAttribute()

    @staticmethod
    def key(tenant_id: str, contact_id: str) -> str:  # type: ignore[override]
        return Contact.key(tenant_id, contact_id)

    @staticmethod
    def sort_key(product_id: str) -> str:
        return f"PRICE#{product_id}"


class BillingSettings(Entity, discriminator="BillingSettings"):
    """The company's billing settings: one record per tenant (like its QuickBooks connection)."""

    PREFIX = "BILLINGSETTINGS"

    default_invoice_type = UnicodeAttribute(null=True)  # qbo | qbd | local; null: by connection
    pricing_source = UnicodeAttribute(default="customer")  # customer | list
    surcharge_percent = DecimalAttribute(default=lambda: Decimal("0"))
    remove_zero_lines = BooleanAttribute(default=False)
    default_terms_days = NumberAttribute(default=30)

    @classmethod
    def key(cls, tenant_id: str) -> str:  # type: ignore[override]  # one per tenant: no id
        return f"{tenant_prefix(tenant_id)}#{cls.PREFIX}"


# ---------------------------------------------------------------- tax codes (issue 15: domain/tax.py)
class TaxCode(Entity, discriminator="TaxCode"):
    """A sales-tax code of a tenant and its rate (percent); `is_default`: new invoices use it."""

    PREFIX = "TAXCODE"
    LIST = "TAXCODES"

    name = UnicodeAttribute()
    rate = DecimalAttribute()
    description = UnicodeAttribute(null=True)
    is_default = BooleanAttribute(default=False)
    active = BooleanAttribute(default=True)


class UsedInventory(MapAttribute[str, Any]):
    item_id = UnicodeAttribute()
    quantity = DecimalAttribute()
    unit_price = DecimalAttribute(null=True)  # the price snapshot when it was used


class Visit(Entity, discriminator="Visit"):
    """A service visit; completing it compiles it into billable items in the same transaction
    (store/services.complete). Listed by service date in gsi1."""

    PREFIX = "VISIT"
    LIST = "VISITS"

    contact_id = UnicodeAttribute()
    service_date = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    service_type_id = UnicodeAttribute()
    worker_ids = ListAttribute(of=UnicodeAttribute, default=list)
    inventory = ListAttribute(of=UsedInventory, default=list)
    notes = UnicodeAttribute(null=True)
    billing_status = UnicodeAttribute(null=True)  # qbo | qbd | local | unbillable; null: resolved
    status = UnicodeAttribute(default="scheduled")  # scheduled | completed
    item_ids = ListAttribute(of=UnicodeAttribute, default=list)
    completed_at = UnicodeAttribute(null=True)

    @staticmethod
    def list_sort_key(service_date: str, visit_id: str) -> str:
        return f"{service_date}#{visit_id}"
