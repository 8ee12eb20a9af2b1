"""Recurring billing (issue 16, seed 001): bill profiles, an account's profile, recurring services,
and "create draft invoices" for one profile and period (preview, then commit as an operation)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field, StrictBool, StrictInt
from pydantic import ValidationError as PydanticValidationError

from fieldbill.api import context, views
from fieldbill.api import responses as out
from fieldbill.api.errors import responses
from fieldbill.api.schemas import Cursor, Day, Id, IdQuery, Money, Name, PageLimit, Strict
from fieldbill.clock import today
from fieldbill.domain import recurring
from fieldbill.domain.errors import ValidationError
from fieldbill.domain.model import Destination
from fieldbill.store import recurring as store
from fieldbill.workflows.billing import jobs
from fieldbill.workflows.recurring import drafts

router = APIGatewayHttpRouter()
OK = responses()
CREATED = responses(201, "Created")
ACCEPTED = responses(202, "Accepted")


# ---------------------------------------------------------------------------- bodies
class BillProfileIn(Strict):
    id: Id | None = None
    name: Name
    cadence: Literal["monthly", "quarterly", "yearly", "weeks"]
    start_date: Day = Field(description="billing start: no period begins before its period")
    billing_day: StrictInt = Field(default=1, ge=1, le=28)
    every_weeks: StrictInt = Field(default=1, ge=1, le=52, description="for cadence weeks: every N weeks")
    terms_days: StrictInt = Field(default=30, ge=0, le=365, description="Net-N; an account may override it")
    skip_zero: StrictBool = Field(default=False, description='default of "do not generate $0 invoices"')


class BillProfilePatchIn(Strict):
    """What can change on a profile whose periods invoices were made by (not its cadence,
    start or billing day: those define the periods)."""

    name: Name | None = None
    terms_days: StrictInt | None = Field(
        default=None, ge=0, le=365, description="Net-N; an account may override it"
    )
    skip_zero: StrictBool | None = Field(default=None, description='default of "do not generate $0 invoices"')


class ContactProfileIn(Strict):
    bill_profile_id: Id | None
    terms_days: StrictInt | None = Field(default=None, ge=0, le=365, description="the account's own Net-N")


class RecurringServiceIn(Strict):
    id: Id | None = None
    contact_id: Id
    name: Name
    product_id: Id
    rate: Money
    basis: Literal["period", "visit"] = Field(description="a rate per billing period or per visit")
    start_date: Day
    end_date: Day | None = None
    visit_weekday: StrictInt | None = Field(default=None, ge=0, le=6, description="0 = Monday; per visit")


class ServiceEndIn(Strict):
    end_date: Day


class DraftsIn(Strict):
    contact_ids: list[Id] | None = Field(
        default=None, min_length=1, max_length=5000, description="chosen accounts; all when absent"
    )
    invoice_date: Day | None = Field(default=None, description="the 1st of the period's month when absent")
    skip_zero: StrictBool | None = Field(default=None, description="the profile's default when absent")
    destination: Literal["quickbooks", "local"] | None = None
    preview_fingerprint: str | None = Field(
        default=None, max_length=64, description="commit only if the data is still what this preview showed"
    )


# ---------------------------------------------------------------------------- answers
class PeriodOut(out.Out):
    key: str
    start: str
    end: str
    default_invoice_date: str


class BillProfileOut(out.Record):
    name: str
    cadence: str
    start_date: str
    billing_day: StrictInt
    every_weeks: StrictInt
    terms_days: StrictInt
    skip_zero: StrictBool
    periods: list[PeriodOut] = Field(default_factory=list, description="periods around today")


class RecurringServiceOut(out.Record):
    contact_id: str
    name: str
    product_id: str
    product_name: str
    rate: out.DecimalText
    basis: str
    start_date: str
    end_date: str | None = None
    visit_weekday: StrictInt | None = None


class ChargeOut(out.Out):
    item_id: str
    line_kind: str
    description: str
    product_id: str
    quantity: out.DecimalText
    unit_price: out.DecimalText
    amount: out.DecimalText


class AccountPreviewOut(out.Out):
    contact_id: str
    name: str
    invoice_id: str
    action: str = Field(description="create | skip_zero | too_many_lines")
    lines: list[ChargeOut]
    balance_forward: out.DecimalText = Field(description="shown on the invoice, not added to its total")
    total: out.DecimalText
    active_services: int
    exceptions: list[str]
    fingerprint: str


class PreviewOut(out.Out):
    bill_profile_id: str
    period: PeriodOut
    invoice_date: str
    skip_zero: StrictBool
    fingerprint: str = Field(description="pass as preview_fingerprint to commit exactly this")
    totals: dict[str, Any]
    accounts: list[AccountPreviewOut]


# ---------------------------------------------------------------------------- views
def _period(period: recurring.Period) -> PeriodOut:
    return PeriodOut(
        key=period.key,
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        default_invoice_date=period.default_invoice_date().isoformat(),
    )


def _profile(record: Any) -> BillProfileOut:
    domain = store.profile_to_domain(record)
    return views.build(
        BillProfileOut, record, periods=[_period(p) for p in recurring.periods(domain, today())]
    )


def _charge(item: Any) -> ChargeOut:
    return ChargeOut(
        item_id=item.id,
        line_kind=str(item.line_kind),
        description=item.description,
        product_id=item.product_id,
        quantity=views.decimal_text(item.quantity),
        unit_price=views.decimal_text(item.unit_price),
        amount=views.decimal_text(item.amount),
    )


def _preview(plan: recurring.RunPlan) -> PreviewOut:
    return PreviewOut(
        bill_profile_id=plan.profile_id,
        period=_period(plan.period),
        invoice_date=plan.invoice_date.isoformat(),
        skip_zero=plan.skip_zero,
        fingerprint=plan.fingerprint,
        totals={k: views.plain(v) for k, v in plan.totals.items()},
        accounts=[
            AccountPreviewOut(
                contact_id=a.contact_id,
                name=a.name,
                invoice_id=a.invoice_id,
                action=a.action,
                lines=[_charge(i) for i in [*a.charges, *a.items]],
                balance_forward=views.decimal_text(a.balance_forward),
                total=views.decimal_text(a.total),
                active_services=a.active_services,
                exceptions=list(a.exceptions),
                fingerprint=a.fingerprint,
            )
            for a in plan.accounts
        ],
    )


def _drafts_request(profile_id: str, period: str, body: DraftsIn) -> drafts.DraftsRequest:
    if body.contact_ids is not None and len(set(body.contact_ids)) != len(body.contact_ids):
        raise ValidationError("contact_ids", "an account is chosen twice")
    try:
        return drafts.DraftsRequest(
            bill_profile_id=profile_id,
            period=period,
            contact_ids=body.contact_ids,
            invoice_date=body.invoice_date,
            skip_zero=body.skip_zero,
            destination=Destination(body.destination) if body.destination else None,
            preview_fingerprint=body.preview_fingerprint,
        )
    except PydanticValidationError as exc:  # a path parameter of the wrong shape: 422 naming it
        first = exc.errors()[0]
        raise ValidationError(str(first["loc"][0]) if first["loc"] else "period", first["msg"]) from None


# ---------------------------------------------------------------------------- bill profiles
@router.post(
    "/bill-profiles", summary="Create a bill profile", tags=["recurring"], status_code=201, responses=CREATED
)
def create_bill_profile(body: BillProfileIn) -> BillProfileOut:
    tenant = context.tenant_id(router)
    profile = recurring.BillProfile(
        id=body.id or uuid.uuid4().hex,
        name=body.name,
        cadence=body.cadence,  # type: ignore[arg-type]
        start_date=body.start_date,
        billing_day=body.billing_day,
        every_weeks=body.every_weeks,
        terms_days=body.terms_days,
        skip_zero=body.skip_zero,
    )
    return _profile(store.create_profile(tenant, profile, context.actor(router)))


@router.get("/bill-profiles", summary="List bill profiles", tags=["recurring"], responses=OK)
def list_bill_profiles(limit: PageLimit = 50, cursor: Cursor = None) -> out.Page[BillProfileOut]:
    records, next_cursor = store.list_profiles(context.tenant_id(router), limit, cursor)
    return out.Page[BillProfileOut](items=[_profile(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/bill-profiles/<profile_id>",
    summary="A bill profile with its billing periods around today",
    tags=["recurring"],
    responses=OK,
)
def get_bill_profile(profile_id: str) -> BillProfileOut:
    return _profile(store.get_profile(context.tenant_id(router), profile_id))


@router.patch(
    "/bill-profiles/<profile_id>",
    summary="Change a bill profile's name, terms (Net-N) or skip $0 default",
    tags=["recurring"],
    responses=OK,
)
def update_bill_profile(profile_id: str, body: BillProfilePatchIn) -> BillProfileOut:
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ValidationError("name", "give name, terms_days or skip_zero to change")
    tenant = context.tenant_id(router)
    return _profile(store.update_profile(tenant, profile_id, changes, context.actor(router)))


@router.put(
    "/contacts/<contact_id>/bill-profile",
    summary="Set an account's bill profile (one) and its own terms",
    tags=["recurring"],
    responses=OK,
)
def set_contact_bill_profile(contact_id: str, body: ContactProfileIn) -> out.ContactOut:
    tenant = context.tenant_id(router)
    store.set_contact_profile(
        tenant, contact_id, body.bill_profile_id, body.terms_days, context.actor(router)
    )
    return views.contact(store.get_contact(tenant, contact_id))


# ---------------------------------------------------------------------------- recurring services
@router.post(
    "/recurring-services",
    summary="Start a recurring service on an account (rate per period or per visit)",
    tags=["recurring"],
    status_code=201,
    responses=CREATED,
)
def create_recurring_service(body: RecurringServiceIn) -> RecurringServiceOut:
    tenant = context.tenant_id(router)
    service = recurring.RecurringService(
        id=body.id or uuid.uuid4().hex,
        contact_id=body.contact_id,
        name=body.name,
        product_id=body.product_id,
        product_name=store.product_name(tenant, body.product_id),
        rate=Decimal(body.rate),
        basis=body.basis,  # type: ignore[arg-type]
        start_date=body.start_date,
        end_date=body.end_date,
        visit_weekday=body.visit_weekday,
    )
    return views.build(RecurringServiceOut, store.create_service(tenant, service, context.actor(router)))


@router.get("/recurring-services", summary="List recurring services", tags=["recurring"], responses=OK)
def list_recurring_services(
    contact_id: IdQuery = None, limit: PageLimit = 50, cursor: Cursor = None
) -> out.Page[RecurringServiceOut]:
    records, next_cursor = store.list_services(context.tenant_id(router), limit, cursor, contact_id)
    return out.Page[RecurringServiceOut](
        items=[views.build(RecurringServiceOut, r) for r in records], next_cursor=next_cursor
    )


@router.post(
    "/recurring-services/<service_id>/end",
    summary="End a recurring service (its last period is prorated)",
    tags=["recurring"],
    responses=OK,
)
def end_recurring_service(service_id: str, body: ServiceEndIn) -> RecurringServiceOut:
    tenant = context.tenant_id(router)
    service = store.service_to_domain(store.get_service(tenant, service_id))
    if body.end_date < service.start_date:
        raise ValidationError("end_date", "must not be before the service's start_date")
    record = store.end_service(tenant, service_id, body.end_date, context.actor(router))
    return views.build(RecurringServiceOut, record)


# ---------------------------------------------------------------------------- create draft invoices
@router.post(
    "/bill-profiles/<profile_id>/periods/<period>/preview",
    summary="Preview the draft invoices of a profile's period: charges, balance, total, exceptions",
    tags=["recurring"],
    responses=OK,
)
def preview_drafts(profile_id: str, period: str, body: DraftsIn) -> PreviewOut:
    tenant = context.tenant_id(router)
    return _preview(drafts.preview(tenant, _drafts_request(profile_id, period, body)))


@router.post(
    "/bill-profiles/<profile_id>/periods/<period>/drafts",
    summary="Create the draft invoices of a profile's period (one per account, ever): 202, an operation",
    tags=["recurring"],
    status_code=202,
    responses=ACCEPTED,
)
def create_drafts(profile_id: str, period: str, body: DraftsIn) -> out.OperationAccepted:
    tenant = context.tenant_id(router)
    request = _drafts_request(profile_id, period, body)
    # Refuse a bad profile or period now (404/422), not in the operation.
    recurring.period_for(store.profile_to_domain(store.get_profile(tenant, profile_id)), period)
    operation = jobs.submit("recurring_drafts", tenant, context.actor(router), request)
    return out.OperationAccepted(operation_id=operation.id, status=operation.status)
