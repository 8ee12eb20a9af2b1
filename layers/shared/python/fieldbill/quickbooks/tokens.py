"""QuickBooks OAuth: connect a company, keep its tokens fresh, disconnect it.

Tokens live on the tenant's QboConnection record (read and written by fieldbill.store.connections),
encrypted here with KMS (key TOKEN_KEY_ID, the tenant id as encryption context so a ciphertext
cannot be replayed onto another tenant). App credentials come from Secrets Manager through
Powertools parameters (cached).

A connect is bound to the browser that started it: start_connect() signs a short-lived state
naming the tenant, the user and a nonce, plus the digest of a session secret that the API hands
to the browser as an HttpOnly cookie; the callback needs that cookie, and consumes the state
(single use). docs/quickbooks-connection.md says why.

QuickBooks may rotate the refresh token on every refresh, and a refresh with a superseded token
ends in invalid_grant (the company must reconnect). So exactly one worker refreshes at a time:
it takes a short lease on the record (conditional on token_version), refreshes, and stores the new
pair with token_version + 1 in one conditional write. The others wait for the lease and re-read.
Nothing here logs a token, a code, a state, a session secret or an app secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
import requests
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from fieldbill.domain.errors import Conflict, InvalidTransition
from fieldbill.domain.states import CONNECTION_MACHINE, ConnectionStatus
from fieldbill.observability import logger
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.errors import NeedsReconnect, Transient
from fieldbill.settings import get_settings
from fieldbill.store import connections
from fieldbill.store.models import QboConnection

if TYPE_CHECKING:
    from intuitlib.client import AuthClient

STATE_TTL_SECONDS = 600  # a consent takes a minute or two; the connect cookie lives as long
REFRESH_MARGIN_SECONDS = 300  # refresh when less than this is left on the access token
LEASE_SECONDS = 45.0  # longer than a refresh call can take (HTTP time-out below)
OAUTH_TIMEOUT_SECONDS = 20.0
ACTOR = "quickbooks"
CONNECTED_INDEX_KEY = connections.CONNECTED_INDEX_KEY  # re-exported for the schedules' readers
# Settings a company must choose before anything is synced (QboSettings.from_map reads these keys).
REQUIRED_SETTINGS = ("default_income_account", "default_expense_account")

# What the person who lands on a refused callback reads (the log line says more).
NOT_OURS = "This link is not a QuickBooks connection that fieldbill started, or it was altered."
EXPIRED = "The connection request expired: it is valid for 10 minutes."
USED = "This connection request was already used, or a newer one replaced it."
OTHER_BROWSER = (
    "The connection was finished in another browser (or session) than the one that started it. "
    "For your security, it must be started and finished in the same browser."
)
OTHER_TENANT = "This QuickBooks company is already connected to another fieldbill account."
CODE_REFUSED = "QuickBooks did not accept the authorization."
UNREACHABLE = "QuickBooks could not be reached to finish the connection."


class ConnectRefused(Exception):
    """A callback that connects nothing. `reason` is for the log; `user_message` for the page."""

    def __init__(self, reason: str, user_message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_message = user_message


class OAuthStateInvalid(ConnectRefused):
    """The state is not ours, expired, already used or superseded, or not this browser's."""


@dataclass(frozen=True)
class ConnectStart:
    """A started connect: the consent URL, and the session secret for the browser's connect
    cookie (max_age seconds; only its digest is in the state, so the URL does not reveal it)."""

    authorization_url: str
    session: str
    max_age: int


@dataclass(frozen=True)
class Connected:
    """The outcome of an OAuth callback. `resumed`: the tenant reconnected to the company it was
    connected to before (its pending work can go on); `realm_changed`: it connected another one."""

    tenant_id: str
    realm_id: str
    resumed: bool
    realm_changed: bool


def missing_settings(settings: Any) -> list[str]:
    """The required settings not chosen yet (empty: the connection may sync)."""
    raw = settings.as_dict() if hasattr(settings, "as_dict") else dict(settings or {})
    return [name for name in REQUIRED_SETTINGS if not raw.get(name)]


@dataclass(frozen=True)
class AccessToken:
    token: str
    realm_id: str
    version: int


# ------------------------------------------------------------------------------ secrets and KMS
def app_credentials() -> dict[str, str]:
    # Deferred: Powertools parameters loads its providers; only a token refresh or connect needs it.
    from aws_lambda_powertools.utilities import parameters

    name = get_settings().qbo_app_secret_name
    value = parameters.get_secret(name, transform="json", max_age=300)
    if not isinstance(value, dict) or not value.get("client_id") or not value.get("client_secret"):
        raise RuntimeError(f"secret {name!r} holds no QuickBooks client_id/client_secret")
    return {str(k): str(v) for k, v in value.items()}


@lru_cache(maxsize=1)
def _kms() -> Any:
    return boto3.client("kms")


def encrypt(tenant_id: str, plaintext: str) -> str:
    blob = _kms().encrypt(
        KeyId=get_settings().token_key_id,
        Plaintext=plaintext.encode(),
        EncryptionContext={"tenant_id": tenant_id},
    )["CiphertextBlob"]
    return base64.b64encode(blob).decode()


def decrypt(tenant_id: str, ciphertext: str) -> str:
    out = _kms().decrypt(
        CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext={"tenant_id": tenant_id}
    )["Plaintext"]
    return bytes(out).decode()


# ------------------------------------------------------------------------------ the OAuth client
@lru_cache(maxsize=4)
def _discovery(environment: str) -> dict[str, Any]:
    from intuitlib.config import DISCOVERY_URL

    url = DISCOVERY_URL.get(environment.lower(), environment)
    if environment.lower() == "prod":
        url = DISCOVERY_URL["production"]
    response = requests.get(url, timeout=OAUTH_TIMEOUT_SECONDS)
    response.raise_for_status()
    return dict(response.json())


@lru_cache(maxsize=1)
def _auth_client_class() -> type[AuthClient]:
    # Deferred: intuitlib.client imports jwt and cryptography, which only an OAuth call needs.
    from intuitlib.client import AuthClient

    class _AuthClient(AuthClient):
        """intuitlib's AuthClient with a cached discovery document and a time-out on every call.

        The library fetches the discovery document in its constructor and sends requests without a
        time-out; both matter inside a Lambda. Pinned to intuit-oauth 1.2.6's attribute names.
        """

        def __init__(self, client_id: str, client_secret: str, redirect_uri: str, environment: str) -> None:
            requests.Session.__init__(self)
            doc = _discovery(environment)
            self.client_id = client_id
            self.client_secret = client_secret
            self.redirect_uri = redirect_uri
            self.environment = environment
            self.state_token = None
            self.auth_endpoint = doc["authorization_endpoint"]
            self.token_endpoint = doc["token_endpoint"]
            self.revoke_endpoint = doc["revocation_endpoint"]
            self.issuer_uri = doc.get("issuer")
            self.jwks_uri = doc.get("jwks_uri")
            self.user_info_url = doc.get("userinfo_endpoint")
            self.realm_id = None
            self.access_token = None
            self.expires_in = None
            self.refresh_token = None
            self.x_refresh_token_expires_in = None
            self.id_token = None

        def request(
            self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
        ) -> requests.Response:  # type: ignore[override]
            kwargs.setdefault("timeout", OAUTH_TIMEOUT_SECONDS)
            return super().request(method, url, *args, **kwargs)

    return _AuthClient


def auth_client() -> AuthClient:
    creds = app_credentials()
    settings = get_settings()
    return _auth_client_class()(
        creds["client_id"], creds["client_secret"], settings.qbo_redirect_uri, settings.qbo_environment
    )


def _real_seconds(qbo_seconds: float) -> float:
    """QuickBooks durations (token lifetimes) in real seconds: equal unless time is scaled locally."""
    return qbo_seconds * float(get_settings().qbo_seconds_per_minute) / 60.0


def _expires_at(expires_in: Any) -> int:
    return int(time.time() + _real_seconds(float(expires_in or 3600)))


def _margin() -> float:
    return _real_seconds(REFRESH_MARGIN_SECONDS)


def _is_invalid_grant(exc: AuthClientError) -> bool:
    return exc.status_code in (400, 401) and b"invalid_grant" in (exc.content or b"")


# ------------------------------------------------------------------------------ records
def get_connection(tenant_id: str, consistent: bool = True) -> QboConnection | None:
    return connections.get(tenant_id, consistent)


def tenant_for_realm(realm_id: str) -> str | None:
    """The tenant connected to a QuickBooks company (webhooks and pulls name the realm only)."""
    return connections.tenant_for_realm(realm_id)


# ------------------------------------------------------------------------------ the connect state
# state = base64url(JSON payload) "." base64url(HMAC-SHA256). The payload names the tenant, the
# user who asked (the JWT's actor), a nonce, the digest of the browser's connect cookie ("s",
# absent for in-process connects) and the expiry. The signature makes any edit evident before a
# read; the nonce's digest on the record makes the state single use (the callback consumes it).
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _state_key() -> bytes:
    # Derived from the app's client secret: no other key to provision or rotate; rotating the
    # secret only invalidates connects pending at that moment (10 minutes at most).
    secret = app_credentials()["client_secret"].encode()
    return hmac.new(secret, b"fieldbill/quickbooks/oauth-state/v1", hashlib.sha256).digest()


def _mac(body: str) -> str:
    return _b64(hmac.new(_state_key(), body.encode(), hashlib.sha256).digest())


def _sign(payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(body)}"


def _verified(state: str) -> dict[str, Any]:
    """The state's payload if we signed it and it has not expired; else OAuthStateInvalid."""
    body, dot, mac = state.partition(".")
    if not body or not dot or not hmac.compare_digest(mac.encode(), _mac(body).encode()):
        raise OAuthStateInvalid("state not signed by us", NOT_OURS)
    payload = json.loads(_unb64(body))
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in ("t", "u", "n")):
        raise OAuthStateInvalid("state payload malformed", NOT_OURS)
    if not isinstance(payload.get("e"), int) or payload["e"] < time.time():
        raise OAuthStateInvalid("state expired", EXPIRED)
    return payload


def _pending(nonce: str, expires: int) -> str:
    """What the record keeps of a pending connect (never the nonce itself)."""
    return f"{_digest(nonce)}:{expires}"


# ------------------------------------------------------------------------------ connect
def start_connect(tenant_id: str, actor: str, scopes: list[Scopes] | None = None) -> ConnectStart:
    """A connect started by a signed-in user in a browser: the Intuit consent URL, and the session
    secret the caller hands to that browser as the connect cookie. Only that browser can complete
    the consent (connect_callback). A new connect supersedes the tenant's pending one."""
    session = secrets.token_urlsafe(32)
    url = _authorization_url(tenant_id, actor, scopes, session_digest=_digest(session))
    return ConnectStart(authorization_url=url, session=session, max_age=STATE_TTL_SECONDS)


def authorization_url(tenant_id: str, scopes: list[Scopes] | None = None) -> str:
    """A consent URL whose state is bound to no browser session, for in-process callers (the
    local sync benchmark, integration tests) that finish with complete_connection(). The public
    callback refuses such a state."""
    return _authorization_url(tenant_id, ACTOR, scopes, session_digest=None)


def _authorization_url(
    tenant_id: str, actor: str, scopes: list[Scopes] | None, session_digest: str | None
) -> str:
    record = connections.ensure(tenant_id, ACTOR)
    nonce = secrets.token_urlsafe(24)
    expires = int(time.time()) + STATE_TTL_SECONDS
    connections.save_oauth_state(record, _pending(nonce, expires))
    payload: dict[str, Any] = {"t": tenant_id, "u": actor, "n": nonce, "e": expires}
    if session_digest is not None:
        payload["s"] = session_digest
    return auth_client().get_authorization_url(scopes or [Scopes.ACCOUNTING], state_token=_sign(payload))


def complete_connection(state: str, code: str, realm_id: str) -> str:
    """In-process completion of an authorization_url() state. Returns the tenant id."""
    return _complete(state, code, realm_id, session=None, browser=False).tenant_id


def connect_callback(state: str, code: str, realm_id: str, *, session: str | None) -> Connected:
    """The browser's OAuth callback. `session` is the connect cookie the browser brought (None:
    none): it must be the one start_connect gave the browser that started this connect."""
    return _complete(state, code, realm_id, session=session, browser=True)


def _complete(state: str, code: str, realm_id: str, *, session: str | None, browser: bool) -> Connected:
    """Check the state (signature, expiry, browser session, single use), exchange the code, store
    the tokens, list the connection for the schedules. A reconnect to the same company keeps
    settings and watermarks; a connection to another company starts both afresh."""
    payload = _verified(state)
    bound = payload.get("s")
    if browser and not isinstance(bound, str):
        raise OAuthStateInvalid("state not bound to a browser session", NOT_OURS)
    if browser and not session:
        raise OAuthStateInvalid(
            "no connect cookie: consent completed in another browser session", OTHER_BROWSER
        )
    if browser and not hmac.compare_digest(str(bound), _digest(str(session))):
        raise OAuthStateInvalid("connect cookie of another connect", OTHER_BROWSER)
    if not browser and bound is not None:
        raise OAuthStateInvalid("browser-bound state completed without its browser", OTHER_BROWSER)
    tenant_id, actor = str(payload["t"]), str(payload["u"])
    pending = _pending(str(payload["n"]), int(payload["e"]))
    record = connections.get(tenant_id)
    if record is None or not record.oauth_state or not hmac.compare_digest(record.oauth_state, pending):
        raise OAuthStateInvalid("state already used or superseded by a newer connect", USED)
    other = tenant_for_realm(realm_id)
    if other is not None and other != tenant_id:
        raise OAuthStateInvalid("the QuickBooks company is connected to another tenant", OTHER_TENANT)
    client = auth_client()
    try:
        client.get_bearer_token(code, realm_id=realm_id)
    except AuthClientError as exc:
        logger.warning(
            "QuickBooks code exchange refused",
            extra={"status": exc.status_code, "intuit_tid": exc.intuit_tid},
        )
        raise ConnectRefused("authorization code refused", CODE_REFUSED) from None
    except requests.RequestException as exc:
        raise ConnectRefused(f"token endpoint unreachable ({type(exc).__name__})", UNREACHABLE) from None
    realm_changed = bool(record.realm_id) and record.realm_id != realm_id
    resumed = bool(record.realm_id) and not realm_changed
    try:
        connections.connect(
            record,
            realm_id=realm_id,
            tokens=connections.NewTokens(
                encrypt(tenant_id, str(client.access_token)),
                encrypt(tenant_id, str(client.refresh_token)),
                _expires_at(client.expires_in),
            ),
            oauth_state=pending,
            actor=actor,
            reason=f"realm {realm_id}" + (" (reconnect)" if resumed else ""),
            new_company=realm_changed,
        )
    except Conflict:
        raise OAuthStateInvalid("state already used", USED) from None
    _cache.pop(tenant_id, None)
    logger.info(
        "QuickBooks connected",
        extra={
            "tenant_id": tenant_id,
            "realm_id": realm_id,
            "actor": actor,
            "resumed": resumed,
            "realm_changed": realm_changed,
        },
    )
    return Connected(tenant_id, realm_id, resumed, realm_changed)


def record_company_name(tenant_id: str, name: str | None) -> None:
    if name:
        connections.set_company_name(tenant_id, name)


def save_settings(tenant_id: str, chosen: dict[str, Any], actor: str) -> list[str]:
    """Merge `chosen` into the connection's settings (the caller has checked them against the
    company's live lists). Returns the required settings that were missing before: when that is
    not empty, the caller resumes the sync that waited for them."""
    record = connections.get(tenant_id)
    if record is None:
        raise NeedsReconnect(f"tenant {tenant_id} has no QuickBooks connection")
    before = missing_settings(record.settings)
    connections.save_settings(
        record, {**(record.settings.as_dict() if record.settings else {}), **chosen}, actor
    )
    return before


# ------------------------------------------------------------------------------ access tokens
# tenant -> (token, realm, version, expires_at): saves a read and a KMS call per API call.
_cache: dict[str, tuple[AccessToken, float]] = {}


def clear_cache() -> None:
    _cache.clear()


def _usable(record: QboConnection, now: float) -> bool:
    return bool(record.access_token_enc) and (record.access_expires_at or 0) - now > _margin()


def _connected(record: QboConnection | None, tenant_id: str) -> QboConnection:
    if record is None or record.status != "connected" or not record.realm_id:
        status = record.status if record else "missing"
        raise NeedsReconnect(f"QuickBooks connection of tenant {tenant_id} is {status}")
    return record


def access_token(
    tenant_id: str, *, rejected: str | None = None, sleep: Callable[[float], None] = time.sleep
) -> tuple[str, str]:
    """(access token, realm id), refreshed first when it expires within REFRESH_MARGIN_SECONDS.

    `rejected` is a token QuickBooks just refused (3200): if the stored token is still that one,
    it is refreshed now; if another worker already replaced it, the new one is returned.
    """
    got = current_token(tenant_id, rejected=rejected, sleep=sleep)
    return got.token, got.realm_id


def current_token(
    tenant_id: str, *, rejected: str | None = None, sleep: Callable[[float], None] = time.sleep
) -> AccessToken:
    now = time.time()
    cached = _cache.get(tenant_id)
    if cached is not None and rejected is None:
        hit, expires_at = cached
        if expires_at - now > _margin():
            return hit
    deadline = now + LEASE_SECONDS + 5
    while True:
        record = _connected(get_connection(tenant_id), tenant_id)
        now = time.time()
        token = decrypt(tenant_id, record.access_token_enc) if record.access_token_enc else None
        if token is not None and _usable(record, now) and (rejected is None or token != rejected):
            got = AccessToken(token, str(record.realm_id), int(record.token_version))
            _cache[tenant_id] = (got, float(record.access_expires_at or 0))
            return got
        lease_free = (record.refresh_lease_until or 0) <= now
        if lease_free and _take_lease(record, now):
            return _refresh(record)
        if time.time() > deadline:
            raise Transient("QuickBooks token refresh by another worker did not finish")
        sleep(0.1)  # another worker is refreshing: wait for its write, then re-read


def _take_lease(record: QboConnection, now: float) -> bool:
    return connections.take_refresh_lease(record, now, now + LEASE_SECONDS)


def _refresh(record: QboConnection) -> AccessToken:
    tenant_id = record.tenant_id
    version = int(record.token_version)
    client = auth_client()
    try:
        client.refresh(refresh_token=decrypt(tenant_id, str(record.refresh_token_enc)))
    except AuthClientError as exc:
        if _is_invalid_grant(exc):
            mark_needs_reconnect(tenant_id, "refresh token refused (invalid_grant)", version=version)
            raise NeedsReconnect("QuickBooks refused the refresh token: the company must reconnect") from None
        connections.release_lease(record)
        raise Transient(f"QuickBooks token refresh failed with HTTP {exc.status_code}") from None
    except requests.RequestException:
        connections.release_lease(record)
        raise Transient("QuickBooks token endpoint unreachable") from None
    expires_at = _expires_at(client.expires_in)
    rotated = connections.NewTokens(
        encrypt(tenant_id, str(client.access_token)),
        encrypt(tenant_id, str(client.refresh_token)),
        expires_at,
    )
    if not connections.store_rotated_tokens(record, version, rotated):
        # Cannot happen while leases work: log loudly, the next refresh tells if the pair was lost.
        logger.error("rotated QuickBooks tokens could not be stored", extra={"tenant_id": tenant_id})
        raise Transient("token rotation lost a race")
    got = AccessToken(str(client.access_token), str(record.realm_id), version + 1)
    _cache[tenant_id] = (got, float(expires_at))
    logger.info("QuickBooks token refreshed", extra={"tenant_id": tenant_id, "realm_id": record.realm_id})
    return got


def mark_needs_reconnect(tenant_id: str, reason: str, *, version: int | None = None) -> None:
    """Status needs_reconnect (a person must connect again); metric RealmNeedsReconnect. Nothing
    when it already needs reconnecting, is disconnected, or (with `version`) the tokens were
    rotated meanwhile (then the connection is fine)."""
    record = connections.get(tenant_id)
    if record is None:
        return
    _cache.pop(tenant_id, None)
    if not connections.mark_needs_reconnect(record, reason, ACTOR, version=version):
        return
    qmetrics.count("RealmNeedsReconnect", record.realm_id)
    logger.warning(
        "QuickBooks connection needs reconnect",
        extra={"tenant_id": tenant_id, "realm_id": record.realm_id, "reason": reason},
    )


def disconnect(tenant_id: str, actor: str = ACTOR) -> None:
    """Revoke the tokens at Intuit (best effort) and forget them here. A connection that is
    already disconnected (or never was) is an InvalidTransition, and nothing is written."""
    record = connections.get(tenant_id)
    current = ConnectionStatus(record.status) if record is not None else ConnectionStatus.DISCONNECTED
    if record is None or current is ConnectionStatus.DISCONNECTED:
        # The machine calls this "already there" (a Conflict); said with both statuses for the client.
        raise InvalidTransition(
            CONNECTION_MACHINE.name, current, ConnectionStatus.DISCONNECTED, "already disconnected"
        )
    CONNECTION_MACHINE.check(tenant_id, current, ConnectionStatus.DISCONNECTED)  # before Intuit hears of it
    if record.refresh_token_enc:
        try:
            auth_client().revoke(token=decrypt(tenant_id, record.refresh_token_enc))
        except (AuthClientError, requests.RequestException) as exc:
            logger.warning(
                "QuickBooks revoke failed; tokens are dropped anyway",
                extra={"tenant_id": tenant_id, "error": type(exc).__name__},
            )
    _cache.pop(tenant_id, None)
    connections.disconnect(record, actor, reason=f"realm {record.realm_id}")
    logger.info("QuickBooks disconnected", extra={"tenant_id": tenant_id, "realm_id": record.realm_id})
