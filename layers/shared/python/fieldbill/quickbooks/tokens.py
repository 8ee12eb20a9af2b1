"""QuickBooks OAuth: connect a company, keep its tokens fresh, disconnect it.

Tokens live on the tenant's QboConnection record, encrypted with KMS (key TOKEN_KEY_ID, the tenant
id as encryption context so a ciphertext cannot be replayed onto another tenant). App credentials
come from Secrets Manager through Powertools parameters (cached).

QuickBooks may rotate the refresh token on every refresh, and a refresh with a superseded token
ends in invalid_grant (the company must reconnect). So exactly one worker refreshes at a time:
it takes a short lease on the record (conditional on token_version), refreshes, and stores the new
pair with token_version + 1 in one conditional write. The others wait for the lease and re-read.
Nothing here logs a token, a code or a secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from fieldbill.clock import now_iso
from fieldbill.observability import logger
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.quickbooks.errors import NeedsReconnect, Transient
from fieldbill.settings import get_settings
from fieldbill.store.models import META, Entity, HistoryEntry, QboConnection

STATE_TTL_SECONDS = 600
REFRESH_MARGIN_SECONDS = 300  # refresh when less than this is left on the access token
LEASE_SECONDS = 45.0  # longer than a refresh call can take (HTTP time-out below)
OAUTH_TIMEOUT_SECONDS = 20.0
ACTOR = "quickbooks"
# Connected connections are listed by the schedules through this sparse gsi2 key (set only while
# the status is "connected"; removed on disconnect and needs_reconnect).
CONNECTED_INDEX_KEY = QboConnection.connected_key()
# Settings a company must choose before anything is synced (QboSettings.from_map reads these keys).
REQUIRED_SETTINGS = ("default_income_account", "default_expense_account")


class OAuthStateInvalid(Exception):
    """The callback's state is unknown, expired, already used, or belongs to no pending connection."""


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

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", OAUTH_TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kwargs)


def auth_client() -> AuthClient:
    creds = app_credentials()
    settings = get_settings()
    return _AuthClient(
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
def _history(from_state: str | None, to_state: str, reason: str, actor: str = ACTOR) -> HistoryEntry:
    return HistoryEntry(at=now_iso(), actor=actor, from_state=from_state, to_state=to_state, reason=reason)


def get_connection(tenant_id: str, consistent: bool = True) -> QboConnection | None:
    try:
        record = Entity.get(QboConnection.key(tenant_id), META, consistent_read=consistent)
    except DoesNotExist:
        return None
    return record if isinstance(record, QboConnection) else None


def tenant_for_realm(realm_id: str) -> str | None:
    """The tenant connected to a QuickBooks company (webhooks and pulls name the realm only)."""
    for record in Entity.gsi1.query(QboConnection.realm_key(realm_id)):
        if isinstance(record, QboConnection) and record.status != "disconnected":
            return record.tenant_id
    return None


def _ensure_connection(tenant_id: str) -> QboConnection:
    existing = get_connection(tenant_id)
    if existing is not None:
        return existing
    stamp = now_iso()
    record = QboConnection(
        pk=QboConnection.key(tenant_id),
        sk=META,
        tenant_id=tenant_id,
        id=tenant_id,
        status="disconnected",
        created_at=stamp,
        updated_at=stamp,
        history=[_history(None, "disconnected", "created")],
    )
    with contextlib.suppress(PutError):  # created concurrently: read the winner
        record.save(condition=Entity.pk.does_not_exist())
    found = get_connection(tenant_id)
    assert found is not None
    return found


def _hash_state(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


# ------------------------------------------------------------------------------ connect
def authorization_url(tenant_id: str, scopes: list[Scopes] | None = None) -> str:
    """The Intuit consent URL for this tenant. Its state is single-use, bound to the tenant and
    expires after STATE_TTL_SECONDS; only its hash is stored."""
    record = _ensure_connection(tenant_id)
    nonce = secrets.token_urlsafe(24)
    expires = int(time.time()) + STATE_TTL_SECONDS
    record.update(
        actions=[
            QboConnection.oauth_state.set(f"{_hash_state(nonce)}:{expires}"),
            QboConnection.updated_at.set(now_iso()),
        ]
    )
    state = f"{tenant_id}.{nonce}"
    return auth_client().get_authorization_url(scopes or [Scopes.ACCOUNTING], state_token=state)


def complete_connection(state: str, code: str, realm_id: str) -> str:
    """The OAuth callback: check state, exchange the code, store the tokens. Returns the tenant id."""
    return connect_callback(state, code, realm_id).tenant_id


def connect_callback(state: str, code: str, realm_id: str) -> Connected:
    """The OAuth callback: check state, exchange the code, store the tokens, list the connection
    for the schedules and read the company name. A reconnect to the same company keeps settings
    and watermarks; a connection to another company starts both afresh."""
    tenant_id, _, nonce = state.rpartition(".")
    if not tenant_id or not nonce:
        raise OAuthStateInvalid("malformed state")
    record = get_connection(tenant_id)
    if record is None or not record.oauth_state:
        raise OAuthStateInvalid("no pending connection")
    stored_hash, _, expires = record.oauth_state.partition(":")
    if not hmac.compare_digest(stored_hash, _hash_state(nonce)) or int(expires or 0) < time.time():
        raise OAuthStateInvalid("state does not match or expired")
    other = tenant_for_realm(realm_id)
    if other is not None and other != tenant_id:
        raise OAuthStateInvalid("this QuickBooks company is connected to another account")
    client = auth_client()
    try:
        client.get_bearer_token(code, realm_id=realm_id)
    except AuthClientError as exc:
        logger.warning(
            "QuickBooks code exchange refused",
            extra={"status": exc.status_code, "intuit_tid": exc.intuit_tid},
        )
        raise OAuthStateInvalid("authorization code refused") from None
    previous = record.status
    realm_changed = bool(record.realm_id) and record.realm_id != realm_id
    resumed = bool(record.realm_id) and not realm_changed
    actions: list[Any] = [
        QboConnection.realm_id.set(realm_id),
        QboConnection.status.set("connected"),
        QboConnection.access_token_enc.set(encrypt(tenant_id, str(client.access_token))),
        QboConnection.refresh_token_enc.set(encrypt(tenant_id, str(client.refresh_token))),
        QboConnection.access_expires_at.set(_expires_at(client.expires_in)),
        QboConnection.token_version.add(1),
        QboConnection.refresh_lease_until.remove(),
        QboConnection.oauth_state.remove(),
        QboConnection.gsi1pk.set(QboConnection.realm_key(realm_id)),
        QboConnection.gsi1sk.set(QboConnection.key(tenant_id)),
        QboConnection.gsi2pk.set(CONNECTED_INDEX_KEY),
        QboConnection.gsi2sk.set(tenant_id),
        QboConnection.updated_at.set(now_iso()),
        QboConnection.history.set(
            QboConnection.history.append(
                [_history(previous, "connected", f"realm {realm_id}" + (" (reconnect)" if resumed else ""))]
            )
        ),
    ]
    if realm_changed:
        # Account ids and watermarks belong to the previous company.
        actions += [QboConnection.settings.set({}), QboConnection.watermarks.set({})]
    try:
        record.update(
            actions=actions,
            # single use: a replayed callback finds the state gone
            condition=QboConnection.oauth_state == record.oauth_state,
        )
    except UpdateError:
        raise OAuthStateInvalid("state already used") from None
    _cache.pop(tenant_id, None)
    logger.info(
        "QuickBooks connected",
        extra={
            "tenant_id": tenant_id,
            "realm_id": realm_id,
            "resumed": resumed,
            "realm_changed": realm_changed,
        },
    )
    return Connected(tenant_id, realm_id, resumed, realm_changed)


def record_company_name(tenant_id: str, name: str | None) -> None:
    record = get_connection(tenant_id)
    if record is not None and name:
        record.update(actions=[QboConnection.company_name.set(name)])


def save_settings(tenant_id: str, chosen: dict[str, Any], actor: str) -> list[str]:
    """Merge `chosen` into the connection's settings (the caller has checked them against the
    company's live lists). Returns the required settings that were missing before: when that is
    not empty, the caller resumes the sync that waited for them."""
    record = get_connection(tenant_id)
    if record is None:
        raise NeedsReconnect(f"tenant {tenant_id} has no QuickBooks connection")
    before = missing_settings(record.settings)
    settings = {**(record.settings.as_dict() if record.settings else {}), **chosen}
    record.update(
        actions=[
            QboConnection.settings.set(settings),
            QboConnection.updated_at.set(now_iso()),
            QboConnection.history.set(
                QboConnection.history.append(
                    [_history(record.status, record.status, "settings changed", actor)]
                )
            ),
        ]
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
    try:
        record.update(
            actions=[QboConnection.refresh_lease_until.set(now + LEASE_SECONDS)],
            condition=(QboConnection.token_version == record.token_version)
            & (
                QboConnection.refresh_lease_until.does_not_exist()
                | (QboConnection.refresh_lease_until <= now)
            ),
        )
        return True
    except UpdateError:
        return False


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
        _release_lease(record)
        raise Transient(f"QuickBooks token refresh failed with HTTP {exc.status_code}") from None
    except requests.RequestException:
        _release_lease(record)
        raise Transient("QuickBooks token endpoint unreachable") from None
    expires_at = _expires_at(client.expires_in)
    try:
        record.update(
            actions=[
                QboConnection.access_token_enc.set(encrypt(tenant_id, str(client.access_token))),
                QboConnection.refresh_token_enc.set(encrypt(tenant_id, str(client.refresh_token))),
                QboConnection.access_expires_at.set(expires_at),
                QboConnection.token_version.set(version + 1),
                QboConnection.refresh_lease_until.remove(),
                QboConnection.updated_at.set(now_iso()),
            ],
            condition=QboConnection.token_version == version,
        )
    except UpdateError:
        # Cannot happen while leases work: log loudly, the next refresh tells if the pair was lost.
        logger.error("rotated QuickBooks tokens could not be stored", extra={"tenant_id": tenant_id})
        raise Transient("token rotation lost a race") from None
    got = AccessToken(str(client.access_token), str(record.realm_id), version + 1)
    _cache[tenant_id] = (got, float(expires_at))
    logger.info("QuickBooks token refreshed", extra={"tenant_id": tenant_id, "realm_id": record.realm_id})
    return got


def _release_lease(record: QboConnection) -> None:
    with contextlib.suppress(UpdateError):
        record.update(
            actions=[QboConnection.refresh_lease_until.remove()],
            condition=QboConnection.token_version == record.token_version,
        )


def mark_needs_reconnect(tenant_id: str, reason: str, *, version: int | None = None) -> None:
    """Status needs_reconnect (a person must connect again); metric RealmNeedsReconnect."""
    record = get_connection(tenant_id)
    if record is None:
        return
    _cache.pop(tenant_id, None)
    condition = QboConnection.token_version == version if version is not None else None
    try:
        record.update(
            actions=[
                QboConnection.status.set("needs_reconnect"),
                QboConnection.refresh_lease_until.remove(),
                QboConnection.gsi2pk.remove(),
                QboConnection.gsi2sk.remove(),
                QboConnection.updated_at.set(now_iso()),
                QboConnection.history.set(
                    QboConnection.history.append([_history(record.status, "needs_reconnect", reason)])
                ),
            ],
            condition=condition,
        )
    except UpdateError:
        return  # the tokens were rotated meanwhile: the connection is fine
    qmetrics.count("RealmNeedsReconnect", record.realm_id)
    logger.warning(
        "QuickBooks connection needs reconnect",
        extra={"tenant_id": tenant_id, "realm_id": record.realm_id, "reason": reason},
    )


def disconnect(tenant_id: str, actor: str = ACTOR) -> None:
    """Revoke the tokens at Intuit (best effort) and forget them here."""
    record = get_connection(tenant_id)
    if record is None:
        return
    if record.refresh_token_enc:
        try:
            auth_client().revoke(token=decrypt(tenant_id, record.refresh_token_enc))
        except (AuthClientError, requests.RequestException) as exc:
            logger.warning(
                "QuickBooks revoke failed; tokens are dropped anyway",
                extra={"tenant_id": tenant_id, "error": type(exc).__name__},
            )
    _cache.pop(tenant_id, None)
    record.update(
        actions=[
            QboConnection.status.set("disconnected"),
            QboConnection.access_token_enc.remove(),
            QboConnection.refresh_token_enc.remove(),
            QboConnection.access_expires_at.remove(),
            QboConnection.refresh_lease_until.remove(),
            QboConnection.token_version.add(1),
            QboConnection.gsi1pk.remove(),
            QboConnection.gsi1sk.remove(),
            QboConnection.gsi2pk.remove(),
            QboConnection.gsi2sk.remove(),
            QboConnection.updated_at.set(now_iso()),
            QboConnection.history.set(
                QboConnection.history.append(
                    [
                        HistoryEntry(
                            at=now_iso(),
                            actor=actor,
                            from_state=record.status,
                            to_state="disconnected",
                            reason=f"realm {record.realm_id}",
                        )
                    ]
                )
            ),
        ]
    )
    logger.info("QuickBooks disconnected", extra={"tenant_id": tenant_id, "realm_id": record.realm_id})
