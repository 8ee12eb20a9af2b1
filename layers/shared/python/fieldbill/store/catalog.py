"""Catalogue records (contacts, products, price lists, memberships, teams, product assignments):
create, update and delete, each ONE conditional write. Tasks and entries live in store/work.py and
are written through the functions here; audit trails and tombstones are read in store/history.py.

References are counted, not searched: a record others point at (a contact's tasks, a product's
assignments) carries `ref_count`, raised and lowered in the same transaction that writes the
referencing record, on the condition that the referenced record exists. So a dangling reference
can never be written, and a delete - conditional on `ref_count` being 0 - can never break billing.
DynamoDB decides in the write; nothing reads first to decide.

A deleted record leaves a tombstone (a copy with its history plus the deletion) in the tenant's
DELETED partition, outside every index: nothing disappears silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from fieldbill.clock import now_iso
from fieldbill.domain.errors import Conflict, NotFound, ValidationError
from fieldbill.store import common
from fieldbill.store.models import (
    META,
    Contact,
    CustomerPrice,
    Entity,
    Job,
    Membership,
    PriceList,
    Product,
    ProductAssignment,
    Task,
    TaskEntry,
    Team,
    Visit,
    Worker,
)

E = TypeVar("E", bound=Entity)
# Written with a change but no change themselves (issue 15: the QuickBooks dirty mark).
QUIET_FIELDS = frozenset({"qbo_dirty_since"})
Op = Callable[[TransactWrite], None]

# Which fields of a record point at which records (those pins are counted in `ref_count`).
REFERENCES: Mapping[type[Entity], Mapping[str, type[Entity]]] = {
    Contact: {"membership_id": Membership, "team_id": Team, "price_list_id": PriceList},
    Task: {"client_contact_id": Contact, "product_id": Product, "price_list_id": PriceList},
    TaskEntry: {"product_id": Product},
    ProductAssignment: {"product_id": Product},
    # ---- issue 17: a service type's trip fee, a customer's price, a visit's customer and type
    Product: {"trip_fee_id": Product},
    CustomerPrice: {"contact_id": Contact, "product_id": Product},
    Visit: {"contact_id": Contact, "service_type_id": Product},
}

# What a product assignment's scope_id points at (tenant scope points at the tenant itself).
SCOPE_MODELS: Mapping[str, type[Entity]] = {
    "task": Task,
    "contact": Contact,
    "membership": Membership,
    "team": Team,
}

ENTITY_NAMES: Mapping[type[Entity], str] = {
    Contact: "contact",
    Product: "product",
    PriceList: "price-list",
    Membership: "membership",
    Team: "team",
    ProductAssignment: "assignment",
    Task: "task",
    TaskEntry: "entry",
    Job: "job",  # job-shop jobs (issue 14)
    # ---- issue 17
    CustomerPrice: "customer price",
    Worker: "worker",
    Visit: "service",
}


@dataclass(frozen=True)
class Ref:
    """One pin from a record to another: `field` names it in errors; a path ref is a 404, not a 422."""

    field: str
    model: type[Entity]
    pk: str
    ref_id: str
    path: bool = False

    def missing(self) -> Exception:
        name = ENTITY_NAMES.get(self.model, self.model.__name__)
        if self.path:
            return NotFound(name, self.ref_id)
        return ValidationError(self.field, f"no {name} {self.ref_id!r} in this tenant")


def key_of(model: type[Entity], tenant_id: str, record_id: str) -> str:
    return model.key(tenant_id, record_id)


def refs_of(record: Entity, fields: Iterable[str] | None = None) -> list[Ref]:
    """The records `record` points at (all of them, or those of `fields`)."""
    spec = REFERENCES.get(type(record), {})
    refs = []
    for name in fields if fields is not None else spec:
        if name not in spec:
            continue
        value = getattr(record, name)
        if value:
            refs.append(Ref(name, spec[name], key_of(spec[name], record.tenant_id, value), value))
    if isinstance(record, ProductAssignment) and (fields is None or "scope_id" in fields):
        scope_model = SCOPE_MODELS.get(record.scope)
        if scope_model is not None:
            refs.append(
                Ref(
                    "scope_id",
                    scope_model,
                    key_of(scope_model, record.tenant_id, record.scope_id),
                    record.scope_id,
                )
            )
    if isinstance(record, TaskEntry) and fields is None:
        refs.append(
            Ref("task_id", Task, Task.key(record.tenant_id, record.task_id), record.task_id, path=True)
        )
    return refs


# ---------------------------------------------------------------------------- the one transaction
def _pin(ref: Ref, delta: int) -> Op:
    def op(tx: TransactWrite) -> None:
        target = ref.model(ref.pk, META)
        tx.update(target, actions=[Entity.ref_count.add(delta)], condition=Entity.pk.exists())

    return op


def _parts(tx: TransactWrite) -> tuple[list[Any], ...]:
    """A PynamoDB transaction's parts by kind, in the order it sends them (PynamoDB pinned)."""
    return (tx._condition_check_items, tx._delete_items, tx._put_items, tx._update_items)


def _run(ops: Sequence[Op]) -> int | None:
    """Run ops in one transaction: None when written, else the index of the op whose condition
    failed (-1 when DynamoDB did not say which)."""
    # PynamoDB sends a transaction's parts grouped by kind (checks, deletes, puts, updates), and
    # DynamoDB's cancellation reasons follow that order, not ours: note each op's place in it.
    sent: list[tuple[int, int]] = []  # (kind rank, op index), sorted = the order sent
    try:
        with TransactWrite(connection=common.connection()) as tx:
            for index, op in enumerate(ops):
                before = [len(part) for part in _parts(tx)]
                op(tx)
                grown = [n for n, part in enumerate(_parts(tx)) if len(part) > before[n]]
                sent.extend((rank, index) for rank in grown)
    except TransactWriteError as exc:
        if common.transaction_conflict(exc):
            raise Conflict("another request changed the same records at the same time; retry") from None
        order = [index for _, index in sorted(sent)]
        for position, reason in enumerate(exc.cancellation_reasons or []):
            if reason is not None and reason.code == "ConditionalCheckFailed":
                return order[position] if position < len(order) else -1
        if common.conditional_failed(exc) or "TransactionCanceled" in str(exc):
            return -1
        raise
    return None


def _reread(record: E) -> E | None:
    try:
        found = type(record).get(record.pk, record.sk, consistent_read=True)
    except type(record).DoesNotExist:
        return None
    return found if isinstance(found, type(record)) else None


def _stamp_new(record: Entity, actor: str, reason: str) -> None:
    stamp = now_iso()
    record.created_at = record.created_at or stamp
    record.updated_at = stamp
    status = getattr(record, "status", None)
    record.history = [common.history_entry(actor, None, str(status or "created"), reason)]


def create(
    record: E, actor: str, reason: str = "created", *, extra: Sequence[Op] = (), extra_refused: str = ""
) -> E:
    """Put a new record once, pinning every record it references (which must exist). `extra`:
    more parts of the same transaction (A worker's user claim); Conflict(`extra_refused`)
    when one of them is refused."""
    _stamp_new(record, actor, reason)
    refs = refs_of(record)
    ops: list[Op] = [lambda tx: tx.save(record, condition=Entity.pk.does_not_exist())]
    ops += [_pin(ref, 1) for ref in refs]
    ops += list(extra)
    failed = _run(ops)
    if failed is None:
        return record
    if extra and failed >= 1 + len(refs):
        raise Conflict(extra_refused)
    if failed >= 1:
        raise refs[failed - 1].missing()
    if failed == 0:
        raise Conflict(
            f"{ENTITY_NAMES.get(type(record), type(record).__name__)} {record.id!r} already exists"
        )
    for ref in refs:  # DynamoDB did not say which condition failed: find out (the write already lost)
        if common.find(ref.model, ref.pk) is None:
            raise ref.missing()
    raise Conflict(f"{ENTITY_NAMES.get(type(record), type(record).__name__)} {record.id!r} already exists")


def same(model: type[Entity], name: str, value: Any) -> Any:
    attr = getattr(model, name)
    return attr.does_not_exist() if value is None else attr == value


def update(
    record: E,
    changes: Mapping[str, Any],
    actor: str,
    *,
    condition: Any = None,
    refused: str | None = None,
    reason: str | None = None,
    states: tuple[str | None, str] | None = None,
    extra: Sequence[Op] = (),
    extra_refused: str = "",
) -> E:
    """Apply `changes` (None removes an attribute) in one conditional update with a history entry.
    `extra`: more parts of the same transaction (Conflict(`extra_refused`) when one is refused).

    References that change are unpinned and pinned in the same transaction, on the condition that
    the old value is still the one read. `condition` is the record's own precondition; when it
    fails, Conflict(`refused`).
    """
    model = type(record)
    name = ENTITY_NAMES.get(model, model.__name__)
    changes = {k: v for k, v in changes.items() if getattr(record, k) != v}
    if not changes or set(changes) <= QUIET_FIELDS:
        return record  # nothing changed (a dirty mark alone is no change: issue 15)
    before = {k: getattr(record, k) for k in changes}
    old_refs = refs_of(record, changes)
    guard = Entity.pk.exists()
    for field in REFERENCES.get(model, {}):
        if field in changes:
            guard = guard & same(model, field, before[field])
    if condition is not None:
        guard = guard & condition
    status_from = before.get("status")
    from_state, to_state = states or (
        str(status_from) if status_from else None,
        str(changes["status"]) if "status" in changes else "updated",
    )
    actions: list[Any] = [
        getattr(model, k).remove() if v is None else getattr(model, k).set(v) for k, v in changes.items()
    ]
    actions += [
        model.updated_at.set(now_iso()),
        model.history.set(
            model.history.append(
                [
                    common.history_entry(
                        actor,
                        from_state,
                        to_state,
                        reason
                        or "changed "
                        + ", ".join(
                            sorted(k for k in changes if not k.startswith("gsi") and k not in QUIET_FIELDS)
                        ),
                    )
                ]
            )
        ),
    ]
    for key, value in changes.items():
        setattr(record, key, value)
    new_refs = refs_of(record, changes)
    ops: list[Op] = [lambda tx: tx.update(record, actions=actions, condition=guard)]
    ops += [_pin(ref, -1) for ref in old_refs] + [_pin(ref, 1) for ref in new_refs]
    ops += list(extra)
    failed = _run(ops)
    if failed is None:
        fresh = _reread(record)
        if fresh is None:
            raise NotFound(name, record.id)
        return fresh
    if extra and failed >= 1 + len(old_refs) + len(new_refs):
        raise Conflict(extra_refused)
    if failed > len(old_refs):
        raise new_refs[failed - 1 - len(old_refs)].missing()
    current = _reread(record)
    if current is None:
        raise NotFound(name, record.id)
    if failed == -1:
        for ref in new_refs:
            if common.find(ref.model, ref.pk) is None:
                raise ref.missing()
    raise Conflict(refused or f"{name} {record.id!r} was changed by another request; reload and retry")


def delete(
    record: Entity,
    actor: str,
    *,
    condition: Any = None,
    refused: str | None = None,
    reason: str = "deleted",
    extra: Sequence[Op] = (),
) -> None:
    """Delete a record nobody references (ref_count 0) and unpin what it referenced, in one
    transaction that also keeps its tombstone."""
    model = type(record)
    name = ENTITY_NAMES.get(model, model.__name__)
    refs = refs_of(record)
    guard = Entity.pk.exists() & (Entity.ref_count.does_not_exist() | (Entity.ref_count == 0))
    for field in REFERENCES.get(model, {}):
        guard = guard & same(model, field, getattr(record, field))
    if condition is not None:
        guard = guard & condition
    stamp = now_iso()
    values = {k: getattr(record, k) for k in record.get_attributes() if k not in ("type", "pk", "sk")}
    tomb = model(
        common.deleted_key(record.tenant_id), common.deleted_sort_key(name, record.id, stamp), **values
    )
    for index_key in ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"):
        setattr(tomb, index_key, None)
    tomb.updated_at = stamp
    status = getattr(record, "status", None)
    tomb.history = [
        *(record.history or []),
        common.history_entry(actor, str(status) if status else None, "deleted", reason),
    ]
    ops: list[Op] = [lambda tx: tx.delete(record, condition=guard)]
    ops += [_pin(ref, -1) for ref in refs]
    ops.append(lambda tx: tx.save(tomb))
    ops += list(extra)  # Parts that go with it (a worker's user claim, released)
    failed = _run(ops)
    if failed is None:
        return
    current = _reread(record)
    if current is None:
        raise NotFound(name, record.id)
    if current.ref_count:
        raise Conflict(
            f"{name} {record.id!r} is still used by {current.ref_count} record(s); "
            "remove those references first"
        )
    raise Conflict(refused or f"{name} {record.id!r} was changed by another request; reload and retry")


# ---------------------------------------------------------------------------- reads
def get(model: type[E], tenant_id: str, record_id: str) -> E:
    return common.get(model, key_of(model, tenant_id, record_id), entity=ENTITY_NAMES.get(model))


def contacts_by_id(tenant_id: str, contact_ids: Iterable[str]) -> dict[str, Contact]:
    """Contacts by id, 100 per request (documents name each invoice's customer)."""
    found = common.batch_get(Contact, ((Contact.key(tenant_id, c), META) for c in contact_ids))
    return {record.id: record for record in found.values()}


def list_by_name(
    model: type[E],
    tenant_id: str,
    limit: int,
    cursor: str | None,
    name_prefix: str | None = None,
    filters: Any = None,
) -> tuple[list[E], str | None]:
    """A page of a tenant's records of one kind in name order (gsi1: LIST key, "name#id")."""
    list_key = model.list_key(tenant_id)
    cursor = common.checked_cursor(cursor, gsi1pk=list_key)
    return common.list_by_gsi1(
        model,
        list_key,
        limit,
        cursor,
        prefix=name_prefix.lower() if name_prefix else None,
        filter_condition=filters,
    )


def list_assignments(
    tenant_id: str, limit: int, cursor: str | None, scope: str | None = None, scope_id: str | None = None
) -> tuple[list[ProductAssignment], str | None]:
    pk = ProductAssignment.key(tenant_id)
    if scope_id and not scope:
        raise ValidationError("scope", "is required with scope_id")
    prefix = f"{scope}#" if scope else None
    if scope and scope_id:
        prefix = f"{scope}#{scope_id}#"
    query = Entity.query(
        pk,
        Entity.sk.startswith(prefix) if prefix else None,
        limit=limit,
        last_evaluated_key=common.decode_cursor(common.checked_cursor(cursor, pk=pk)),
    )
    records, next_cursor = common.page(query, limit)
    return [r for r in records if isinstance(r, ProductAssignment)], next_cursor


def missing_products(tenant_id: str, product_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(product_ids))
    found = common.batch_get(Product, ((Product.key(tenant_id, p), META) for p in ids))
    return [p for p in ids if Product.key(tenant_id, p) not in found]


# ---------------------------------------------------------------------------- records from requests
def name_sort_key(name: str, record_id: str) -> str:
    return f"{name.lower()}#{record_id}"


def new_named(model: type[E], tenant_id: str, record_id: str, data: Mapping[str, Any]) -> E:
    """A contact, product, price list, membership or team: listed by name in gsi1."""
    return model(
        key_of(model, tenant_id, record_id),
        META,
        tenant_id=tenant_id,
        id=record_id,
        gsi1pk=model.list_key(tenant_id),
        gsi1sk=name_sort_key(str(data["name"]), record_id),
        **data,
    )


def named_changes(record: Entity, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Changes plus the list sort key when the name changes."""
    out = dict(changes)
    if "name" in out:
        out["gsi1sk"] = name_sort_key(str(out["name"]), record.id)
    return out


def price_map(prices: Mapping[str, Decimal]) -> dict[str, str]:
    # Kept as exact decimal strings (store.billing reads them back with Decimal(str(v))).
    return {product_id: str(price) for product_id, price in prices.items()}


def check_price_products(tenant_id: str, prices: Mapping[str, Any]) -> None:
    missing = missing_products(tenant_id, prices)
    if missing:
        raise ValidationError(f"prices.{missing[0]}", f"no product {missing[0]!r} in this tenant")


def assignment_id(scope: str, scope_id: str, line_kind: str) -> str:
    # Scope and line kind never contain a dot, so the id splits back unambiguously.
    return f"{scope}.{scope_id}.{line_kind}"


def assignment_key(assignment: str) -> tuple[str, str]:
    scope, _, rest = assignment.partition(".")
    scope_id, _, line_kind = rest.rpartition(".")
    if not (scope and scope_id and line_kind):
        raise NotFound("assignment", assignment)
    return scope, ProductAssignment.sort_key(scope, scope_id, line_kind)


def get_assignment(tenant_id: str, assignment: str) -> ProductAssignment:
    _, sk = assignment_key(assignment)
    return common.get(ProductAssignment, ProductAssignment.key(tenant_id), sk, entity="assignment")


def new_assignment(
    tenant_id: str, scope: str, scope_id: str, line_kind: str, product_id: str
) -> ProductAssignment:
    return ProductAssignment(
        ProductAssignment.key(tenant_id),
        ProductAssignment.sort_key(scope, scope_id, line_kind),
        tenant_id=tenant_id,
        id=assignment_id(scope, scope_id, line_kind),
        scope=scope,
        scope_id=scope_id,
        line_kind=line_kind,
        product_id=product_id,
    )


# ---------------------------------------------------------------------------- one function per command
def new_id(given: str | None) -> str:
    return given or uuid.uuid4().hex


NAMED: Mapping[str, type[Entity]] = {
    "contact": Contact,
    "product": Product,
    "price-list": PriceList,
    "membership": Membership,
    "team": Team,
}


def _prices(tenant_id: str, data: dict[str, Any]) -> None:
    if data.get("prices") is not None:
        check_price_products(tenant_id, data["prices"])
        data["prices"] = price_map(data["prices"])


def create_named(model: type[E], tenant_id: str, actor: str, data: Mapping[str, Any]) -> E:
    """Create a contact, product, price list, membership or team (references must exist)."""
    values = dict(data)
    record_id = new_id(values.pop("id", None))
    if model is PriceList:
        _prices(tenant_id, values)
    return create(new_named(model, tenant_id, record_id, values), actor)


def update_named(model: type[E], tenant_id: str, record_id: str, changes: Mapping[str, Any], actor: str) -> E:
    record = get(model, tenant_id, record_id)
    values = dict(changes)
    if model is PriceList:
        _prices(tenant_id, values)
    return update(record, named_changes(record, values), actor)


def delete_record(model: type[Entity], tenant_id: str, record_id: str, actor: str) -> None:
    """Delete a record that nothing references (a contact with tasks, a product in use: 409)."""
    delete(get(model, tenant_id, record_id), actor)


def list_contacts(
    tenant_id: str, limit: int, cursor: str | None, name_prefix: str | None, tag: str | None
) -> tuple[list[Contact], str | None]:
    filters = Contact.tags.contains(tag) if tag else None
    return list_by_name(Contact, tenant_id, limit, cursor, name_prefix, filters)


def list_products(
    tenant_id: str, limit: int, cursor: str | None, name_prefix: str | None, kind: str | None
) -> tuple[list[Product], str | None]:
    filters = (Product.kind == kind) if kind else None
    return list_by_name(Product, tenant_id, limit, cursor, name_prefix, filters)


def create_assignment(
    tenant_id: str, actor: str, scope: str, scope_id: str | None, line_kind: str, product_id: str
) -> ProductAssignment:
    """One product per (scope, scope id, line kind): a second one is a 409 (PATCH the first)."""
    if scope == "tenant":
        if scope_id not in (None, tenant_id):
            raise ValidationError("scope_id", "is the tenant itself at tenant scope: omit it")
        scope_id = tenant_id
    if scope_id is None:
        raise ValidationError("scope_id", f"is required at {scope} scope")
    return create(new_assignment(tenant_id, scope, scope_id, line_kind, product_id), actor)


def update_assignment(
    tenant_id: str, assignment: str, changes: Mapping[str, Any], actor: str
) -> ProductAssignment:
    return update(get_assignment(tenant_id, assignment), changes, actor)


def delete_assignment(tenant_id: str, assignment: str, actor: str) -> None:
    delete(get_assignment(tenant_id, assignment), actor)


@dataclass(frozen=True)
class Named(Generic[E]):
    """The commands of one kind of named record, typed by its model: callers (the API) name the
    kind (`catalog.contacts`) and never handle the model class."""

    model: type[E]

    def get(self, tenant_id: str, record_id: str) -> E:
        return get(self.model, tenant_id, record_id)

    def create(self, tenant_id: str, actor: str, data: Mapping[str, Any]) -> E:
        return create_named(self.model, tenant_id, actor, data)

    def update(self, tenant_id: str, record_id: str, changes: Mapping[str, Any], actor: str) -> E:
        return update_named(self.model, tenant_id, record_id, changes, actor)

    def delete(self, tenant_id: str, record_id: str, actor: str) -> None:
        delete_record(self.model, tenant_id, record_id, actor)

    def list(
        self, tenant_id: str, limit: int, cursor: str | None, name_prefix: str | None = None
    ) -> tuple[list[E], str | None]:
        return list_by_name(self.model, tenant_id, limit, cursor, name_prefix)


contacts = Named(Contact)
products = Named(Product)
price_lists = Named(PriceList)
memberships = Named(Membership)
teams = Named(Team)
# ---- issue 17: technicians (service types and inventory items are products: store/services.py)
workers = Named(Worker)
