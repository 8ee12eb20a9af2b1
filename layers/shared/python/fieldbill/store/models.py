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
    amount_paid = DecimalAttribute(default=lambda: Decimal("0"))
    amount_credited = DecimalAttribute(default=lambda: Decimal("0"))
    # Email delivery (store/messages.py): where the invoice is emailed by default, and the delivery
    # status of its latest message (domain/delivery.py), never its own `status`.
    delivery_status = UnicodeAttribute(null=True)
    delivery_message_id = UnicodeAttribute(null=True)

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


# ---------------------------------------------------------------------------- completed services (issue 17)
class Worker(Entity, discriminator="Worker"):
    """A technician; `user_id` links the tenant's user (the JWT subject) when they have one."""

    PREFIX = "WORKER"
    LIST = "WORKERS"

    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    active = BooleanAttribute(default=True)


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
