"""Completed services and their billing page (issue 17): service types, inventory items, workers,
customer prices, company billing settings, services (visits), the billing view, invoices from it
(one customer now, many as an operation) and why a service is not on the page."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StrictBool, StrictInt, WithJsonSchema, model_validator
from pydantic import ValidationError as PydanticValidationError

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import (
    Cursor,
    Datetime,
    Day,
    DayQuery,
    Email,
    Id,
    IdQuery,
    Money,
    Name,
    NamePrefix,
    PageLimit,
    Patch,
    Quantity,
    Strict,
    Unit,
    _decimal_schema,
)
from fieldbill.clock import today
from fieldbill.domain.errors import ValidationError
from fieldbill.store import catalog
from fieldbill.store import invoices as invoice_store
from fieldbill.store import services as store
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.qbo_sync import enqueue
from fieldbill.workflows.services import billing

router = APIGatewayHttpRouter()
OK = responses()
CREATED = responses(201, "Created")
ACCEPTED = responses(202, "Accepted")

BillingMethod = Literal["fixed", "hourly", "hourly_per_worker"]
BillingStatus = Literal["qbo", "qbd", "local", "unbillable"]
InvoiceType = Literal["qbo", "qbd", "local"]
ItemType = Literal["inventory", "non_inventory", "service"]
ServiceBadge = Literal["QBO", "QBD", "Local", "Unbillable"]
Percent = Annotated[Money, Field(le=100), WithJsonSchema(_decimal_schema(Decimal(0), Decimal(100)))]
Ids = Annotated[list[Id], Field(max_length=50)]


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


def _renamed(data: dict[str, Any], **names: str) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in data.items()}


# ---------------------------------------------------------------------------- service types
class ServiceTypeIn(Strict):
    id: Id | None = None
    name: Name
    billing_method: BillingMethod = "fixed"
    price: Money = Field(description="fixed price, or price per hour")
    taxable: StrictBool = False
    round_up_minutes: Annotated[StrictInt, Field(ge=0, le=240)] = Field(
        default=0, description="round the duration up to the next multiple (0: no rounding)"
    )
    minimum_hours: Quantity = Field(default=Decimal("0"), description="billable hours at least (per worker)")
    default_billing_status: BillingStatus | None = None
    default_inventory: Ids = Field(default_factory=list, description="inventory item ids used by default")
    trip_fee_id: Id | None = Field(default=None, description="the service type added as this type's trip fee")
    is_trip_fee: StrictBool = False
    unit: Unit | None = None


class ServiceTypePatch(Patch):
    required = frozenset({"name", "billing_method", "price"})
    name: Name | None = None
    billing_method: BillingMethod | None = None
    price: Money | None = None
    taxable: StrictBool | None = None
    round_up_minutes: Annotated[StrictInt, Field(ge=0, le=240)] | None = None
    minimum_hours: Quantity | None = None
    default_billing_status: BillingStatus | None = None
    default_inventory: Ids | None = None
    trip_fee_id: Id | None = None
    is_trip_fee: StrictBool | None = None
    unit: Unit | None = None


class ServiceTypeOut(out.Record):
    name: str
    billing_method: str
    price: out.DecimalText
    taxable: bool
    round_up_minutes: int
    minimum_hours: out.DecimalText
    default_billing_status: str | None = None
    default_inventory: list[str]
    trip_fee_id: str | None = None
    is_trip_fee: bool
    unit: str | None = None
    qbo_id: str | None = None


def _service_type(record: Any) -> ServiceTypeOut:
    return views.build(
        ServiceTypeOut,
        record,
        billing_method=record.billing_method or "fixed",
        price=views.decimal_text(Decimal(record.default_unit_price or 0)),
        round_up_minutes=int(record.round_up_minutes or 0),
        minimum_hours=views.decimal_text(Decimal(record.minimum_hours or 0)),
        default_inventory=list(record.default_inventory or []),
        is_trip_fee=bool(record.is_trip_fee),
    )


def _check_inventory_ids(tenant: str, ids: list[str] | None) -> None:
    if not ids:
        return
    for n, item_id in enumerate(ids):
        try:
            store.get_role_product(tenant, store.INVENTORY_ITEM, item_id)
        except Exception:
            raise ValidationError(
                f"default_inventory[{n}]", f"no inventory item {item_id!r} in this tenant"
            ) from None


@router.post(
    "/service-types", summary="Create a service type", tags=["services"], status_code=201, responses=CREATED
)
def create_service_type(body: ServiceTypeIn) -> ServiceTypeOut:
    tenant = _tenant()
    _check_inventory_ids(tenant, body.default_inventory)
    data = _renamed(body.model_dump(), price="default_unit_price") | {"kind": "service"}
    record = store.create_role_product(tenant, _actor(), store.SERVICE_TYPE, data)
    enqueue.push(tenant, "sync_product", record.id)  # an item in QuickBooks, like any product
    return _service_type(record)


@router.get("/service-types", summary="List service types by name", tags=["services"], responses=OK)
def list_service_types(
    limit: PageLimit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[ServiceTypeOut]:
    records, next_cursor = store.list_role_products(_tenant(), store.SERVICE_TYPE, limit, cursor, name_prefix)
    return out.Page[ServiceTypeOut](items=[_service_type(r) for r in records], next_cursor=next_cursor)


@router.get("/service-types/<type_id>", summary="Get a service type", tags=["services"], responses=OK)
def get_service_type(type_id: str) -> ServiceTypeOut:
    return _service_type(store.get_role_product(_tenant(), store.SERVICE_TYPE, type_id))


@router.patch(
    "/service-types/<type_id>", summary="Change a service type (partial)", tags=["services"], responses=OK
)
def update_service_type(type_id: str, body: ServiceTypePatch) -> ServiceTypeOut:
    tenant = _tenant()
    changes = body.changes()
    _check_inventory_ids(tenant, changes.get("default_inventory"))
    record = store.update_role_product(
        tenant, store.SERVICE_TYPE, type_id, _renamed(changes, price="default_unit_price"), _actor()
    )
    enqueue.push(tenant, "sync_product", record.id)
    return _service_type(record)


@router.delete(
    "/service-types/<type_id>", summary="Delete a service type nothing uses", tags=["services"], responses=OK
)
def delete_service_type(type_id: str) -> out.DeletedOut:
    store.delete_role_product(_tenant(), store.SERVICE_TYPE, type_id, _actor())
    return views.deleted(type_id)


# ---------------------------------------------------------------------------- inventory items
class InventoryItemIn(Strict):
    id: Id | None = None
    name: Name
    price: Money
    cost: Money | None = None
    taxable: StrictBool = False
    item_type: ItemType = Field(default="non_inventory", description="its QuickBooks item type")
    unit: Unit | None = None


class InventoryItemPatch(Patch):
    required = frozenset({"name", "price", "item_type"})
    name: Name | None = None
    price: Money | None = None
    cost: Money | None = None
    taxable: StrictBool | None = None
    item_type: ItemType | None = None
    unit: Unit | None = None


class InventoryItemOut(out.Record):
    name: str
    price: out.DecimalText
    cost: out.DecimalText | None = None
    taxable: bool
    item_type: str
    unit: str | None = None
    qbo_id: str | None = None


def _inventory_item(record: Any) -> InventoryItemOut:
    return views.build(
        InventoryItemOut,
        record,
        price=views.decimal_text(Decimal(record.default_unit_price or 0)),
        item_type=record.kind,
    )


@router.post(
    "/inventory-items",
    summary="Create an inventory item",
    tags=["services"],
    status_code=201,
    responses=CREATED,
)
def create_inventory_item(body: InventoryItemIn) -> InventoryItemOut:
    tenant = _tenant()
    data = _renamed(body.model_dump(), price="default_unit_price", item_type="kind")
    record = store.create_role_product(tenant, _actor(), store.INVENTORY_ITEM, data)
    enqueue.push(tenant, "sync_product", record.id)
    return _inventory_item(record)


@router.get("/inventory-items", summary="List inventory items by name", tags=["services"], responses=OK)
def list_inventory_items(
    limit: PageLimit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[InventoryItemOut]:
    records, next_cursor = store.list_role_products(
        _tenant(), store.INVENTORY_ITEM, limit, cursor, name_prefix
    )
    return out.Page[InventoryItemOut](items=[_inventory_item(r) for r in records], next_cursor=next_cursor)


@router.get("/inventory-items/<item_id>", summary="Get an inventory item", tags=["services"], responses=OK)
def get_inventory_item(item_id: str) -> InventoryItemOut:
    return _inventory_item(store.get_role_product(_tenant(), store.INVENTORY_ITEM, item_id))


@router.patch(
    "/inventory-items/<item_id>",
    summary="Change an inventory item (partial)",
    tags=["services"],
    responses=OK,
)
def update_inventory_item(item_id: str, body: InventoryItemPatch) -> InventoryItemOut:
    tenant = _tenant()
    changes = _renamed(body.changes(), price="default_unit_price", item_type="kind")
    record = store.update_role_product(tenant, store.INVENTORY_ITEM, item_id, changes, _actor())
    enqueue.push(tenant, "sync_product", record.id)
    return _inventory_item(record)


@router.delete(
    "/inventory-items/<item_id>",
    summary="Delete an inventory item nothing uses",
    tags=["services"],
    responses=OK,
)
def delete_inventory_item(item_id: str) -> out.DeletedOut:
    store.delete_role_product(_tenant(), store.INVENTORY_ITEM, item_id, _actor())
    return views.deleted(item_id)


# ---------------------------------------------------------------------------- workers
class WorkerIn(Strict):
    id: Id | None = None
    name: Name
    email: Email | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="the tenant's user (JWT subject) this technician signs in as"
    )
    active: StrictBool = True


class WorkerPatch(Patch):
    required = frozenset({"name", "active"})
    name: Name | None = None
    email: Email | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    active: StrictBool | None = None


class WorkerOut(out.Record):
    name: str
    email: str | None = None
    user_id: str | None = None
    active: bool


@router.post(
    "/workers", summary="Create a worker (technician)", tags=["services"], status_code=201, responses=CREATED
)
def create_worker(body: WorkerIn) -> WorkerOut:
    """A `user_id` already linked to another worker: 409 naming it (one user, one worker)."""
    return views.build(WorkerOut, store.create_worker(_tenant(), _actor(), body.model_dump()))


@router.get("/workers", summary="List workers by name", tags=["services"], responses=OK)
def list_workers(
    limit: PageLimit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[WorkerOut]:
    records, next_cursor = catalog.workers.list(_tenant(), limit, cursor, name_prefix)
    return out.Page[WorkerOut](items=[views.build(WorkerOut, r) for r in records], next_cursor=next_cursor)


# Registered before /workers/<worker_id>, which would take "me" for an id.
@router.get(
    "/workers/me",
    summary="The worker the signed-in user is (its user_id is the caller's JWT subject); 404 if none",
    tags=["services"],
    responses=OK,
)
def get_my_worker() -> WorkerOut:
    subject = str(context.claims(router).get("sub") or "")
    return views.build(WorkerOut, store.worker_of_user(_tenant(), subject))


@router.get("/workers/<worker_id>", summary="Get a worker", tags=["services"], responses=OK)
def get_worker(worker_id: str) -> WorkerOut:
    return views.build(WorkerOut, catalog.workers.get(_tenant(), worker_id))


@router.patch("/workers/<worker_id>", summary="Change a worker (partial)", tags=["services"], responses=OK)
def update_worker(worker_id: str, body: WorkerPatch) -> WorkerOut:
    return views.build(WorkerOut, store.update_worker(_tenant(), worker_id, body.changes(), _actor()))


@router.delete("/workers/<worker_id>", summary="Delete a worker", tags=["services"], responses=OK)
def delete_worker(worker_id: str) -> out.DeletedOut:
    store.delete_worker(_tenant(), worker_id, _actor())
    return views.deleted(worker_id)


# ---------------------------------------------------------------------------- customer prices
class CustomerPriceIn(Strict):
    unit_price: Money


class CustomerPriceOut(out.Record):
    contact_id: str
    product_id: str
    unit_price: out.DecimalText


@router.get(
    "/contacts/<contact_id>/prices",
    summary="A customer's own prices (service types and inventory items)",
    tags=["services"],
    responses=OK,
)
def list_customer_prices(contact_id: str) -> out.Page[CustomerPriceOut]:
    tenant = _tenant()
    catalog.contacts.get(tenant, contact_id)
    records = store.customer_prices(tenant, contact_id)
    return out.Page[CustomerPriceOut](
        items=[views.build(CustomerPriceOut, r) for r in records], next_cursor=None
    )


@router.put(
    "/contacts/<contact_id>/prices/<product_id>",
    summary="Set a customer's price for a service type or inventory item",
    tags=["services"],
    responses=OK,
)
def set_customer_price(contact_id: str, product_id: str, body: CustomerPriceIn) -> CustomerPriceOut:
    record = store.set_customer_price(_tenant(), contact_id, product_id, body.unit_price, _actor())
    return views.build(CustomerPriceOut, record)


@router.delete(
    "/contacts/<contact_id>/prices/<product_id>",
    summary="Remove a customer's price (the list price applies again)",
    tags=["services"],
    responses=OK,
)
def delete_customer_price(contact_id: str, product_id: str) -> out.DeletedOut:
    store.delete_customer_price(_tenant(), contact_id, product_id, _actor())
    return views.deleted(f"{contact_id}.{product_id}")


# ---------------------------------------------------------------------------- company billing settings
class BillingSettingsIn(Strict):
    default_invoice_type: InvoiceType | None = Field(
        default=None, description="left out: QBO when QuickBooks is connected, else local"
    )
    pricing_source: Literal["customer", "list"] = Field(
        default="customer", description="customer: a customer's own price wins; list: always the list price"
    )
    surcharge_percent: Percent = Field(
        default=Decimal("0"), description="added to each service as its own line"
    )
    remove_zero_lines: StrictBool = False
    default_terms_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 30


class BillingSettingsOut(out.Out):
    default_invoice_type: str | None = None
    pricing_source: str
    surcharge_percent: out.DecimalText
    remove_zero_lines: bool
    default_terms_days: int
    updated_at: str | None = None


def _settings_out(record: Any) -> BillingSettingsOut:
    if record is None:
        return BillingSettingsOut(
            pricing_source="customer", surcharge_percent="0", remove_zero_lines=False, default_terms_days=30
        )
    return BillingSettingsOut(
        default_invoice_type=record.default_invoice_type,
        pricing_source=record.pricing_source or "customer",
        surcharge_percent=views.decimal_text(Decimal(record.surcharge_percent or 0)),
        remove_zero_lines=bool(record.remove_zero_lines),
        default_terms_days=int(record.default_terms_days if record.default_terms_days is not None else 30),
        updated_at=record.updated_at,
    )


@router.get("/billing-settings", summary="The company's billing settings", tags=["services"], responses=OK)
def get_billing_settings() -> BillingSettingsOut:
    return _settings_out(store.get_settings(_tenant()))


@router.put(
    "/billing-settings", summary="Set the company's billing settings", tags=["services"], responses=OK
)
def put_billing_settings(body: BillingSettingsIn) -> BillingSettingsOut:
    return _settings_out(store.put_settings(_tenant(), body.model_dump(), _actor()))


# ---------------------------------------------------------------------------- services (visits)
class UsedItemIn(Strict):
    item_id: Id
    quantity: Quantity
    unit_price: Money | None = Field(default=None, description="price snapshot; left out: the item's price")


class ServiceIn(Strict):
    id: Id | None = None
    contact_id: Id
    service_date: Day
    started_at: Datetime | None = None
    ended_at: Datetime | None = None
    service_type_id: Id
    worker_ids: Annotated[list[Id], Field(min_length=1, max_length=20)]
    inventory: Annotated[list[UsedItemIn], Field(max_length=90)] | None = Field(
        default=None, description="left out: the service type's default inventory items, one each"
    )
    notes: Annotated[str, Field(max_length=4000)] | None = None
    billing_status: BillingStatus | None = Field(
        default=None,
        description="left out: the service type's default, else the company's default invoice type",
    )
    completed: StrictBool = Field(
        default=False, description="true: completed now (compiled into billable items)"
    )

    @model_validator(mode="after")
    def _times(self) -> ServiceIn:
        if (self.started_at is None) != (self.ended_at is None):
            raise ValueError("started_at and ended_at go together")
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at must not be before started_at")
        return self


class ServicePatch(Patch):
    required = frozenset({"service_date", "service_type_id", "worker_ids", "contact_id"})
    contact_id: Id | None = None
    service_date: Day | None = None
    started_at: Datetime | None = None
    ended_at: Datetime | None = None
    service_type_id: Id | None = None
    worker_ids: Annotated[list[Id], Field(min_length=1, max_length=20)] | None = None
    inventory: Annotated[list[UsedItemIn], Field(max_length=90)] | None = None
    notes: Annotated[str, Field(max_length=4000)] | None = None
    billing_status: BillingStatus | None = None


class UsedItemOut(out.Out):
    item_id: str
    quantity: out.DecimalText
    unit_price: out.DecimalText | None = None


class ServiceOut(out.Record):
    contact_id: str
    service_date: str
    started_at: str | None = None
    ended_at: str | None = None
    service_type_id: str
    worker_ids: list[str]
    inventory: list[UsedItemOut]
    notes: str | None = None
    billing_status: str | None = None
    status: str
    completed: bool
    item_ids: list[str]
    completed_at: str | None = None


def _service(record: Any) -> ServiceOut:
    inventory = [
        UsedItemOut.model_validate({k: v for k, v in views.plain(u).items() if v is not None})
        for u in record.inventory or []
    ]
    return views.build(ServiceOut, record, inventory=inventory, completed=record.status == "completed")


def _used(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("inventory") is not None:
        # A PATCH's changes keep the nested models; a POST's body is plain data already.
        plain = [u.model_dump() if isinstance(u, BaseModel) else u for u in data["inventory"]]
        data["inventory"] = [{k: v for k, v in u.items() if v is not None} for u in plain]
    return data


@router.post(
    "/services",
    summary="Record a service visit (completed: compiled into billable items at once)",
    tags=["services"],
    status_code=201,
    responses=CREATED,
)
def create_service(body: ServiceIn) -> ServiceOut:
    tenant = _tenant()
    data = _used(body.model_dump(exclude={"completed"}))
    if body.completed:
        return _service(store.create_completed(tenant, _actor(), data))
    return _service(store.create_visit(tenant, _actor(), data))


@router.get(
    "/services",
    summary="List services by service date (filters: dates, contact)",
    tags=["services"],
    responses=OK,
)
def list_services(
    limit: PageLimit = 50,
    cursor: Cursor = None,
    date_from: DayQuery = None,
    date_to: DayQuery = None,
    contact_id: IdQuery = None,
) -> out.Page[ServiceOut]:
    records, next_cursor = store.list_visits(
        _tenant(),
        limit,
        cursor,
        date_from.isoformat() if date_from else None,
        date_to.isoformat() if date_to else None,
        contact_id,
    )
    return out.Page[ServiceOut](items=[_service(r) for r in records], next_cursor=next_cursor)


@router.get("/services/<service_id>", summary="Get a service", tags=["services"], responses=OK)
def get_service(service_id: str) -> ServiceOut:
    return _service(store.get_visit(_tenant(), service_id))


@router.patch(
    "/services/<service_id>",
    summary="Change a service not completed yet (partial); a completed one: billing status, until invoiced",
    tags=["services"],
    responses=OK,
)
def update_service(service_id: str, body: ServicePatch) -> ServiceOut:
    data = _used(body.changes())
    return _service(store.update_visit(_tenant(), service_id, data, _actor()))


@router.post(
    "/services/<service_id>/complete",
    summary="Complete a service: it is compiled into billable items in the same write",
    tags=["services"],
    responses=OK,
)
def complete_service(service_id: str) -> ServiceOut:
    return _service(store.complete_visit(_tenant(), service_id, _actor()))


class BillingStatusOut(out.Out):
    service_id: str
    appears: bool = Field(description="true when the service is on the billing page")
    reason: Literal[
        "billable", "not_completed", "not_billable", "outside_range", "invoiced", "nothing_to_bill"
    ]
    message: str
    badge: ServiceBadge | None = None
    invoice_ids: list[str]
    invoice_numbers: list[str]


@router.get(
    "/services/<service_id>/billing-status",
    summary="Why a service is (or is not) on the billing page",
    tags=["services"],
    responses=OK,
)
def service_billing_status(
    service_id: str, date_from: DayQuery = None, date_to: DayQuery = None
) -> BillingStatusOut:
    answer = billing.billing_status(_tenant(), service_id, date_from, date_to)
    return BillingStatusOut(**vars(answer))


# ---------------------------------------------------------------------------- the billing page
class ServiceLineOut(out.Out):
    item_id: str
    line_kind: str
    description: str | None = None
    product_id: str | None = None
    quantity: out.DecimalText
    unit_price: out.DecimalText
    amount: out.DecimalText
    taxable: bool
    price_source: str | None = None
    price_detail: dict[str, str] | None = Field(default=None, description="why this price")


class ServiceRowOut(out.Out):
    service_id: str
    service_date: str
    service_type_id: str | None = None
    service_type: str | None = None
    worker_ids: list[str]
    workers: list[str]
    amount: out.DecimalText
    badge: ServiceBadge
    billing_status: BillingStatus
    lines: list[ServiceLineOut]


class CustomerRowOut(out.Out):
    contact_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    tags: list[str]
    services: list[ServiceRowOut]
    total: out.DecimalText


class BillingViewOut(out.Out):
    customers: list[CustomerRowOut]
    services: int
    total: out.DecimalText = Field(description="of this page's customers")
    next_cursor: str | None = Field(description="pass back as cursor for the next customers; null at the end")


def _list_param(name: str, value: str | None) -> list[str]:
    if not value:
        return []
    parts = [p.strip() for p in value.split(",")]
    if any(not p for p in parts) or len(parts) > 50:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "a comma-separated list of up to 50 values",
                    "type": "value_error",
                }
            ]
        )
    return list(dict.fromkeys(parts))


def _bad_value(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", exc.field), "msg": exc.message, "type": "value_error"}])


ListQuery = Annotated[str | None, Query(max_length=3300, pattern=r"^[A-Za-z0-9_.:,-]+$")]
TagQuery = Annotated[str | None, Query(max_length=1100)]


def _row(contact_id: str, row: billing.CustomerRow) -> CustomerRowOut:
    contact = row.contact
    return CustomerRowOut(
        contact_id=contact_id,
        name=contact.name if contact is not None else None,
        email=contact.email if contact is not None else None,
        phone=contact.phone if contact is not None else None,
        address=contact.address if contact is not None else None,
        tags=[str(t) for t in contact.tags or []] if contact is not None else [],
        total=views.decimal_text(row.total),
        services=[
            ServiceRowOut(
                service_id=s.service_id,
                service_date=s.service_date,
                service_type_id=s.service_type_id,
                service_type=s.service_type,
                worker_ids=s.worker_ids,
                workers=s.workers,
                amount=views.decimal_text(s.amount),
                badge=s.badge,  # type: ignore[arg-type]
                billing_status=s.billing_status,  # type: ignore[arg-type]
                lines=[
                    ServiceLineOut(
                        item_id=ln.id,
                        line_kind=ln.line_kind,
                        description=ln.description,
                        product_id=ln.product_id,
                        quantity=views.decimal_text(ln.quantity),
                        unit_price=views.decimal_text(ln.unit_price),
                        amount=views.decimal_text(ln.amount),
                        taxable=bool(ln.taxable),
                        price_source=ln.price_source,
                        price_detail=views.plain(ln.price_detail) if ln.price_detail else None,
                    )
                    for ln in sorted(s.lines, key=lambda x: x.id)
                ],
            )
            for s in row.services
        ],
    )


@router.get(
    "/billing",
    summary="The billing page: customers with their billable services and totals (filtered, by customer)",
    tags=["services"],
    responses=OK,
)
def billing_view(
    date_from: DayQuery = None,
    date_to: DayQuery = None,
    billing_status: Annotated[billing.BillingStatusFilter, Query()] = "unbilled",
    service_type: ListQuery = None,
    worker: ListQuery = None,
    tag: TagQuery = None,
    tag_match: Annotated[Literal["any", "all"], Query()] = "any",
    limit: Annotated[int, Query(ge=1, le=50, description="customers per page")] = 50,
    cursor: Cursor = None,
) -> BillingViewOut:
    try:
        try:
            filters = billing.Filters(
                date_from=date_from,
                date_to=date_to,
                billing_status=billing_status,
                service_type_ids=_list_param("service_type", service_type),
                worker_ids=_list_param("worker", worker),
                tags=_list_param("tag", tag),
                tag_match=tag_match,
            )
        except PydanticValidationError as bad:  # a value too long or too many: 400 naming the parameter
            first = bad.errors()[0]
            name = {"service_type_ids": "service_type", "worker_ids": "worker", "tags": "tag"}
            field = str(first["loc"][0]) if first["loc"] else "filters"
            raise ValidationError(name.get(field, field), first["msg"]) from None
        view = billing.billing_view(_tenant(), filters, limit, cursor)
    except ValidationError as exc:
        if exc.field in ("service_type", "worker", "tag", "date_to"):
            raise _bad_value(exc) from None
        raise
    return BillingViewOut(
        customers=[_row(c.contact_id, c) for c in view.customers],
        services=sum(len(c.services) for c in view.customers),
        total=views.decimal_text(view.total),
        next_cursor=view.next_cursor,
    )


class CustomerInvoiceIn(Strict):
    service_ids: Annotated[list[Id], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="left out: all the customer's billable services"
    )
    issue_date: Day | None = Field(default=None, description="defaults to today")
    due_date: Day | None = Field(default=None, description="defaults to the invoice date + terms")
    terms_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None
    send: StrictBool = Field(
        default=False,
        description="save and send: each invoice goes out by POST /invoices/{id}/send (email with its PDF, "
        "or QuickBooks' email when chosen) and becomes open; false: saved as draft. A customer without an "
        "email address: 422 naming send, nothing written",
    )
    sync: StrictBool = Field(
        default=True, description="false keeps QuickBooks invoices as drafts until synced"
    )


class CustomerInvoicesOut(out.Out):
    invoices: list[out.InvoiceOut]
    # Save and send
    sent: list[str] = Field(default_factory=list, description="the invoices sent (send: true)")
    send_errors: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="invoice id -> why it was not sent (it stays a saved draft: POST /invoices/{id}/send)",
    )


@router.post(
    "/billing/customers/<contact_id>/invoices",
    summary="Invoice one customer's billable services (one invoice per destination), as drafts to edit",
    tags=["services"],
    status_code=201,
    responses=CREATED,
)
def invoice_customer(contact_id: str, body: CustomerInvoiceIn) -> CustomerInvoicesOut:
    tenant = _tenant()
    options = billing.InvoiceOptions(
        issue_date=body.issue_date or today(),
        due_date=body.due_date,
        terms_days=body.terms_days,
        send=body.send,
        sync=body.sync,
    )
    written, sent = billing.invoice_customer(tenant, _actor(), contact_id, options, body.service_ids or ())
    return CustomerInvoicesOut(
        invoices=[views.invoice(invoice_store.get(tenant, i.id)) for i in written],
        sent=[i for i, error in sent.items() if error is None],
        send_errors={i: error for i, error in sent.items() if error is not None},
    )


class FiltersIn(Strict):
    date_from: Day | None = None
    date_to: Day | None = None
    billing_status: Literal["unbilled", "local", "quickbooks"] = "unbilled"
    service_type_ids: Ids = Field(default_factory=list)
    worker_ids: Ids = Field(default_factory=list)
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=20)] = Field(
        default_factory=list
    )
    tag_match: Literal["any", "all"] = "any"


class BulkServicesIn(Strict):
    contact_ids: Annotated[list[Id], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="the customers selected; left out: every customer matching the filters"
    )
    filters: FiltersIn = Field(default_factory=FiltersIn)
    issue_date: Day | None = None
    due_date: Day | None = None
    terms_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None
    send: StrictBool = Field(
        default=False,
        description="save and send each invoice (as one customer's route does); each customer's result "
        "lists `sent` and, if one could not go, `send_error` (that invoice stays a draft)",
    )
    sync: StrictBool = True


@router.post(
    "/billing/invoices",
    summary="Bulk: each selected customer (or each matching the filters) gets its invoices (202, operation)",
    tags=["services"],
    status_code=202,
    responses=ACCEPTED,
)
def invoice_customers(body: BulkServicesIn) -> out.OperationAccepted:
    tenant = _tenant()
    data = body.model_dump()
    data["issue_date"] = body.issue_date or today()
    if body.due_date is not None and body.due_date < data["issue_date"]:
        raise ValidationError("due_date", "must not be before the invoice date")
    request = billing.BulkServicesRequest.model_validate(data)
    try:  # filter values are checked now: a 422 before any work, not a failed operation
        billing.validate_filters(tenant, request.filters)
    except ValidationError as exc:
        raise ValidationError(f"filters.{exc.field}", exc.message) from None
    operation = jobs.submit("services_invoices", tenant, _actor(), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)
