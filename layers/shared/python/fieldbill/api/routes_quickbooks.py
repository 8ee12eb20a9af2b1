"""The QuickBooks Online connection: connect (OAuth 2.0), status, settings, manual sync, disconnect.

| route                              | what                                                       |
|------------------------------------|------------------------------------------------------------|
| GET  /quickbooks/connect           | the Intuit consent URL (single-use state bound to the tenant) |
| GET  /quickbooks/callback          | public: Intuit redirects here; stores tokens, resumes sync |
| GET  /quickbooks/connection        | status, realm, company, settings, last syncs, last errors |
| GET  /quickbooks/accounts?type=    | income or expense accounts, read live from QuickBooks      |
| PUT  /quickbooks/settings          | default accounts (required, checked live), numbering, tax  |
| POST /quickbooks/sync/{data_type}  | 202: pull customers, items or service_types now            |
| POST /quickbooks/disconnect        | revoke the tokens at Intuit and forget them                |
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from fieldbill.api import context, errors
from fieldbill.api.views import plain
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.store.models import QboConnection

router = APIGatewayHttpRouter()
TAGS = ["quickbooks"]
T = TypeVar("T")

AccountType = Literal["Income", "Expense"]
# What each list offers (the seed: cost of goods sold is a usual "expense" choice).
ACCOUNT_TYPES: dict[str, tuple[str, ...]] = {
    "Income": ("Income", "Other Income"),
    "Expense": ("Expense", "Cost of Goods Sold", "Other Expense"),
}
DataType = Literal["customers", "items", "service_types"]


class QboSettingsIn(BaseModel):
    """Chosen at setup; both accounts are required before anything is synced."""

    model_config = ConfigDict(extra="forbid")

    default_income_account: str | None = Field(
        default=None, max_length=50, description="Account id from GET /quickbooks/accounts?type=Income"
    )
    default_expense_account: str | None = Field(
        default=None, max_length=50, description="Account id from GET /quickbooks/accounts?type=Expense"
    )
    custom_txn_numbers: bool = Field(
        default=False, description="QuickBooks leaves invoice numbers blank instead of numbering them"
    )
    automated_tax: bool = Field(default=False, description="QuickBooks calculates the sales tax")


def _tenant() -> str:
    return context.tenant_id(router)


def _live(call: Callable[[], T]) -> T:
    """A call to QuickBooks made while the user waits: its failures as HTTP errors."""
    from fieldbill.quickbooks.errors import AuthorizationFailed, NeedsReconnect, QboError, Throttled

    try:
        return call()
    except (NeedsReconnect, AuthorizationFailed):
        raise Conflict("the QuickBooks connection needs to be reconnected") from None
    except Throttled as exc:
        raise _Unavailable(
            HTTPStatus.TOO_MANY_REQUESTS, "QuickBooks rate limit reached; retry in a minute"
        ) from exc
    except QboError as exc:
        raise _Unavailable(
            HTTPStatus.SERVICE_UNAVAILABLE, f"QuickBooks did not answer ({type(exc).__name__})"
        ) from exc


class _Unavailable(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@router.exception_handler(_Unavailable)
def _unavailable(exc: _Unavailable) -> Response[Any]:
    return errors.problem(exc.status, "quickbooks_unavailable", str(exc))


def _connected(tenant: str) -> QboConnection:
    from fieldbill.quickbooks import tokens

    record = tokens.get_connection(tenant)
    if record is None or record.status != "connected" or not record.realm_id:
        status = record.status if record else "disconnected"
        raise Conflict(f"QuickBooks is {status}: connect it first (GET /quickbooks/connect)")
    return record


def status_view(record: QboConnection | None) -> dict[str, Any]:
    from fieldbill.quickbooks import cdc, tokens

    if record is None:
        return {
            "status": "disconnected",
            "realm_id": None,
            "company_name": None,
            "settings": {},
            "settings_complete": False,
            "missing_settings": list(tokens.REQUIRED_SETTINGS),
            "last_sync": {d: None for d in cdc.DATA_TYPES},
            "last_errors": [],
        }
    settings = record.settings.as_dict() if record.settings else {}
    marks = record.watermarks.as_dict() if record.watermarks else {}
    last_sync = {}
    for data_type in cdc.DATA_TYPES:
        mark = marks.get(data_type) or {}
        last_sync[data_type] = (
            {
                "at": mark.get("last_success_at"),
                "mode": mark.get("mode"),
                "counts": plain(mark.get("counts") or {}),
            }
            if mark.get("last_success_at")
            else None
        )
    missing = tokens.missing_settings(settings)
    return {
        "status": record.status,
        "realm_id": record.realm_id,
        "company_name": record.company_name,
        "settings": plain(settings),
        "settings_complete": not missing,
        "missing_settings": missing,
        "last_sync": last_sync,
        "last_errors": [plain(e.as_dict() if hasattr(e, "as_dict") else e) for e in record.last_errors or []],
        "updated_at": record.updated_at,
        "history": [
            {"at": h.at, "actor": h.actor, "from": h.from_state, "to": h.to_state, "reason": h.reason}
            for h in (record.history or [])[-10:]
        ],
    }


# ------------------------------------------------------------------------------ connect
@router.get("/quickbooks/connect", summary="The QuickBooks consent URL for this tenant", tags=TAGS)
def connect() -> dict[str, Any]:
    from fieldbill.quickbooks import tokens

    return {"authorization_url": tokens.authorization_url(_tenant())}


@router.get("/quickbooks/callback", summary="OAuth redirect from Intuit (public)", tags=TAGS)
def callback(code: str, state: str, realmId: str) -> Response[dict[str, Any]]:
    """Public route (no JWT): Intuit redirects the browser here; the state names the tenant.

    A reconnect of the same tenant to the same company resumes: every invoice that waited for the
    connection is queued again. Every connect queues a first pull of each data type."""
    from fieldbill.quickbooks import tokens
    from fieldbill.workflows.inbound import reconnect

    connected = tokens.connect_callback(state, code, realmId)
    resumed = reconnect.after_connect(connected)
    body = {
        "connected": True,
        "tenant_id": connected.tenant_id,
        "realm_id": connected.realm_id,
        "reconnected": connected.resumed,
        **resumed,
    }
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


@router.get("/quickbooks/connection", summary="Connection status, settings, last syncs, errors", tags=TAGS)
def connection_status() -> dict[str, Any]:
    from fieldbill.quickbooks import tokens

    return status_view(tokens.get_connection(_tenant()))


@router.post("/quickbooks/disconnect", summary="Revoke the QuickBooks connection", tags=TAGS)
def disconnect() -> dict[str, Any]:
    """Tokens are revoked at Intuit and dropped here; settings, watermarks and QuickBooks ids are
    kept, so connecting the same company again resumes where it stopped."""
    from fieldbill.quickbooks import tokens

    tenant = _tenant()
    tokens.disconnect(tenant, actor=context.actor(router))
    return status_view(tokens.get_connection(tenant))


# ------------------------------------------------------------------------------ settings
@router.get("/quickbooks/accounts", summary="Income or expense accounts, live from QuickBooks", tags=TAGS)
def accounts(
    account_type: Annotated[AccountType, Query(alias="type", description="Income or Expense")],
) -> dict[str, Any]:
    return {"type": account_type, "items": live_accounts(_tenant(), account_type)}


def live_accounts(tenant: str, account_type: str) -> list[dict[str, Any]]:
    from fieldbill.quickbooks.client import QboClient, quote

    _connected(tenant)
    types = ", ".join(quote(t) for t in ACCOUNT_TYPES[account_type])
    rows = _live(lambda: list(QboClient(tenant).query_all("Account", f"AccountType IN ({types})")))
    return [
        {
            "id": str(r["Id"]),
            "name": r.get("Name"),
            "fully_qualified_name": r.get("FullyQualifiedName"),
            "account_type": r.get("AccountType"),
            "account_sub_type": r.get("AccountSubType"),
        }
        for r in rows
    ]


@router.put("/quickbooks/settings", summary="Choose the QuickBooks settings (accounts required)", tags=TAGS)
def put_settings(body: QboSettingsIn) -> dict[str, Any]:
    """Both default accounts are required and must be in the company's live lists: until they are,
    the answer is 422 naming the field and invoices are not synced. Saving complete settings queues
    again the invoices that waited for them."""
    from fieldbill.quickbooks import tokens
    from fieldbill.workflows.inbound import reconnect

    tenant = _tenant()
    _connected(tenant)
    for field, account_type in (("default_income_account", "Income"), ("default_expense_account", "Expense")):
        chosen = getattr(body, field)
        if not chosen:
            raise ValidationError(
                field,
                f"choose an {account_type.lower()} account (GET /quickbooks/accounts?type={account_type})",
            )
        if chosen not in {a["id"] for a in live_accounts(tenant, account_type)}:
            raise ValidationError(
                field, f"account {chosen!r} is not an active {account_type.lower()} account of the company"
            )
    before = tokens.save_settings(tenant, body.model_dump(), context.actor(router))
    if before:
        reconnect.resume_sync(tenant, "settings completed")
    return status_view(tokens.get_connection(tenant))


# ------------------------------------------------------------------------------ manual sync
@router.post(
    "/quickbooks/sync/<data_type>", summary="Pull one data type from QuickBooks now (202)", tags=TAGS
)
def sync_now(data_type: DataType) -> tuple[dict[str, Any], int]:
    from fieldbill.workflows.inbound import pulls

    return pulls.request_pull(_tenant(), data_type), 202
