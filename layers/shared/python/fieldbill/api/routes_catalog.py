"""The catalogue: products, price lists, memberships, teams, and product assignments."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import names_missing, responses
from fieldbill.api.schemas import (
    AssignmentIn,
    AssignmentPatch,
    Cursor,
    GroupIn,
    GroupPatch,
    IdQuery,
    NamePrefix,
    PageLimit,
    PriceListIn,
    PriceListPatch,
    ProductIn,
    ProductKind,
    ProductPatch,
    Scope,
)
from fieldbill.store import catalog, qbo_links
from fieldbill.workflows.qbo_sync import enqueue

router = APIGatewayHttpRouter()

Limit = PageLimit
OK = responses()
CREATED = responses(201, "Created")


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


# ---------------------------------------------------------------------------- products
@router.post("/products", summary="Create a product", tags=["products"], status_code=201, responses=CREATED)
def create_product(body: ProductIn) -> out.ProductOut:
    record = catalog.products.create(_tenant(), _actor(), qbo_links.marked_dirty(body.model_dump()))
    enqueue.push(record.tenant_id, "sync_product", record.id)  # created in QuickBooks at once
    return views.product(record)


@router.get(
    "/products",
    summary="List products by name (filters: name prefix, kind)",
    tags=["products"],
    responses=OK,
)
def list_products(
    limit: Limit = 50,
    cursor: Cursor = None,
    name_prefix: NamePrefix = None,
    kind: Annotated[ProductKind | None, Query()] = None,
) -> out.Page[out.ProductOut]:
    return views.page(out.ProductOut, *catalog.list_products(_tenant(), limit, cursor, name_prefix, kind))


@router.get("/products/<product_id>", summary="Get a product", tags=["products"], responses=OK)
def get_product(product_id: str) -> out.ProductOut:
    return views.product(catalog.products.get(_tenant(), product_id))


@router.patch("/products/<product_id>", summary="Change a product (partial)", tags=["products"], responses=OK)
def update_product(product_id: str, body: ProductPatch) -> out.ProductOut:
    record = catalog.products.update(_tenant(), product_id, qbo_links.marked_dirty(body.changes()), _actor())
    enqueue.push(record.tenant_id, "sync_product", record.id)  # the item in QuickBooks follows
    return views.product(record)


@router.delete(
    "/products/<product_id>",
    summary="Delete a product nothing refers to (409 if in use)",
    tags=["products"],
    responses=OK,
)
def delete_product(product_id: str) -> out.DeletedOut:
    catalog.products.delete(_tenant(), product_id, _actor())
    return views.deleted(product_id)


# ---------------------------------------------------------------------------- price lists
@router.post(
    "/price-lists",
    summary="Create a price list (product id -> unit price)",
    tags=["price lists"],
    status_code=201,
    responses=CREATED,
)
def create_price_list(body: PriceListIn) -> out.PriceListOut:
    return views.price_list(catalog.price_lists.create(_tenant(), _actor(), body.model_dump()))


@router.get("/price-lists", summary="List price lists by name", tags=["price lists"], responses=OK)
def list_price_lists(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[out.PriceListOut]:
    return views.page(out.PriceListOut, *catalog.price_lists.list(_tenant(), limit, cursor, name_prefix))


@router.get("/price-lists/<price_list_id>", summary="Get a price list", tags=["price lists"], responses=OK)
def get_price_list(price_list_id: str) -> out.PriceListOut:
    return views.price_list(catalog.price_lists.get(_tenant(), price_list_id))


@router.patch(
    "/price-lists/<price_list_id>",
    summary="Change a price list (prices replace the whole map)",
    tags=["price lists"],
    responses=OK,
)
def update_price_list(price_list_id: str, body: PriceListPatch) -> out.PriceListOut:
    return views.price_list(catalog.price_lists.update(_tenant(), price_list_id, body.changes(), _actor()))


@router.delete(
    "/price-lists/<price_list_id>",
    summary="Delete a price list no contact or task uses",
    tags=["price lists"],
    responses=OK,
)
def delete_price_list(price_list_id: str) -> out.DeletedOut:
    catalog.price_lists.delete(_tenant(), price_list_id, _actor())
    return views.deleted(price_list_id)


# ---------------------------------------------------------------------------- memberships
@router.post(
    "/memberships", summary="Create a membership", tags=["memberships"], status_code=201, responses=CREATED
)
def create_membership(body: GroupIn) -> out.GroupOut:
    return views.group(catalog.memberships.create(_tenant(), _actor(), body.model_dump()))


@router.get("/memberships", summary="List memberships by name", tags=["memberships"], responses=OK)
def list_memberships(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[out.GroupOut]:
    return views.page(out.GroupOut, *catalog.memberships.list(_tenant(), limit, cursor, name_prefix))


@router.get("/memberships/<membership_id>", summary="Get a membership", tags=["memberships"], responses=OK)
def get_membership(membership_id: str) -> out.GroupOut:
    return views.group(catalog.memberships.get(_tenant(), membership_id))


@router.patch(
    "/memberships/<membership_id>", summary="Rename a membership", tags=["memberships"], responses=OK
)
def update_membership(membership_id: str, body: GroupPatch) -> out.GroupOut:
    return views.group(catalog.memberships.update(_tenant(), membership_id, body.changes(), _actor()))


@router.delete(
    "/memberships/<membership_id>",
    summary="Delete a membership no contact or assignment uses",
    tags=["memberships"],
    responses=OK,
)
def delete_membership(membership_id: str) -> out.DeletedOut:
    catalog.memberships.delete(_tenant(), membership_id, _actor())
    return views.deleted(membership_id)


# ---------------------------------------------------------------------------- teams
@router.post("/teams", summary="Create a team", tags=["teams"], status_code=201, responses=CREATED)
def create_team(body: GroupIn) -> out.GroupOut:
    return views.group(catalog.teams.create(_tenant(), _actor(), body.model_dump()))


@router.get("/teams", summary="List teams by name", tags=["teams"], responses=OK)
def list_teams(
    limit: Limit = 50, cursor: Cursor = None, name_prefix: NamePrefix = None
) -> out.Page[out.GroupOut]:
    return views.page(out.GroupOut, *catalog.teams.list(_tenant(), limit, cursor, name_prefix))


@router.get("/teams/<team_id>", summary="Get a team", tags=["teams"], responses=OK)
def get_team(team_id: str) -> out.GroupOut:
    return views.group(catalog.teams.get(_tenant(), team_id))


@router.patch("/teams/<team_id>", summary="Rename a team", tags=["teams"], responses=OK)
def update_team(team_id: str, body: GroupPatch) -> out.GroupOut:
    return views.group(catalog.teams.update(_tenant(), team_id, body.changes(), _actor()))


@router.delete(
    "/teams/<team_id>", summary="Delete a team no contact or assignment uses", tags=["teams"], responses=OK
)
def delete_team(team_id: str) -> out.DeletedOut:
    catalog.teams.delete(_tenant(), team_id, _actor())
    return views.deleted(team_id)


# ---------------------------------------------------------------------------- product assignments
@router.post(
    "/assignments",
    summary="Assign a product to a line kind at a scope (one per scope and kind)",
    tags=["assignments"],
    status_code=201,
    responses=CREATED,
)
def create_assignment(body: AssignmentIn) -> out.AssignmentOut:
    record = catalog.create_assignment(
        _tenant(), _actor(), body.scope, body.scope_id, body.line_kind, body.product_id
    )
    return views.assignment(record)


@router.get(
    "/assignments",
    summary="List product assignments (filters: scope, scope id)",
    tags=["assignments"],
    responses=OK,
)
def list_assignments(
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Cursor = None,
    scope: Annotated[Scope | None, Query()] = None,
    scope_id: IdQuery = None,
) -> out.Page[out.AssignmentOut]:
    return views.page(out.AssignmentOut, *catalog.list_assignments(_tenant(), limit, cursor, scope, scope_id))


@router.get(
    "/assignments/<assignment_id>",
    summary="Get an assignment (id: scope.scope_id.line_kind)",
    tags=["assignments"],
    responses=OK,
)
def get_assignment(assignment_id: str) -> out.AssignmentOut:
    with names_missing("assignment", assignment_id):
        return views.assignment(catalog.get_assignment(_tenant(), assignment_id))


@router.patch(
    "/assignments/<assignment_id>", summary="Assign another product", tags=["assignments"], responses=OK
)
def update_assignment(assignment_id: str, body: AssignmentPatch) -> out.AssignmentOut:
    with names_missing("assignment", assignment_id):
        return views.assignment(catalog.update_assignment(_tenant(), assignment_id, body.changes(), _actor()))


@router.delete(
    "/assignments/<assignment_id>", summary="Remove an assignment", tags=["assignments"], responses=OK
)
def delete_assignment(assignment_id: str) -> out.DeletedOut:
    with names_missing("assignment", assignment_id):
        catalog.delete_assignment(_tenant(), assignment_id, _actor())
    return views.deleted(assignment_id)
