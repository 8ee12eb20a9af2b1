"""Issue 15 routes. Sales-tax codes: a tenant's codes and rates; new invoices are taxed by the
default code on their taxable lines (domain/tax.py); changing or deleting a code changes no
invoice made. Reconciliation with QuickBooks: a report (an operation) and one-click repairs."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Cursor, PageLimit, ReconcileIn, RepairIn, TaxCodeIn, TaxCodePatch
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


# ---------------------------------------------------------------------------- reconciliation
@router.post(
    "/quickbooks/reconcile",
    summary="Compare the period's invoices and their customers with QuickBooks (202: poll the operation)",
    tags=["quickbooks"],
    status_code=202,
    responses=responses(202, "Accepted"),
)
def reconcile(body: ReconcileIn) -> out.OperationAccepted:
    from fieldbill.workflows.inbound import reconcile as reconciling  # lazy: the API's cold start

    operation = reconciling.request(_tenant(), body.date_from, body.date_to, _actor())
    return out.OperationAccepted(operation_id=operation.id, status=str(operation.status))


@router.post(
    "/quickbooks/repairs",
    summary="Apply one reconciliation difference's repair (ours sent again, or QuickBooks' read back)",
    tags=["quickbooks"],
    status_code=202,
    responses=responses(202, "Accepted"),
)
def repair(body: RepairIn) -> out.RepairOut:
    from fieldbill.workflows.inbound import reconcile as reconciling  # lazy: the API's cold start

    return out.RepairOut.model_validate(
        reconciling.repair(_tenant(), body.kind, body.invoice_id, _actor(), body.qbo_id)
    )
