"""QuickBooks Online Accounting API client: one requests Session, the limiter around every call,
minorversion on every call, a deterministic requestid on every write, every failure classified.

Money travels as Decimal both ways: requests are serialised with exact decimal literals and
responses are parsed with parse_float=Decimal, so no amount ever passes through a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import requests
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, Timeout
from urllib3.exceptions import NewConnectionError

from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.errors import (
    AuthExpired,
    AuthorizationFailed,
    QboError,
    Throttled,
    Transient,
    batch_item_error,
    classify_response,
    error_from_faults,
    faults_from_dict,
)

# The ids live in ids.py (pure) so that callers which only name a requestid do not load requests.
from fieldbill.quickbooks.ids import BATCH_ID_MAX as BATCH_ID_MAX
from fieldbill.quickbooks.ids import BATCH_REQUEST_ID_MAX as BATCH_REQUEST_ID_MAX
from fieldbill.quickbooks.ids import REQUEST_ID_MAX as REQUEST_ID_MAX
from fieldbill.quickbooks.ids import batch_item_id as batch_item_id
from fieldbill.quickbooks.ids import batch_request_id as batch_request_id
from fieldbill.quickbooks.ids import request_id as request_id
from fieldbill.quickbooks.limiter import RateLimiter, default_limiter
from fieldbill.settings import get_settings

if TYPE_CHECKING:
    from fieldbill.settings.model import Settings

BATCH_MAX_OPERATIONS = 30
CONNECT_TIMEOUT_SECONDS = 5.0

# Query values are single-quoted; QuickBooks escapes a quote inside with a backslash.
_QUOTE = re.compile(r"(['\\])")


def quote(value: str) -> str:
    return "'" + _QUOTE.sub(r"\\\1", value) + "'"


# ------------------------------------------------------------------------------------ JSON
_DECIMAL_MARK = "\u0000dec:"
_DECIMAL_TOKEN = re.compile('"\\\\u0000dec:(-?[0-9.]+(?:E[+-]?[0-9]+)?)"')


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + format(value, "f")
    if isinstance(value, Mapping):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_decimals(v) for v in value]
    if isinstance(value, float):
        raise TypeError("money must be Decimal, never float")
    return value


def dumps(body: Any) -> str:
    """JSON with every Decimal written as an exact number literal."""
    return _DECIMAL_TOKEN.sub(r"\1", json.dumps(_mark_decimals(body), separators=(",", ":")))


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


# ------------------------------------------------------------------------------------ client
@lru_cache(maxsize=1)
def _session() -> requests.Session:
    session = requests.Session()
    session.headers.update({"Accept": "application/json", "User-Agent": "fieldbill-qbo/1"})
    return session


TokenProvider = Callable[[str | None], tuple[str, str]]


class QboClient:
    """Calls for one tenant's QuickBooks company. `token_provider(rejected)` returns
    (access token, realm id); `rejected` is a token QuickBooks just refused (refresh it)."""

    def __init__(
        self,
        tenant_id: str,
        *,
        token_provider: TokenProvider | None = None,
        limiter: RateLimiter | None = None,
        settings: Settings | None = None,
        session: requests.Session | None = None,
        use_limiter: bool = True,
    ) -> None:
        self.tenant_id = tenant_id
        self.settings = settings or get_settings()
        self.session = session or _session()
        self._limiter = limiter
        self.use_limiter = use_limiter
        if token_provider is None:
            from fieldbill.quickbooks import tokens

            def token_provider(rejected: str | None) -> tuple[str, str]:
                return tokens.access_token(tenant_id, rejected=rejected)

        self._tokens = token_provider
        self.realm_id: str | None = None
        self.calls = 0
        self.spare = False  # calls are spare traffic (RateLimiter: a reserve left, own cool-down)

    @contextmanager
    def spare_budget(self) -> Iterator[None]:
        """Calls made inside are optional traffic for the limiter (see limiter.py)."""
        previous, self.spare = self.spare, True
        try:
            yield
        finally:
            self.spare = previous

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter or default_limiter()

    # ------------------------------------------------------------------ entity operations
    def create(self, entity: str, obj: Mapping[str, Any], requestid: str) -> dict[str, Any]:
        answer = self._call("POST", entity.lower(), body=obj, params={"requestid": requestid}, write=True)
        return dict(answer[entity])

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{entity.lower()}/{entity_id}")[entity])

    def update(
        self, entity: str, obj: Mapping[str, Any], requestid: str, *, sparse: bool = True
    ) -> dict[str, Any]:
        """Needs obj["Id"] and the current obj["SyncToken"] (else StaleObject)."""
        body = {**obj, "sparse": sparse}
        answer = self._call("POST", entity.lower(), body=body, params={"requestid": requestid}, write=True)
        return dict(answer[entity])

    def void(self, entity: str, entity_id: str, sync_token: str, requestid: str) -> dict[str, Any]:
        return self._operation("void", entity, entity_id, sync_token, requestid)

    def delete(self, entity: str, entity_id: str, sync_token: str, requestid: str) -> dict[str, Any]:
        return self._operation("delete", entity, entity_id, sync_token, requestid)

    def _operation(
        self, operation: str, entity: str, entity_id: str, sync_token: str, requestid: str
    ) -> dict[str, Any]:
        answer = self._call(
            "POST",
            entity.lower(),
            body={"Id": entity_id, "SyncToken": sync_token},
            params={"operation": operation, "requestid": requestid},
            write=True,
        )
        return dict(answer[entity])

    def send(self, entity: str, entity_id: str, send_to: str | None, requestid: str) -> dict[str, Any]:
        """QuickBooks emails the form (its send endpoint); `send_to` replaces its BillEmail."""
        params = {"requestid": requestid, **({"sendTo": send_to} if send_to else {})}
        answer = self._call("POST", f"{entity.lower()}/{entity_id}/send", params=params, write=True)
        return dict(answer[entity])

    def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A read whose whole answer is needed (a CDC answer, the server `time` of a query)."""
        return self._call("GET", path, params=params)

    def query(
        self, entity: str, where: str | None = None, *, max_results: int = 100, start_position: int = 1
    ) -> list[dict[str, Any]]:
        text = f"select * from {entity}"
        if where:
            text += f" where {where}"
        text += f" startposition {start_position} maxresults {max_results}"
        answer = self._call("GET", "query", params={"query": text})
        return [dict(r) for r in answer.get("QueryResponse", {}).get(entity, [])]

    def query_all(self, entity: str, where: str | None = None, page: int = 1000) -> Iterator[dict[str, Any]]:
        start = 1
        while True:
            rows = self.query(entity, where, max_results=page, start_position=start)
            yield from rows
            if len(rows) < page:
                return
            start += page

    def batch(
        self, operations: Sequence[Mapping[str, Any]], requestid: str, *, max_wait: float | None = None
    ) -> dict[str, dict[str, Any] | QboError]:
        """Each operation is a BatchItemRequest with its bId (≤ 30). Returns bId -> the entity
        answered (dict) or the error of that item. A failure of the whole call raises.
        `max_wait`: real seconds the limiter may wait here for a batch slot (else a local Throttled)."""
        if len(operations) > BATCH_MAX_OPERATIONS:
            raise ValueError(f"at most {BATCH_MAX_OPERATIONS} operations in one batch")
        if len(requestid) > BATCH_REQUEST_ID_MAX:
            raise ValueError("a batch requestid has at most 36 characters")
        answer = self._call(
            "POST",
            "batch",
            body={"BatchItemRequest": list(operations)},
            params={"requestid": requestid},
            write=True,
            batch=True,
            max_wait=max_wait,
        )
        out: dict[str, dict[str, Any] | QboError] = {}
        for item in answer.get("BatchItemResponse", []):
            bid = str(item.get("bId"))
            error = batch_item_error(item)
            if error is not None:
                out[bid] = error
                continue
            payload = {k: v for k, v in item.items() if k not in ("bId", "time")}
            out[bid] = dict(next(iter(payload.values()))) if payload else {}
        return out

    # ------------------------------------------------------------------ transport
    def _permit(self, realm: str, batch: bool, max_wait: float | None = None) -> AbstractContextManager[Any]:
        if not self.use_limiter:
            return nullcontext()
        return self.limiter.permit(realm, batch=batch, max_wait=max_wait, spare=self.spare and not batch)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        write: bool = False,
        batch: bool = False,
        max_wait: float | None = None,
    ) -> dict[str, Any]:
        rejected: str | None = None
        for attempt in (1, 2):
            token, realm = self._tokens(rejected)
            self.realm_id = realm
            try:
                return self._send(method, path, token, realm, body, params, write, batch, max_wait)
            except AuthorizationFailed:
                raise  # 403/3100: a refresh cannot authorise the app for the company; a reconnect can
            except AuthExpired:
                if attempt == 2:
                    raise
                rejected = token  # refresh once (another worker may already have) and retry
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        realm: str,
        body: Any,
        params: Mapping[str, str] | None,
        write: bool,
        batch: bool,
        max_wait: float | None = None,
    ) -> dict[str, Any]:
        url = f"{self.settings.qbo_api_base.rstrip('/')}/company/{realm}/{path}"
        query = {**(params or {}), "minorversion": str(self.settings.qbo_minor_version)}
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = dumps(body).encode()
            headers["Content-Type"] = "application/json"
        timeout = (CONNECT_TIMEOUT_SECONDS, float(self.settings.qbo_http_timeout_seconds))
        with self._permit(realm, batch, max_wait):
            self.calls += 1
            try:
                response = self.session.request(
                    method, url, params=query, data=data, headers=headers, timeout=timeout
                )
            except ConnectTimeout as exc:
                raise Transient(f"connect time-out: {type(exc).__name__}") from None
            except Timeout as exc:
                raise Transient(f"time-out: {type(exc).__name__}", maybe_committed=write) from None
            except RequestsConnectionError as exc:
                never_sent = _never_sent(exc)
                raise Transient(
                    f"connection error: {type(exc).__name__}", maybe_committed=write and not never_sent
                ) from None
        if response.status_code >= 300:
            error = classify_response(response.status_code, response.content, response.headers)
            if isinstance(error, Throttled):
                qmetrics.count("ThrottledCalls", realm)
                if self.use_limiter:
                    # Every worker holds off the realm; the cool-down applied is what the caller waits.
                    error.retry_after_seconds = self.limiter.note_throttled(
                        realm,
                        error.retry_after_seconds if error.hinted else None,
                        spare=self.spare and not batch,
                    )
            raise error
        try:
            answer = loads(response.content)
        except ValueError:
            raise Transient("QuickBooks answered a body that is not JSON", maybe_committed=write) from None
        if isinstance(answer, dict) and ("Fault" in answer or "fault" in answer):
            faults, _ = faults_from_dict(answer)
            raise error_from_faults(
                faults, status=response.status_code, intuit_tid=response.headers.get("intuit_tid")
            )
        return dict(answer)


def _never_sent(exc: BaseException) -> bool:
    """True when the connection failed before the request could be written (nothing committed)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and id(reason) not in seen:
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return False
