"""The QuickBooks Online connection: connect (OAuth 2.0), status, settings, manual sync, disconnect.

| route                              | what                                                       |
|------------------------------------|------------------------------------------------------------|
| GET  /quickbooks/connect           | the Intuit consent URL + connect cookie (state bound to it)  |
| GET  /quickbooks/callback          | public: Intuit redirects here; checks state + cookie, stores |
|                                    | tokens, resumes sync; any failure a 400 HTML page          |
| GET  /quickbooks/connection        | status, realm, company, settings, last syncs, last errors |
| GET  /quickbooks/accounts?type=    | income or expense accounts, read live from QuickBooks      |
| PUT  /quickbooks/settings          | default accounts (required, checked live), numbering, tax  |
| POST /quickbooks/sync/{data_type}  | 202: pull customers, items or service_types now            |
| POST /quickbooks/disconnect        | revoke the tokens at Intuit and forget them                |

The QuickBooks modules (OAuth library, HTTP client, inbound) are imported inside the routes that
use them, so every other route of the API does not pay for them in its cold start.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fieldbill.api import context
from fieldbill.api import responses as out
from fieldbill.api.context import PUBLIC
from fieldbill.api.errors import responses
from fieldbill.api.views import plain
from fieldbill.domain.errors import Conflict, ValidationError
from fieldbill.observability import logger
from fieldbill.settings import get_settings

if TYPE_CHECKING:  # records come from store/ functions; the classes only type them
    from fieldbill.store.models import QboConnection

router = APIGatewayHttpRouter()
TAGS = ["quickbooks"]
OK = responses()
# The callback's 400 is a page for the person in the browser (any JSON error keeps the shared shape).
CALLBACK_RESPONSES = {
    **responses(200, "Connected"),
    # Declared here, not by the return annotation: response validation would refuse the HTML page.
    200: {"description": "Connected", "content": {"application/json": {"model": out.CallbackOut}}},
    400: {
        "description": "Nothing connected: an HTML page says why",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}},
        },
    },
}

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
    custom_txn_numbers: StrictBool = Field(
        default=False, description="QuickBooks leaves invoice numbers blank instead of numbering them"
    )
    automated_tax: StrictBool = Field(default=False, description="QuickBooks calculates the sales tax")
    # wt-credit: who emails invoices QuickBooks holds
    send_via: Literal["email", "quickbooks"] = Field(
        default="email",
        description="email: we email the invoice with our PDF; quickbooks: QuickBooks' own send emails it",
    )


def _tenant() -> str:
    return context.tenant_id(router)


def _connected(tenant: str) -> QboConnection:
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)

    record = tokens.get_connection(tenant)
    if record is None or record.status != "connected" or not record.realm_id:
        status = record.status if record else "disconnected"
        raise Conflict(f"QuickBooks is {status}: connect it first (GET /quickbooks/connect)")
    return record


def status_view(record: QboConnection | None) -> dict[str, Any]:
    from fieldbill.quickbooks import cdc, tokens  # lazy: cold start (module docstring)

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
# The connect cookie binds the consent to the browser that asked for it (docs/quickbooks-
# connection.md): set on the bearer-authenticated GET /quickbooks/connect, sent back by the browser
# only to the callback path, on the top-level redirect from Intuit (SameSite=Lax allows that one).
CONNECT_COOKIE = "fieldbill_qbo_connect"


def _connect_cookie(value: str, max_age: int) -> Cookie:
    """Scoped to the callback's own path and scheme, as the redirect URI registered at Intuit says."""
    redirect = urlsplit(get_settings().qbo_redirect_uri)
    return Cookie(
        name=CONNECT_COOKIE,
        value=value,
        path=redirect.path or "/quickbooks/callback",
        secure=redirect.scheme == "https",
        http_only=True,
        same_site=SameSite.LAX_MODE,
        max_age=max_age,
    )


def _cookie_sent(name: str) -> str | None:
    for pair in router.current_event.cookies or []:
        key, _, value = pair.partition("=")
        if key.strip() == name:
            return value.strip()
    return None


@router.get(
    "/quickbooks/connect", summary="The QuickBooks consent URL for this tenant", tags=TAGS, responses=OK
)
def connect() -> Response[out.ConnectOut]:
    """The consent URL, and the connect cookie that binds the consent to this browser: call it
    with credentials (fetch `credentials: "include"`) so the browser keeps the cookie."""
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)

    started = tokens.start_connect(_tenant(), context.actor(router))
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=out.ConnectOut(authorization_url=started.authorization_url),
        headers={"Cache-Control": "no-store"},
        cookies=[_connect_cookie(started.session, started.max_age)],
    )


@router.get(
    "/quickbooks/callback",
    summary="OAuth redirect from Intuit (public)",
    tags=TAGS,
    # Any: the 400 page is HTML, which response validation would refuse; the 200 is CallbackOut.
    responses=CALLBACK_RESPONSES,
    security=PUBLIC,
)
def callback(
    code: str | None = None,
    state: str | None = None,
    realmId: str | None = None,
    error: Annotated[str | None, Query(description="set by Intuit when the consent failed")] = None,
    error_description: Annotated[str | None, Query(description="Intuit's words for the error")] = None,
) -> Response[Any]:
    """Public route (no JWT): Intuit redirects the browser here. It must bring the connect cookie
    of the GET /quickbooks/connect that issued the state; any failure is a 400 HTML page.

    A reconnect of the same tenant to the same company resumes: every invoice that waited for the
    connection is queued again. Every connect queues a first pull of each data type."""
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)
    from fieldbill.workflows.inbound import reconnect  # lazy: cold start (module docstring)

    try:
        if error:
            declined = error == "access_denied"
            raise tokens.ConnectRefused(
                f"Intuit answered error={error[:64]!r} ({(error_description or '')[:200]})",
                "You declined the connection at QuickBooks."
                if declined
                else "QuickBooks could not complete the connection.",
            )
        if not (code and state and realmId):
            raise tokens.ConnectRefused("callback without code, state or realmId", tokens.NOT_OURS)
        connected = tokens.connect_callback(state, code, realmId, session=_cookie_sent(CONNECT_COOKIE))
    except tokens.ConnectRefused as exc:
        return _refused(exc)
    resumed = reconnect.after_connect(connected)
    body = out.CallbackOut(
        connected=True,
        tenant_id=connected.tenant_id,
        realm_id=connected.realm_id,
        reconnected=connected.resumed,
        requeued_invoices=int(resumed["requeued_invoices"]),
        pushed_records=int(resumed.get("pushed_records", 0)),
    )
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Cache-Control": "no-store"},
        cookies=[_connect_cookie("", 0)],  # spent: the browser forgets it
    )


_REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QuickBooks was not connected</title></head>
<body><h1>QuickBooks was not connected</h1>
<p>{message}</p>
<p>Nothing was changed. Go back to fieldbill and choose <strong>Connect to QuickBooks</strong> again.</p>
<p>If this keeps happening, tell support this reference: <br>Reference: <code>{reference}</code></p>
</body></html>
"""


def _refused(exc: Exception) -> Response[Any]:
    """The 400 page of a refused callback; the log line carries the same reference."""
    reference = router.current_event.request_context.request_id or "unknown"
    reason = getattr(exc, "reason", str(exc))
    logger.warning("QuickBooks callback refused", extra={"request_id": reference, "reason": reason})
    message = getattr(exc, "user_message", "The connection could not be completed.")
    return Response(
        status_code=400,
        content_type=content_types.TEXT_HTML,
        body=_REFUSED_PAGE.format(message=html.escape(message), reference=html.escape(reference)),
        headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"},
    )


@router.get(
    "/quickbooks/connection",
    summary="Connection status, settings, last syncs, errors",
    tags=TAGS,
    responses=OK,
)
def connection_status() -> out.ConnectionOut:
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)

    return out.ConnectionOut.model_validate(status_view(tokens.get_connection(_tenant())))


@router.post("/quickbooks/disconnect", summary="Revoke the QuickBooks connection", tags=TAGS, responses=OK)
def disconnect() -> out.ConnectionOut:
    """Tokens are revoked at Intuit and dropped here; settings, watermarks and QuickBooks ids are
    kept, so connecting the same company again resumes where it stopped. Already disconnected:
    409 invalid_transition, nothing written."""
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)

    tenant = _tenant()
    tokens.disconnect(tenant, actor=context.actor(router))
    return out.ConnectionOut.model_validate(status_view(tokens.get_connection(tenant)))


# ------------------------------------------------------------------------------ settings
@router.get(
    "/quickbooks/accounts",
    summary="Income or expense accounts, live from QuickBooks",
    tags=TAGS,
    responses=OK,
)
def accounts(
    account_type: Annotated[AccountType, Query(alias="type", description="Income or Expense")],
) -> out.AccountsOut:
    return out.AccountsOut.model_validate(
        {"type": account_type, "items": live_accounts(_tenant(), account_type)}
    )


def live_accounts(tenant: str, account_type: str) -> list[dict[str, Any]]:
    from fieldbill.quickbooks.client import QboClient, quote  # lazy: cold start (module docstring)

    _connected(tenant)
    types = ", ".join(quote(t) for t in ACCOUNT_TYPES[account_type])
    # QuickBooks' failures (reconnect, 429, down) are answered by the table in fieldbill.api.errors.
    rows = list(QboClient(tenant).query_all("Account", f"AccountType IN ({types})"))
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


@router.put(
    "/quickbooks/settings",
    summary="Choose the QuickBooks settings (accounts required)",
    tags=TAGS,
    responses=OK,
)
def put_settings(body: QboSettingsIn) -> out.ConnectionOut:
    """Both default accounts are required and must be in the company's live lists: until they are,
    the answer is 422 naming the field and invoices are not synced. Saving complete settings queues
    again the invoices that waited for them."""
    from fieldbill.quickbooks import tokens  # lazy: cold start (module docstring)
    from fieldbill.workflows.inbound import reconnect  # lazy: cold start (module docstring)

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
    return out.ConnectionOut.model_validate(status_view(tokens.get_connection(tenant)))


# ------------------------------------------------------------------------------ manual sync
@router.post(
    "/quickbooks/sync/<data_type>",
    summary="Pull one data type from QuickBooks now (202)",
    tags=TAGS,
    status_code=202,
    responses=responses(202, "Accepted"),
)
def sync_now(data_type: DataType) -> out.PullAccepted:
    from fieldbill.workflows.inbound import pulls  # lazy: cold start (module docstring)

    return out.PullAccepted.model_validate(pulls.request_pull(_tenant(), data_type))
