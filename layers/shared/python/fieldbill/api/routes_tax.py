"""Sales-tax codes (issue 15): a tenant's codes and rates; new invoices are taxed by the default
code on their taxable lines (domain/tax.py). Changing or deleting a code changes no invoice made."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Cursor, PageLimit, TaxCodeIn, TaxCodePatch
from fieldbill.store import tax_codes

router = APIGatewayHttpRouter()

OK = responses()
CREATED = responses(201, "Created")


def _tenant() -> str:
    return context.tenant_id(router)


def _actor() -> str:
    return context.actor(router)


@router.post(
    "/tax-codes", summary="Create a tax code", tags=["tax codes"], status_code=201, responses=CREATED
)
def create_tax_code(body: TaxCodeIn) -> out.TaxCodeOut:
    return views.build(out.TaxCodeOut, tax_codes.create(_tenant(), _actor(), body.model_dump()))


@router.get("/tax-codes", summary="List tax codes", tags=["tax codes"], responses=OK)
def list_tax_codes(limit: PageLimit = 50, cursor: Cursor = None) -> out.Page[out.TaxCodeOut]:
    return views.page(out.TaxCodeOut, *tax_codes.list_codes(_tenant(), limit, cursor))


@router.get("/tax-codes/<code_id>", summary="Get a tax code", tags=["tax codes"], responses=OK)
def get_tax_code(code_id: str) -> out.TaxCodeOut:
    return views.build(out.TaxCodeOut, tax_codes.get(_tenant(), code_id))


@router.patch(
    "/tax-codes/<code_id>",
    summary="Change a tax code (partial); is_default true makes it the only default",
    tags=["tax codes"],
    responses=OK,
)
def update_tax_code(code_id: str, body: TaxCodePatch) -> out.TaxCodeOut:
    return views.build(out.TaxCodeOut, tax_codes.update(_tenant(), code_id, body.changes(), _actor()))


@router.delete(
    "/tax-codes/<code_id>",
    summary="Delete a tax code (invoices keep the rate they copied)",
    tags=["tax codes"],
    responses=OK,
)
def delete_tax_code(code_id: str) -> out.DeletedOut:
    tax_codes.delete(_tenant(), code_id, _actor())
    return views.deleted(code_id)
