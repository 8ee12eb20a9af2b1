"""Completed services (issue 17): service types and inventory items (products with a catalogue
role), customer prices, company billing settings, visits, and the billing page's reads.

A visit is completed and compiled in ONE transaction: the visit goes scheduled -> completed
(conditional on scheduled) and its billable items are put (conditional on not existing), so a
visit is in the ledger once or not at all. From there the ledger's own bill-once machinery
(store/billing.write_invoice, store/invoices release on delete/void) covers it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fieldbill.clock import now, now_iso
from fieldbill.domain import model as dm
from fieldbill.domain import service_pricing as sp
from fieldbill.domain.errors import Conflict, InvalidTransition, NotFound, ValidationError
from fieldbill.domain.states import ITEM_MACHINE, VISIT_MACHINE, VisitStatus
from fieldbill.observability import logger
from fieldbill.store import backfills, billing, catalog, common, transitions
from fieldbill.store.models import (
    META,
    BillableItem,
    BillingSettings,
    Contact,
    CustomerPrice,
    Entity,
    Product,
    UsedInventory,
    Visit,
    Worker,
    WorkerUser,
)

SERVICE_TYPE = "service_type"
INVENTORY_ITEM = "inventory_item"
ROLE_NAMES = {SERVICE_TYPE: "service type", INVENTORY_ITEM: "inventory item"}
# The product every surcharge line points at (QuickBooks needs an item for each line).
SURCHARGE_PRODUCT_ID = "svc-surcharge"
PENDING, UNBILLABLE = str(dm.ItemStatus.PENDING), str(dm.ItemStatus.UNBILLABLE)


# ---------------------------------------------------------------------------- service types, inventory items
def create_role_product(tenant_id: str, actor: str, role: str, data: Mapping[str, Any]) -> Product:
    return catalog.create_named(Product, tenant_id, actor, {**data, "catalog_role": role})


def get_role_product(tenant_id: str, role: str, product_id: str) -> Product:
    record = catalog.get(Product, tenant_id, product_id)
    if record.catalog_role != role:
        raise NotFound(ROLE_NAMES[role], product_id)
    return record


def update_role_product(
    tenant_id: str, role: str, product_id: str, changes: Mapping[str, Any], actor: str
) -> Product:
    record = get_role_product(tenant_id, role, product_id)
    return catalog.update(record, catalog.named_changes(record, changes), actor)


def delete_role_product(tenant_id: str, role: str, product_id: str, actor: str) -> None:
    catalog.delete(get_role_product(tenant_id, role, product_id), actor)


def list_role_products(
    tenant_id: str, role: str, limit: int, cursor: str | None, name_prefix: str | None
) -> tuple[list[Product], str | None]:
    return catalog.list_by_name(Product, tenant_id, limit, cursor, name_prefix, Product.catalog_role == role)


def ensure_surcharge_product(tenant_id: str, actor: str) -> None:
    spec = dm.Product(id=SURCHARGE_PRODUCT_ID, tenant_id=tenant_id, name="Surcharge", auto_created=True)
    billing.ensure_products([spec], actor)


# ---------------------------------------------------------------------------- customer prices
def set_customer_price(
    tenant_id: str, contact_id: str, product_id: str, unit_price: Decimal, actor: str
) -> CustomerPrice:
    """Create or change a customer's price for a service type or inventory item."""
    found = common.find(
        CustomerPrice, CustomerPrice.key(tenant_id, contact_id), CustomerPrice.sort_key(product_id)
    )
    if found is not None:
        return catalog.update(found, {"unit_price": unit_price}, actor)
    product = common.find(Product, Product.key(tenant_id, product_id))
    if product is None or product.catalog_role not in ROLE_NAMES:
        raise ValidationError(
            "product_id", f"no service type or inventory item {product_id!r} in this tenant"
        )
    record = CustomerPrice(
        CustomerPrice.key(tenant_id, contact_id),
        CustomerPrice.sort_key(product_id),
        tenant_id=tenant_id,
        id=f"{contact_id}.{product_id}",
        contact_id=contact_id,
        product_id=product_id,
        unit_price=unit_price,
    )
    try:
        return catalog.create(record, actor)
    except ValidationError as exc:
        if exc.field == "contact_id":  # the contact is in the path: 404, not 422
            raise NotFound("contact", contact_id) from None
        raise


def customer_prices(tenant_id: str, contact_id: str) -> list[CustomerPrice]:
    query = Entity.query(CustomerPrice.key(tenant_id, contact_id), Entity.sk.startswith("PRICE#"))
    return [r for r in query if isinstance(r, CustomerPrice)]


def delete_customer_price(tenant_id: str, contact_id: str, product_id: str, actor: str) -> None:
    record = common.get(
        CustomerPrice,
        CustomerPrice.key(tenant_id, contact_id),
        CustomerPrice.sort_key(product_id),
        entity="customer price",
    )
    catalog.delete(record, actor)


# ---------------------------------------------------------------------------- company billing settings
def get_settings(tenant_id: str) -> BillingSettings | None:
    return common.find(BillingSettings, BillingSettings.key(tenant_id))


def put_settings(tenant_id: str, values: Mapping[str, Any], actor: str) -> BillingSettings:
    """Replace the company's billing settings (one record per tenant; history kept on it)."""
    record = get_settings(tenant_id)
    history = list(record.history or []) if record is not None else []
    fresh = BillingSettings(BillingSettings.key(tenant_id), META, tenant_id=tenant_id, id=tenant_id, **values)
    fresh.created_at = record.created_at if record is not None else now_iso()
    fresh.updated_at = now_iso()
    fresh.history = [*history, common.history_entry(actor, None, "updated", "billing settings set")]
    fresh.save()
    return fresh


def pricing_settings(record: BillingSettings | None) -> sp.PricingSettings:
    if record is None:
        return sp.PricingSettings()
    return sp.PricingSettings(
        pricing_source=sp.PricingSource(record.pricing_source or "customer"),
        surcharge_percent=Decimal(record.surcharge_percent or 0),
        remove_zero_lines=bool(record.remove_zero_lines),
    )


# ---------------------------------------------------------------------------- visits
def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def check_workers(tenant_id: str, worker_ids: Sequence[str]) -> dict[str, Worker]:
    found = common.batch_get(Worker, ((Worker.key(tenant_id, w), META) for w in worker_ids))
    by_id = {r.id: r for r in found.values()}
    for n, worker_id in enumerate(worker_ids):
        if worker_id not in by_id:
            raise ValidationError(f"worker_ids[{n}]", f"no worker {worker_id!r} in this tenant")
    return by_id


def _products(tenant_id: str, ids: Iterable[str]) -> dict[str, Product]:
    found = common.batch_get(Product, ((Product.key(tenant_id, p), META) for p in ids))
    return {r.id: r for r in found.values()}


def _check_inventory(tenant_id: str, inventory: Sequence[Mapping[str, Any]], service_type_id: str) -> Product:
    products = _products(tenant_id, [service_type_id, *(u["item_id"] for u in inventory)])
    stype = products.get(service_type_id)
    if stype is None or stype.catalog_role != SERVICE_TYPE:
        raise ValidationError("service_type_id", f"no service type {service_type_id!r} in this tenant")
    for n, used in enumerate(inventory):
        item = products.get(used["item_id"])
        if item is None or item.catalog_role != INVENTORY_ITEM:
            raise ValidationError(
                f"inventory[{n}].item_id", f"no inventory item {used['item_id']!r} in this tenant"
            )
    return stype


def new_visit(
    tenant_id: str, visit_id: str, data: Mapping[str, Any], status: VisitStatus = VisitStatus.SCHEDULED
) -> Visit:
    service_date = data["service_date"].isoformat()
    return Visit(
        Visit.key(tenant_id, visit_id),
        META,
        tenant_id=tenant_id,
        id=visit_id,
        gsi1pk=Visit.list_key(tenant_id),
        gsi1sk=Visit.list_sort_key(service_date, visit_id),
        contact_id=data["contact_id"],
        service_date=service_date,
        started_at=_iso(data.get("started_at")),
        ended_at=_iso(data.get("ended_at")),
        service_type_id=data["service_type_id"],
        worker_ids=list(data.get("worker_ids") or []),
        inventory=[UsedInventory(**u) for u in data.get("inventory") or []],
        notes=data.get("notes"),
        billing_status=data.get("billing_status"),
        status=str(status),
    )


def create_visit(tenant_id: str, actor: str, data: Mapping[str, Any]) -> Visit:
    """A scheduled visit (complete it with `complete`, or create it completed: `create_completed`)."""
    check_workers(tenant_id, data.get("worker_ids") or [])
    stype = _check_inventory(tenant_id, data.get("inventory") or [], data["service_type_id"])
    values = dict(data)
    if not values.get("inventory") and stype.default_inventory:
        values["inventory"] = [{"item_id": i, "quantity": Decimal("1")} for i in stype.default_inventory]
    record = new_visit(tenant_id, catalog.new_id(values.get("id")), values)
    return catalog.create(record, actor)


def get_visit(tenant_id: str, visit_id: str) -> Visit:
    return catalog.get(Visit, tenant_id, visit_id)


def update_visit(tenant_id: str, visit_id: str, changes: Mapping[str, Any], actor: str) -> Visit:
    """Change a scheduled visit (a completed one is in the ledger: 409, except its billing status
    alone until it is invoiced: set_billing_status)."""
    record = get_visit(tenant_id, visit_id)
    if record.status == str(VisitStatus.COMPLETED) and set(changes) == {"billing_status"}:
        if changes["billing_status"] is None:
            raise ValidationError("billing_status", "a completed service keeps a billing status: give one")
        return set_billing_status(tenant_id, visit_id, str(changes["billing_status"]), actor)
    if record.status != str(VisitStatus.SCHEDULED):
        raise Conflict(f"service {visit_id!r} is completed: its billable items are in the ledger")
    values = dict(changes)
    if "worker_ids" in values:
        check_workers(tenant_id, values["worker_ids"] or [])
    inventory = values.get("inventory")
    if "inventory" in values or "service_type_id" in values:
        current = [u.as_dict() for u in record.inventory or []]
        _check_inventory(
            tenant_id,
            inventory if inventory is not None else current,
            values.get("service_type_id") or record.service_type_id,
        )
    if "inventory" in values:
        values["inventory"] = [UsedInventory(**u) for u in inventory or []]
    for name in ("started_at", "ended_at"):
        if name in values:
            values[name] = _iso(values[name])
    if "service_date" in values:
        values["service_date"] = values["service_date"].isoformat()
        values["gsi1sk"] = Visit.list_sort_key(values["service_date"], visit_id)
    return catalog.update(
        record,
        values,
        actor,
        condition=Visit.status == str(VisitStatus.SCHEDULED),
        refused=f"service {visit_id!r} was completed meanwhile",
    )


def list_visits(
    tenant_id: str,
    limit: int,
    cursor: str | None,
    date_from: str | None,
    date_to: str | None,
    contact_id: str | None,
) -> tuple[list[Visit], str | None]:
    key = Visit.list_key(tenant_id)
    condition = None
    if date_from or date_to:
        condition = Entity.gsi1sk.between(date_from or "0000", (date_to or "9999") + "#\uffff")
    query = Entity.gsi1.query(
        key,
        condition,
        filter_condition=(Visit.contact_id == contact_id) if contact_id else None,
        limit=limit,
        last_evaluated_key=common.decode_cursor(common.checked_cursor(cursor, gsi1pk=key)),
    )
    records, next_cursor = common.page(query, limit)
    return [r for r in records if isinstance(r, Visit)], next_cursor


def visit_to_domain(record: Visit) -> sp.Visit:
    return sp.Visit(
        id=record.id,
        tenant_id=record.tenant_id,
        contact_id=record.contact_id,
        service_date=datetime.fromisoformat(record.service_date).date(),
        service_type_id=record.service_type_id,
        worker_ids=tuple(str(w) for w in record.worker_ids or []),
        started_at=_dt(record.started_at),
        ended_at=_dt(record.ended_at),
        inventory=tuple(
            sp.UsedItem(item_id=u.item_id, quantity=u.quantity, unit_price=u.unit_price)
            for u in record.inventory or []
        ),
        billing_status=sp.BillingStatus(record.billing_status) if record.billing_status else None,
    )


def _service_type(record: Product) -> sp.ServiceType:
    return sp.ServiceType(
        id=record.id,
        name=record.name,
        billing_method=sp.BillingMethod(record.billing_method or "fixed"),
        price=Decimal(record.default_unit_price or 0),
        taxable=bool(record.taxable),
        round_up_minutes=int(record.round_up_minutes or 0),
        minimum_hours=Decimal(record.minimum_hours or 0),
        trip_fee_id=record.trip_fee_id,
        unit=record.unit,
    )


def _inventory_item(record: Product) -> sp.InventoryItem:
    return sp.InventoryItem(
        id=record.id,
        name=record.name,
        price=Decimal(record.default_unit_price or 0),
        taxable=bool(record.taxable),
        unit=record.unit,
    )


def compile_visit(record: Visit) -> tuple[list[BillableItem], str]:
    """Price a visit and build its item records (not written): the records and their status."""
    tenant = record.tenant_id
    ids = [record.service_type_id, *(u.item_id for u in record.inventory or [])]
    products = _products(tenant, ids)
    stype = products.get(record.service_type_id)
    if stype is None:
        raise ValidationError("service_type_id", f"no service type {record.service_type_id!r}")
    if stype.trip_fee_id and stype.trip_fee_id not in products:
        products |= _products(tenant, [stype.trip_fee_id])
    prices = {p.product_id: Decimal(p.unit_price) for p in customer_prices(tenant, record.contact_id)}
    settings = pricing_settings(get_settings(tenant))
    worker_ids = [str(w) for w in record.worker_ids or []]
    workers = check_workers(tenant, worker_ids) if worker_ids else {}
    records, status = item_records(record, products, prices, settings, workers)
    if any(r.line_kind == str(dm.LineKind.SURCHARGE) for r in records):
        ensure_surcharge_product(tenant, "system")
    return records, status


def item_records(
    record: Visit,
    products: Mapping[str, Product],
    prices: Mapping[str, Decimal],
    settings: sp.PricingSettings,
    workers: Mapping[str, Worker],
) -> tuple[list[BillableItem], str]:
    """The visit's item records from what was read (no I/O): priced by the domain, carrying what
    the billing page filters and shows."""
    visit = visit_to_domain(record)
    stype = products[visit.service_type_id]
    types = {p.id: _service_type(p) for p in products.values() if p.catalog_role == SERVICE_TYPE}
    items = {p.id: _inventory_item(p) for p in products.values() if p.catalog_role == INVENTORY_ITEM}
    lines = sp.price_visit(visit, types, items, prices, settings)
    own = visit.billing_status
    type_default = stype.default_billing_status
    unbillable = sp.resolve_billing_status(own, type_default, "local") is sp.BillingStatus.UNBILLABLE
    # The destination kept on the items: the visit's own, else its type's; none -> the company's.
    kept = next((str(s) for s in (own, type_default) if s and s != str(sp.BillingStatus.UNBILLABLE)), None)
    item_status = dm.ItemStatus.UNBILLABLE if unbillable else dm.ItemStatus.PENDING
    records = []
    for item, line in zip(sp.visit_items(visit, lines, item_status), lines, strict=True):
        rec = billing.item_record(item, None)
        rec.task_id = None
        rec.visit_id = visit.id
        rec.service_type_id = stype.id
        rec.service_type_name = stype.name
        rec.worker_ids = list(visit.worker_ids)  # type: ignore[arg-type]  # a list of strings
        rec.worker_names = [workers[w].name for w in visit.worker_ids if w in workers]  # type: ignore[misc]
        rec.billing_status = kept
        rec.taxable = item.taxable
        rec.price_detail = dict(line.why)
        records.append(rec)
    return records, str(item_status)


def complete(record: Visit, actor: str, *, new: bool) -> Visit:
    """scheduled -> completed and the visit's items put, in ONE transaction (a new visit is put
    completed, pinning its references in the same transaction)."""
    items, item_status = compile_visit(record)
    if len(items) + 4 > billing.TRANSACTION_MAX:
        raise ValidationError("inventory", "too many lines for one service")
    stamp = now_iso()
    at = now()
    reason = f"completed: {len(items)} billable item(s)"
    ops: list[Any] = []
    if new:
        # Born completed (new_visit set it): the visit machine says whether it may be.
        born = VISIT_MACHINE.begin(record.id, VisitStatus(record.status), at=at, actor=actor, reason=reason)
        record.item_ids = [i.id for i in items]  # type: ignore[misc]
        record.completed_at = stamp
        record.created_at = record.updated_at = stamp
        record.history = [common.history_entry(actor, None, born.to_status, reason)]
        refs = catalog.refs_of(record)
        ops.append(lambda tx: tx.save(record, condition=Entity.pk.does_not_exist()))
        ops += [catalog._pin(ref, 1) for ref in refs]
    else:
        refs = []
        decided = transitions.change(
            Visit,
            "status",
            VISIT_MACHINE,
            record.id,
            record.status,
            str(VisitStatus.COMPLETED),
            actor=actor,
            reason=reason,
            extra=[Visit.item_ids.set([str(i.id) for i in items]), Visit.completed_at.set(stamp)],  # type: ignore[misc]
        )
        ops.append(lambda tx: tx.update(record, actions=decided.actions, condition=decided.condition))
    for rec in items:
        born_item = ITEM_MACHINE.begin(rec.id, dm.ItemStatus(item_status), at=at, actor=actor)
        rec.created_at = rec.updated_at = stamp
        rec.history = [
            common.history_entry(actor, None, born_item.to_status, f"compiled from service {record.id}")
        ]
        ops.append(_saver(rec))
    failed = catalog._run(ops)
    if failed is None:
        return get_visit(record.tenant_id, record.id)
    if new and 1 <= failed <= len(refs):
        raise refs[failed - 1].missing()
    raise Conflict(f"service {record.id!r} is already completed (its items are in the ledger)")


def _saver(rec: BillableItem) -> Any:
    return lambda tx: tx.save(rec, condition=Entity.pk.does_not_exist())


def create_completed(tenant_id: str, actor: str, data: Mapping[str, Any]) -> Visit:
    check_workers(tenant_id, data.get("worker_ids") or [])
    stype = _check_inventory(tenant_id, data.get("inventory") or [], data["service_type_id"])
    values = dict(data)
    if not values.get("inventory") and stype.default_inventory:
        values["inventory"] = [{"item_id": i, "quantity": Decimal("1")} for i in stype.default_inventory]
    record = new_visit(tenant_id, catalog.new_id(values.get("id")), values, VisitStatus.COMPLETED)
    return complete(record, actor, new=True)


def complete_visit(tenant_id: str, visit_id: str, actor: str) -> Visit:
    record = get_visit(tenant_id, visit_id)
    if record.status == VisitStatus.COMPLETED:
        # The machine calls this "already there" (a Conflict); said with both statuses for the
        # client, as a second disconnect is (wt-door: every machine's refusal names it).
        raise InvalidTransition(
            VISIT_MACHINE.name, record.status, VisitStatus.COMPLETED, "already completed: it is billed once"
        )
    return complete(record, actor, new=False)


def visit_items(tenant_id: str, record: Visit) -> list[BillableItem]:
    return list(billing.items_by_id(tenant_id, [str(i) for i in record.item_ids or []]).values())


# ---------------------------------------------------------------------------- the billing page (pattern S1)
def service_filters(
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    service_type_ids: Sequence[str] = (),
    worker_ids: Sequence[str] = (),
    billing_statuses: Sequence[str] | None = None,
    include_company_default: bool = False,
    visit_ids: Sequence[str] = (),
) -> Any:
    """The filter expression of a billing-page read: service lines only, then each filter."""
    condition: Any = BillableItem.visit_id.exists()
    if date_from:
        condition &= BillableItem.work_date >= date_from
    if date_to:
        condition &= BillableItem.work_date <= date_to
    if service_type_ids:
        condition &= BillableItem.service_type_id.is_in(*service_type_ids)
    if worker_ids:
        any_worker = None
        for worker in worker_ids:
            one = BillableItem.worker_ids.contains(worker)
            any_worker = one if any_worker is None else any_worker | one
        condition &= any_worker
    if billing_statuses is not None:
        wanted: Any = BillableItem.billing_status.is_in(*billing_statuses) if billing_statuses else None
        if include_company_default:
            unset = BillableItem.billing_status.does_not_exist()
            wanted = unset if wanted is None else wanted | unset
        if wanted is not None:
            condition &= wanted
    if visit_ids:
        condition &= BillableItem.visit_id.is_in(*visit_ids)
    return condition


def services_page(
    tenant_id: str,
    status: str,
    filters: Any,
    customers: int,
    cursor: str | None,
    contact_id: str | None = None,
) -> tuple[list[BillableItem], str | None]:
    """Items of up to `customers` customers (each customer whole) in customer order, read from the
    item status partition (gsi1: contact#date#item) with the filters applied by DynamoDB; as many
    1 MB query pages as the customers' items take, nothing more."""
    key = BillableItem.status_key(tenant_id, status)
    query = Entity.gsi1.query(
        key,
        Entity.gsi1sk.startswith(f"{contact_id}#") if contact_id else None,
        filter_condition=filters,
        last_evaluated_key=common.decode_cursor(common.checked_cursor(cursor, gsi1pk=key)),
    )
    records: list[BillableItem] = []
    seen: list[str] = []
    for record in query:
        if not isinstance(record, BillableItem):
            continue
        if record.contact_id not in seen[-1:]:
            if len(seen) == customers:
                return records, common.cursor_after_gsi1(records[-1])
            seen.append(record.contact_id)
        records.append(record)
    return records, None


def page_context(
    tenant_id: str, contact_ids: Iterable[str], extra: Iterable[tuple[str, str]] = ()
) -> dict[str, Entity]:
    """The page's customers, the company's billing settings and any other records asked for,
    in one batch read (100 keys a request)."""
    keys = [(Contact.key(tenant_id, c), META) for c in contact_ids]
    keys.append((BillingSettings.key(tenant_id), META))
    keys += list(extra)
    return common.batch_get(Entity, keys)  # type: ignore[type-abstract]


def filter_keys(
    tenant_id: str, service_type_ids: Sequence[str], worker_ids: Sequence[str]
) -> list[tuple[str, str]]:
    return [(Product.key(tenant_id, s), META) for s in service_type_ids] + [
        (Worker.key(tenant_id, w), META) for w in worker_ids
    ]


def unknown_filter_values(
    found: Mapping[str, Entity], tenant_id: str, service_type_ids: Sequence[str], worker_ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Filter values naming nothing: (service type ids, worker ids)."""
    bad_types = [
        s
        for s in service_type_ids
        if not (
            isinstance(r := found.get(Product.key(tenant_id, s)), Product) and r.catalog_role == SERVICE_TYPE
        )
    ]
    bad_workers = [w for w in worker_ids if not isinstance(found.get(Worker.key(tenant_id, w)), Worker)]
    return bad_types, bad_workers


def settings_in(found: Mapping[str, Entity], tenant_id: str) -> BillingSettings | None:
    record = found.get(BillingSettings.key(tenant_id))
    return record if isinstance(record, BillingSettings) else None


def contacts_in(
    found: Mapping[str, Entity], tenant_id: str, contact_ids: Iterable[str]
) -> dict[str, Contact]:
    out: dict[str, Contact] = {}
    for contact_id in contact_ids:
        record = found.get(Contact.key(tenant_id, contact_id))
        if isinstance(record, Contact):
            out[contact_id] = record
    return out


# ---- A completed service's billing status, changed until it is invoiced -------------------
def set_billing_status(tenant_id: str, visit_id: str, status: str, actor: str) -> Visit:
    """A completed service's billing status (qbo, qbd, local or unbillable) and its lines', in ONE
    transaction: each line that is not invoiced goes pending <-> unbillable through the item
    machine (conditional on its status) with the new `billing_status`, and the service records it
    with a history note. A line on an invoice refuses it (409 naming the item machine and the
    invoice): an invoiced service's destination is its invoice's."""
    record = get_visit(tenant_id, visit_id)
    wanted = sp.BillingStatus(status)
    items = visit_items(tenant_id, record)
    on_invoice = sorted({str(i.invoice_id) for i in items if i.status == str(dm.ItemStatus.INVOICED)})
    if on_invoice:
        raise InvalidTransition(
            ITEM_MACHINE.name,
            str(dm.ItemStatus.INVOICED),
            UNBILLABLE if wanted is sp.BillingStatus.UNBILLABLE else PENDING,
            f"service {visit_id!r} is on invoice {', '.join(on_invoice)}: void or delete it first",
        )
    target = dm.ItemStatus.UNBILLABLE if wanted is sp.BillingStatus.UNBILLABLE else dm.ItemStatus.PENDING
    # Own billing status: the destination it resolves to from now on (Unbillable keeps the lines'
    # destination for when they are made billable again by PATCH /billable-items).
    own = None if wanted is sp.BillingStatus.UNBILLABLE else str(wanted)
    reason = f"billing status {wanted}"
    at, stamp = now(), now_iso()
    ops: list[Any] = []
    for rec in items:
        if rec.status == str(dm.ItemStatus.VOID):
            continue
        extra: list[Any] = [BillableItem.gsi1pk.set(BillableItem.status_key(tenant_id, str(target)))]
        if own is not None:
            extra.append(BillableItem.billing_status.set(own))
        if rec.status != str(target):
            from fieldbill.domain import states  # the guard (an invoiced line moves with its invoice)

            states.set_item_status(billing.item_to_domain(rec), target, at=at, actor=actor, reason=reason)
            decided = transitions.change(
                BillableItem, "status", ITEM_MACHINE, rec.id, rec.status, str(target),
                actor=actor, reason=reason, extra=extra,
            )  # fmt: skip
            ops.append(lambda tx, r=rec, d=decided: tx.update(r, actions=d.actions, condition=d.condition))
        elif own is not None:
            actions = [*extra, BillableItem.updated_at.set(stamp)]
            ops.append(
                lambda tx, r=rec, a=actions: tx.update(
                    r, actions=a, condition=BillableItem.status == r.status
                )
            )
    note = common.history_entry(actor, record.status, record.status, reason)
    visit_actions = [
        Visit.billing_status.set(str(wanted)),
        Visit.updated_at.set(stamp),
        Visit.history.set(Visit.history.append([note])),
    ]
    ops.append(
        lambda tx: tx.update(
            record,
            actions=visit_actions,
            condition=(Visit.status == str(VisitStatus.COMPLETED)) & (Visit.updated_at == record.updated_at),
        )
    )
    if catalog._run(ops) is not None:
        raise Conflict(f"service {visit_id!r} or its lines changed meanwhile; read it again")
    return get_visit(tenant_id, visit_id)


# ---- Workers linked to the tenant's users (one user, one worker) -------------------------
def _claim_user(tenant_id: str, user_id: str, worker_id: str) -> Any:
    stamp = now_iso()
    claim = WorkerUser(
        WorkerUser.key(tenant_id, user_id), META, tenant_id=tenant_id, id=user_id, worker_id=worker_id,
        created_at=stamp, updated_at=stamp,
    )  # fmt: skip
    return lambda tx: tx.save(claim, condition=Entity.pk.does_not_exist())


def _release_user(tenant_id: str, user_id: str, worker_id: str) -> Any:
    # A link made before claims were kept has none: nothing to release then.
    claim = WorkerUser(WorkerUser.key(tenant_id, user_id), META)
    mine = Entity.pk.does_not_exist() | (WorkerUser.worker_id == worker_id)
    return lambda tx: tx.delete(claim, condition=mine)


def _taken(tenant_id: str, user_id: str) -> Conflict:
    holder = common.find(WorkerUser, WorkerUser.key(tenant_id, user_id), META)
    by = f" (worker {holder.worker_id!r})" if holder is not None else ""
    return Conflict(f"user {user_id!r} is already linked to a worker{by}: one user, one worker")


def _claim_old_links(tenant_id: str) -> None:
    """Links made before claims existed are claimed before the tenant's first link change (a
    second link of their user is refused, their release finds the claim)."""
    backfills.once(tenant_id, backfills.WORKER_USERS, lambda t: claim_worker_users(t).claimed)


def create_worker(tenant_id: str, actor: str, data: Mapping[str, Any]) -> Worker:
    values = dict(data)
    record = catalog.new_named(Worker, tenant_id, catalog.new_id(values.pop("id", None)), values)
    user_id = values.get("user_id")
    if not user_id:
        return catalog.create(record, actor)
    _claim_old_links(tenant_id)
    refused = "user taken"
    try:
        return catalog.create(
            record, actor, extra=[_claim_user(tenant_id, user_id, record.id)], extra_refused=refused
        )
    except Conflict as exc:
        if str(exc) == refused:
            raise _taken(tenant_id, user_id) from None
        raise


def update_worker(tenant_id: str, worker_id: str, changes: Mapping[str, Any], actor: str) -> Worker:
    record = catalog.get(Worker, tenant_id, worker_id)
    values = catalog.named_changes(record, dict(changes))
    old, new = record.user_id, values.get("user_id", record.user_id)
    if "user_id" not in values or old == new:
        return catalog.update(record, values, actor)
    _claim_old_links(tenant_id)
    extra = ([_release_user(tenant_id, old, worker_id)] if old else []) + (
        [_claim_user(tenant_id, new, worker_id)] if new else []
    )
    refused = "user taken"
    try:
        return catalog.update(
            record, values, actor, condition=catalog.same(Worker, "user_id", old), extra=extra,
            extra_refused=refused,
        )  # fmt: skip
    except Conflict as exc:
        if str(exc) == refused and new:
            raise _taken(tenant_id, new) from None
        raise


def delete_worker(tenant_id: str, worker_id: str, actor: str) -> None:
    record = catalog.get(Worker, tenant_id, worker_id)
    if record.user_id:
        _claim_old_links(tenant_id)
    extra = [_release_user(tenant_id, record.user_id, worker_id)] if record.user_id else []
    catalog.delete(record, actor, condition=catalog.same(Worker, "user_id", record.user_id), extra=extra)


@dataclass
class ClaimReport:
    """What claim_worker_users did: claims put, and users that several workers share (the worker
    keeping the claim, the others, for a person to unlink)."""

    claimed: int = 0
    shared: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def claim_worker_users(tenant_id: str) -> ClaimReport:
    """Back-fill: the claim of each worker linked before links were claimed (user_id, no claim),
    so a second link of its user is refused as for a new link. Once per tenant, safe to repeat
    (like jobs.index_posted): one pass over the workers list; each claim is put only if absent
    and only while its worker still has that user (one transaction), so a link or unlink racing
    it wins. A user several workers share: the oldest keeps it, the others are reported."""
    linked: dict[str, list[Worker]] = {}
    query = Entity.gsi1.query(Worker.list_key(tenant_id), filter_condition=Worker.user_id.exists())
    for record in query:
        if isinstance(record, Worker) and record.user_id:
            linked.setdefault(str(record.user_id), []).append(record)
    report = ClaimReport()
    for user_id, workers in linked.items():
        workers.sort(key=lambda w: (w.created_at or "", w.id))
        holder = common.find(WorkerUser, WorkerUser.key(tenant_id, user_id), META)
        if holder is None:
            oldest = workers[0]
            pk, still = Worker.key(tenant_id, oldest.id), Worker.user_id == user_id
            ops = [
                _claim_user(tenant_id, user_id, oldest.id),
                lambda tx, pk=pk, still=still: tx.condition_check(Worker, pk, META, condition=still),
            ]
            if catalog._run(ops) is None:
                report.claimed += 1
            holder = common.find(WorkerUser, WorkerUser.key(tenant_id, user_id), META)
        kept = str(holder.worker_id) if holder is not None else None
        others = [w.id for w in workers if w.id != kept]
        if kept is not None and others:
            report.shared[user_id] = (kept, others)
    if report.shared:
        logger.warning(
            "workers share a user: the oldest keeps the link",
            extra={"tenant_id": tenant_id, "shared": {u: list(v) for u, v in report.shared.items()}},
        )
    return report


def worker_of_user(tenant_id: str, user_id: str) -> Worker:
    """The worker a user of the tenant signs in as (404 when none is linked)."""
    claim = common.find(WorkerUser, WorkerUser.key(tenant_id, user_id), META)
    if claim is not None:
        return catalog.get(Worker, tenant_id, str(claim.worker_id))
    # A worker linked before links were claimed has no claim: the workers list (one query per
    # MB; a company's technicians are few) filtered on its user.
    cursor: str | None = None
    while True:
        found, cursor = catalog.list_by_name(
            Worker, tenant_id, 100, cursor, filters=Worker.user_id == user_id
        )
        if found:
            return found[0]
        if not cursor:
            raise NotFound("worker", f"of user {user_id}")
