"""The catalogue: products, price lists, memberships, teams, and product assignments."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api.schemas import (
    AssignmentIn,
    AssignmentPatch,
    Cursor,
    GroupIn,
    GroupPatch,
    NamePrefix,
    PageLimit,
    PriceListIn,
    PriceListPatch,
    ProductIn,
    ProductKind,
    ProductPatch,
    Scope,
)
from fieldbill.store import catalog
from fieldbill.store.models import Membership, PriceList, Product, Team
from fieldbill.workflows import sync_queue

router = APIGatewayHttpRouter()

Limit = PageLimit


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


def _deleted(record_id: str) -> tuple[dict[str, Any], int]:
    return {"deleted": True, "id": record_id}, 200


# ---------------------------------------------------------------------------- products
@router.post("/products", summary="Create a product", tags=["products"])
def create_product(body: ProductIn) -> tuple[dict[str, Any], int]:
    record = catalog.create_named(Product, _tenant(), _actor(), body.model_dump())
    sync_queue.push(record.tenant_id, "sync_product", record.id)  # created in QuickBooks at once
    return views.view(record), 201


@router.get("/products", summary="List products by name (filters: name prefix, kind)", tags=["products"])
def list_products(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None, kind: ProductKind | None = None
) -> dict[str, Any]:
    return views.page(*catalog.list_products(_tenant(), limit, cursor, name_prefix, kind))


@router.get("/products/<product_id>", summary="Get a product", tags=["products"])
def get_product(product_id: str) -> dict[str, Any]:
    return views.view(catalog.get(Product, _tenant(), product_id))


@router.patch("/products/<product_id>", summary="Change a product (partial)", tags=["products"])
def update_product(product_id: str, body: ProductPatch) -> dict[str, Any]:
    record = catalog.update_named(Product, _tenant(), product_id, body.changes(), _actor())
    sync_queue.push(record.tenant_id, "sync_product", record.id)  # the item in QuickBooks follows
    return views.view(record)


@router.delete(
    "/products/<product_id>", summary="Delete a product nothing refers to (409 if in use)", tags=["products"]
)
def delete_product(product_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(Product, _tenant(), product_id, _actor())
    return _deleted(product_id)


# ---------------------------------------------------------------------------- price lists
@router.post("/price-lists", summary="Create a price list (product id -> unit price)", tags=["price lists"])
def create_price_list(body: PriceListIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_named(PriceList, _tenant(), _actor(), body.model_dump())), 201


@router.get("/price-lists", summary="List price lists by name", tags=["price lists"])
def list_price_lists(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> dict[str, Any]:
    return views.page(*catalog.list_by_name(PriceList, _tenant(), limit, cursor, name_prefix))


@router.get("/price-lists/<price_list_id>", summary="Get a price list", tags=["price lists"])
def get_price_list(price_list_id: str) -> dict[str, Any]:
    return views.view(catalog.get(PriceList, _tenant(), price_list_id))


@router.patch(
    "/price-lists/<price_list_id>",
    summary="Change a price list (prices replace the whole map)",
    tags=["price lists"],
)
def update_price_list(price_list_id: str, body: PriceListPatch) -> dict[str, Any]:
    return views.view(catalog.update_named(PriceList, _tenant(), price_list_id, body.changes(), _actor()))


@router.delete(
    "/price-lists/<price_list_id>",
    summary="Delete a price list no contact or task uses",
    tags=["price lists"],
)
def delete_price_list(price_list_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(PriceList, _tenant(), price_list_id, _actor())
    return _deleted(price_list_id)


# ---------------------------------------------------------------------------- memberships
@router.post("/memberships", summary="Create a membership", tags=["memberships"])
def create_membership(body: GroupIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_named(Membership, _tenant(), _actor(), body.model_dump())), 201


@router.get("/memberships", summary="List memberships by name", tags=["memberships"])
def list_memberships(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> dict[str, Any]:
    return views.page(*catalog.list_by_name(Membership, _tenant(), limit, cursor, name_prefix))


@router.get("/memberships/<membership_id>", summary="Get a membership", tags=["memberships"])
def get_membership(membership_id: str) -> dict[str, Any]:
    return views.view(catalog.get(Membership, _tenant(), membership_id))


@router.patch("/memberships/<membership_id>", summary="Rename a membership", tags=["memberships"])
def update_membership(membership_id: str, body: GroupPatch) -> dict[str, Any]:
    return views.view(catalog.update_named(Membership, _tenant(), membership_id, body.changes(), _actor()))


@router.delete(
    "/memberships/<membership_id>",
    summary="Delete a membership no contact or assignment uses",
    tags=["memberships"],
)
def delete_membership(membership_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(Membership, _tenant(), membership_id, _actor())
    return _deleted(membership_id)


# ---------------------------------------------------------------------------- teams
@router.post("/teams", summary="Create a team", tags=["teams"])
def create_team(body: GroupIn) -> tuple[dict[str, Any], int]:
    return views.view(catalog.create_named(Team, _tenant(), _actor(), body.model_dump())), 201


@router.get("/teams", summary="List teams by name", tags=["teams"])
def list_teams(limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None) -> dict[str, Any]:
    return views.page(*catalog.list_by_name(Team, _tenant(), limit, cursor, name_prefix))


@router.get("/teams/<team_id>", summary="Get a team", tags=["teams"])
def get_team(team_id: str) -> dict[str, Any]:
    return views.view(catalog.get(Team, _tenant(), team_id))


@router.patch("/teams/<team_id>", summary="Rename a team", tags=["teams"])
def update_team(team_id: str, body: GroupPatch) -> dict[str, Any]:
    return views.view(catalog.update_named(Team, _tenant(), team_id, body.changes(), _actor()))


@router.delete("/teams/<team_id>", summary="Delete a team no contact or assignment uses", tags=["teams"])
def delete_team(team_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_record(Team, _tenant(), team_id, _actor())
    return _deleted(team_id)


# ---------------------------------------------------------------------------- product assignments
@router.post(
    "/assignments",
    summary="Assign a product to a line kind at a scope (one per scope and kind)",
    tags=["assignments"],
)
def create_assignment(body: AssignmentIn) -> tuple[dict[str, Any], int]:
    record = catalog.create_assignment(
        _tenant(), _actor(), body.scope, body.scope_id, body.line_kind, body.product_id
    )
    return views.view(record), 201


@router.get(
    "/assignments", summary="List product assignments (filters: scope, scope id)", tags=["assignments"]
)
def list_assignments(
    limit: Limit = 100, cursor: Cursor = None, scope: Scope | None = None, scope_id: str | None = None
) -> dict[str, Any]:
    return views.page(*catalog.list_assignments(_tenant(), limit, cursor, scope, scope_id))


@router.get(
    "/assignments/<assignment_id>",
    summary="Get an assignment (id: scope.scope_id.line_kind)",
    tags=["assignments"],
)
def get_assignment(assignment_id: str) -> dict[str, Any]:
    return views.view(catalog.get_assignment(_tenant(), assignment_id))


@router.patch("/assignments/<assignment_id>", summary="Assign another product", tags=["assignments"])
def update_assignment(assignment_id: str, body: AssignmentPatch) -> dict[str, Any]:
    return views.view(catalog.update_assignment(_tenant(), assignment_id, body.changes(), _actor()))


@router.delete("/assignments/<assignment_id>", summary="Remove an assignment", tags=["assignments"])
def delete_assignment(assignment_id: str) -> tuple[dict[str, Any], int]:
    catalog.delete_assignment(_tenant(), assignment_id, _actor())
    return _deleted(assignment_id)
