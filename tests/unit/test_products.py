from __future__ import annotations

from decimal import Decimal

import pytest

from fieldbill.domain.errors import NotFound, ValidationError
from fieldbill.domain.model import LineKind, ProductScope
from fieldbill.domain.products import (
    default_product_id,
    default_product_spec,
    default_products_for,
    resolve_product,
)
from tests.unit import factories as f

L = LineKind
S = ProductScope

CATALOGUE = {p.id: p for p in (f.product(name) for name in ("entryp", "taskp", "cp", "mp", "tp", "tenp"))}


def _resolve(line_kind=L.TASK_ENTRY, *, entry=None, task=None, contact=None, assignments=()):
    return resolve_product(
        line_kind,
        entry=entry or f.time_entry(),
        task=task or f.task(),
        contact=contact or f.contact(membership_id="mem1", team_id="team1"),
        assignments=f.assignments(*assignments),
        products=CATALOGUE,
    )


ALL_LEVELS = [
    f.assign(S.TASK, "task1", L.TASK_ENTRY, "taskp"),
    f.assign(S.CONTACT, "c1", L.TASK_ENTRY, "cp"),
    f.assign(S.MEMBERSHIP, "mem1", L.TASK_ENTRY, "mp"),
    f.assign(S.TEAM, "team1", L.TASK_ENTRY, "tp"),
    f.assign(S.TENANT, f.TENANT, L.TASK_ENTRY, "tenp"),
]


def test_entry_product_wins_over_every_assignment() -> None:
    # Given an entry with an explicit product and assignments at every scope
    entry = f.time_entry(product_id="entryp")
    # When the product is resolved
    resolved = _resolve(entry=entry, assignments=ALL_LEVELS)
    # Then the entry's product is used
    assert (resolved.product.id, resolved.scope) == ("entryp", S.ENTRY)


@pytest.mark.parametrize(
    ("first_level", "expected_product", "expected_scope"),
    [
        (0, "taskp", S.TASK),
        (1, "cp", S.CONTACT),
        (2, "mp", S.MEMBERSHIP),
        (3, "tp", S.TEAM),
        (4, "tenp", S.TENANT),
    ],
)
def test_each_assignment_level_wins_over_the_broader_ones(first_level, expected_product, expected_scope):
    # Given assignments from one scope down to tenant scope only
    assignments = ALL_LEVELS[first_level:]
    # When the product of a time line is resolved
    resolved = _resolve(assignments=assignments)
    # Then the most specific present scope wins
    assert (resolved.product.id, resolved.scope) == (expected_product, expected_scope)


def test_assignments_are_per_line_kind() -> None:
    # Given a contact assignment for goods only
    assignments = [f.assign(S.CONTACT, "c1", L.GOODS, "cp")]
    # When a time line is resolved
    resolved = _resolve(L.TASK_ENTRY, assignments=assignments)
    # Then the goods assignment does not apply
    assert resolved.scope is S.DEFAULT


def test_task_billing_product_is_the_task_scope_for_time_lines() -> None:
    # Given a task whose billing context names a product, and a contact assignment
    task = f.task(billing=f.billing(product_id="taskp"))
    # When a time line is resolved
    resolved = _resolve(task=task, assignments=[f.assign(S.CONTACT, "c1", L.TASK_ENTRY, "cp")])
    # Then the task's product wins at task scope
    assert (resolved.product.id, resolved.scope) == ("taskp", S.TASK)


def test_task_billing_product_does_not_price_goods() -> None:
    # Given a task billing product
    task = f.task(billing=f.billing(product_id="taskp"))
    # When a goods line is resolved
    resolved = _resolve(L.GOODS, entry=f.goods_entry(), task=task)
    # Then it falls through to the default
    assert resolved.scope is S.DEFAULT


def test_contact_without_membership_or_team_skips_those_scopes() -> None:
    # Given a contact with neither membership nor team, and a tenant assignment
    contact = f.contact()
    # When resolved
    resolved = _resolve(contact=contact, assignments=ALL_LEVELS[2:])
    # Then the tenant assignment applies
    assert resolved.scope is S.TENANT


def test_mileage_entry_product_applies_to_distance_not_time() -> None:
    # Given a mileage entry with an explicit product
    entry = f.mileage_entry(minutes="30", product_id="entryp")
    # When both transport lines are resolved
    distance = _resolve(L.TRANSPORT_DISTANCE, entry=entry)
    time = _resolve(L.TRANSPORT_TIME, entry=entry)
    # Then only the distance line uses it
    assert distance.scope is S.ENTRY
    assert (time.product.id, time.scope) == ("default-transport-time", S.DEFAULT)


@pytest.mark.parametrize(
    ("line_kind", "product_id", "name", "unit", "price"),
    [
        (L.TASK_ENTRY, "default-work", "Work", "hour", None),
        (L.GOODS, "default-work", "Work", "hour", None),
        (L.EXPENSE, "default-work", "Work", "hour", None),
        (L.TRANSPORT_DISTANCE, "default-transport", "Transport", "km", Decimal("5.0")),
        (L.TRANSPORT_TIME, "default-transport-time", "Transport Time", "hour", Decimal("1000.0")),
    ],
)
def test_fallback_default_per_line_kind(line_kind, product_id, name, unit, price) -> None:
    # Given no assignment at any scope and no default product stored yet
    # When the line's product is resolved
    resolved = _resolve(line_kind, entry=f.mileage_entry(minutes="10"))
    # Then the built-in default spec is used, with a deterministic id, marked auto-created
    p = resolved.product
    assert resolved.scope is S.DEFAULT
    assert (p.id, p.name, p.unit, p.default_unit_price, p.auto_created) == (
        product_id,
        name,
        unit,
        price,
        True,
    )
    assert p.tenant_id == f.TENANT
    assert default_product_spec(f.TENANT, line_kind) == p


def test_existing_default_product_is_reused_with_the_tenants_edits() -> None:
    # Given the tenant's Transport default already stored, with an edited price
    stored = f.product("default-transport", price="6.5", unit="km", auto_created=True)
    # When a distance line falls back to the default
    resolved = resolve_product(
        L.TRANSPORT_DISTANCE,
        entry=f.mileage_entry(),
        task=f.task(),
        contact=f.contact(),
        assignments=f.assignments(),
        products={stored.id: stored},
    )
    # Then the stored product is used, not a fresh spec
    assert resolved.product is stored


def test_default_product_ids_are_deterministic() -> None:
    # Given the default names / When ids are derived twice / Then they are stable slugs
    assert default_product_id("Work") == "default-work"
    assert default_product_id("Transport Time") == default_product_id("Transport Time")
    assert default_product_id("Transport Time") == "default-transport-time"


def test_default_products_for_lists_each_needed_default_once() -> None:
    # Given items compiled from defaults for time, goods and mileage lines
    from fieldbill.domain.compile import compile_task

    items = compile_task(
        f.task(),
        f.contact(),
        [f.time_entry(), f.goods_entry(), f.mileage_entry(minutes="15")],
        f.assignments(),
        {},
        {},
    )
    # When the needed defaults are listed
    specs = default_products_for(f.TENANT, items)
    # Then each default appears once ("Work" is shared)
    assert [p.id for p in specs] == ["default-transport", "default-transport-time", "default-work"]


def test_dangling_assignment_is_not_found() -> None:
    # Given an assignment to a product that is not in the catalogue
    # When resolved / Then NotFound, never a silent fallback
    with pytest.raises(NotFound):
        _resolve(assignments=[f.assign(S.CONTACT, "c1", L.TASK_ENTRY, "ghost")])


def test_two_products_for_one_slot_is_invalid() -> None:
    # Given two assignments for the same scope and line kind
    # When the lookup is built / Then it is rejected
    with pytest.raises(ValidationError):
        f.assignments(
            f.assign(S.CONTACT, "c1", L.GOODS, "cp"),
            f.assign(S.CONTACT, "c1", L.GOODS, "tp"),
        )


def test_default_scope_cannot_be_assigned() -> None:
    # Given / When an assignment at default scope is built / Then it is rejected
    with pytest.raises(ValidationError):
        f.assign(S.DEFAULT, f.TENANT, L.GOODS, "cp")
