"""OAuth 2.0 like Intuit's: apps, authorization codes, rotating refresh tokens, revocation."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .clock import Clock
from .config import Settings

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
KNOWN_SCOPES = {
    ACCOUNTING_SCOPE,
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "intuit_name",
}


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    webhook_url: str | None = None
    verifier_token: str | None = None
    webhook_format: str = "legacy"  # or "cloudevents"
    webhooks_enabled: bool = True


@dataclass
class Grant:
    grant_id: str
    client_id: str
    realm_id: str
    scopes: list[str]
    revoked: bool = False
    granted_at: float | None = None  # emulated time of the consent (None: kept from before it was recorded)


@dataclass
class AccessToken:
    token: str
    grant_id: str
    expires_at: float
    expired: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    expires_at: float
    valid: bool = True


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    realm_id: str
    scopes: list[str]
    expires_at: float
    used: bool = False


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"{status} {error} {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"error": self.error}


class AuthResult:
    OK = "ok"
    UNAUTHENTICATED = "3200"
    NOT_AUTHORIZED = "3100"  # another company, or no accounting scope: HTTP 403


@dataclass
class OAuthServer:
    clock: Clock
    settings: Settings
    apps: dict[str, App] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    issuer: str = ""  # the discovery document's issuer (set when the server's URL is known)
    _signing_key: rsa.RSAPrivateKey | None = None

    # ---- OpenID Connect ------------------------------------------------------------------------
    ID_TOKEN_KID = "emu-1"

    def _key(self) -> rsa.RSAPrivateKey:
        with self.lock:  # made at first use: most runs never ask for openid
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._signing_key

    def jwks(self) -> dict[str, Any]:
        """The public key id_tokens are signed with, as the discovery document's jwks_uri serves it."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key().public_key()))
        return {"keys": [{**jwk, "kid": self.ID_TOKEN_KID, "alg": "RS256", "use": "sig"}]}

    def _id_token(self, app: App, grant: Grant) -> str:
        """An OpenID id_token as Intuit issues it with the openid scope: RS256, `aud` a list with the
        client id, `realmid` (.NET SDK OidcConstants; intuitlib checks iss, aud[0], exp and the
        signature against the JWKS). Times are wall-clock: the client checks them against its own."""
        now = int(time.time())
        claims = {
            "sub": f"user-{grant.client_id}-{grant.realm_id}",
            "aud": [app.client_id],
            "realmid": grant.realm_id,
            "auth_time": now,
            "iss": self.issuer,
            "exp": now + 3600,
            "iat": now,
        }
        return jwt.encode(claims, self._key(), algorithm="RS256", headers={"kid": self.ID_TOKEN_KID})

    # ---- apps --------------------------------------------------------------------------------
    def register_app(self, app: App) -> App:
        with self.lock:
            self.apps[app.client_id] = app
            return app

    def apps_for_realm(self, realm: str) -> list[App]:
        """Apps currently connected to a company (a grant that is not revoked)."""
        with self.lock:
            ids = {g.client_id for g in self.grants.values() if g.realm_id == realm and not g.revoked}
            return [self.apps[i] for i in sorted(ids) if i in self.apps]

    def _client(self, auth_header: str | None, form: dict[str, str] | None = None) -> App:
        """The calling app: HTTP Basic (client_secret_basic) or, at the token endpoint, the form's
        client_id and client_secret (client_secret_post): the discovery document offers both."""
        if auth_header and auth_header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth_header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError(401, "invalid_client", "malformed Basic credentials") from exc
        elif form and form.get("client_id") and "client_secret" in form:
            client_id, secret = form["client_id"], form["client_secret"]
        else:
            raise OAuthError(401, "invalid_client", "client authentication required (Basic or form)")
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, secret):
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        return app

    # ---- authorize ---------------------------------------------------------------------------
    def authorize(self, args: dict[str, str], pick_realm) -> str:
        """Validate an authorization request and return the redirect Location (auto-approved).

        Raises OAuthError(400) when the client or redirect_uri is wrong (no redirect then).
        ``pick_realm(hint)`` returns the realm to grant.
        """
        app = self.apps.get(args.get("client_id", ""))
        if app is None:
            raise OAuthError(400, "invalid_client", "unknown client_id")
        redirect_uri = args.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered for this app")
        state = args.get("state")

        def back(**params: str) -> str:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return f"{redirect_uri}{sep}{urlencode(params)}"

        if args.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scopes = args.get("scope", "").split()
        if not scopes or any(s not in KNOWN_SCOPES for s in scopes):
            return back(error="invalid_scope")
        if not state:
            return back(error="invalid_request", error_description="state is required")
        if args.get("deny") in ("1", "true"):
            return back(error="access_denied")
        # pick_realm may create a company (store lock): never call it holding the OAuth lock
        realm = pick_realm(args.get("realm") or args.get("realmId"))
        code = "AB" + secrets.token_urlsafe(30)
        with self.lock:
            self.codes[code] = AuthCode(
                code,
                app.client_id,
                redirect_uri,
                realm,
                scopes,
                self.clock.now() + self.settings.get("auth_code_ttl"),
            )
        return back(code=code, realmId=realm)

    # ---- tokens ------------------------------------------------------------------------------
    def _issue(self, grant: Grant, *, hard_expiry: bool = False) -> dict[str, Any]:
        now = self.clock.now()
        at_ttl = self.settings.get("access_token_ttl", grant.realm_id)
        rt_until = now + self.settings.get("refresh_token_ttl", grant.realm_id)
        hard_until = None
        if grant.granted_at is not None:
            # the rolling window never passes the hard lifespan counted from the consent
            hard_until = grant.granted_at + self.settings.get("refresh_token_hard_ttl", grant.realm_id)
            rt_until = min(rt_until, hard_until)
        access = AccessToken("eyJemu." + secrets.token_urlsafe(48), grant.grant_id, now + at_ttl)
        refresh = RefreshToken("AB11" + secrets.token_urlsafe(36), grant.grant_id, rt_until)
        self.access_tokens[access.token] = access
        self.refresh_tokens[refresh.token] = refresh
        answer = {
            "token_type": "bearer",
            "access_token": access.token,
            "expires_in": int(at_ttl),
            "refresh_token": refresh.token,
            "x_refresh_token_expires_in": int(rt_until - now),
        }
        if hard_expiry and hard_until is not None:
            # only when asked (header x-include-refresh-token-hard-expires-in: .NET SDK TokenClient.cs)
            answer["x_refresh_token_hard_expires_in"] = int(hard_until - now)
        return answer

    def grant_for(self, client_id: str, realm: str, scopes: list[str] | None = None) -> dict[str, Any]:
        """Connect an app to a company without the browser dance (test helper)."""
        with self.lock:
            if client_id not in self.apps:
                raise KeyError(f"unknown client_id {client_id}")
            grant = Grant(
                secrets.token_hex(8),
                client_id,
                realm,
                scopes or [ACCOUNTING_SCOPE],
                granted_at=self.clock.now(),
            )
            self.grants[grant.grant_id] = grant
            tokens = self._issue(grant)
            tokens["realmId"] = realm
            return tokens

    def token(
        self, form: dict[str, str], auth_header: str | None, refresh_fault, *, hard_expiry: bool = False
    ) -> dict[str, Any]:
        """POST /oauth2/v1/tokens/bearer. ``refresh_fault(realm)`` says whether to inject invalid_grant;
        ``hard_expiry``: the client asked for x_refresh_token_hard_expires_in."""
        with self.lock:
            app = self._client(auth_header, form)
            grant_type = form.get("grant_type")
            now = self.clock.now()
            if grant_type == "authorization_code":
                code = self.codes.get(form.get("code", ""))
                if code is None or code.used or code.expires_at < now or code.client_id != app.client_id:
                    raise OAuthError(400, "invalid_grant", "authorization code is invalid, used or expired")
                if form.get("redirect_uri") != code.redirect_uri:
                    raise OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization")
                code.used = True
                grant = Grant(secrets.token_hex(8), app.client_id, code.realm_id, code.scopes, granted_at=now)
                self.grants[grant.grant_id] = grant
                answer = self._issue(grant, hard_expiry=hard_expiry)
                if "openid" in code.scopes:
                    answer["id_token"] = self._id_token(app, grant)
                return answer
            if grant_type == "refresh_token":
                rt = self.refresh_tokens.get(form.get("refresh_token", ""))
                found = self.grants.get(rt.grant_id) if rt else None
                if (
                    rt is None
                    or found is None
                    or not rt.valid
                    or rt.expires_at < now
                    or found.revoked
                    or found.client_id != app.client_id
                ):
                    raise OAuthError(
                        400, "invalid_grant", "refresh token is invalid, rotated, expired or revoked"
                    )
                if refresh_fault(found.realm_id):
                    self._revoke_grant(found)
                    raise OAuthError(400, "invalid_grant", "injected fault: refresh token invalid")
                rt.valid = False  # rotation: the old refresh token is spent
                return self._issue(found, hard_expiry=hard_expiry)
            raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def revoke(self, token: str | None, auth_header: str | None) -> None:
        with self.lock:
            self._client(auth_header)
            if not token:
                raise OAuthError(400, "invalid_request", "token is required")
            entry = self.refresh_tokens.get(token) or self.access_tokens.get(token)
            if entry is not None and entry.grant_id in self.grants:
                self._revoke_grant(self.grants[entry.grant_id])

    def _revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True
        for rt in self.refresh_tokens.values():
            if rt.grant_id == grant.grant_id:
                rt.valid = False

    # ---- resource server ---------------------------------------------------------------------
    def check(self, auth_header: str | None, realm: str) -> tuple[str, str]:
        """(AuthResult, detail) for a Bearer header on a company URL."""
        with self.lock:
            if not auth_header or not auth_header.lower().startswith("bearer "):
                return AuthResult.UNAUTHENTICATED, "Authorization header with a Bearer token is required"
            at = self.access_tokens.get(auth_header[7:].strip())
            if at is None:
                return AuthResult.UNAUTHENTICATED, "Token invalid"
            grant = self.grants.get(at.grant_id)
            if grant is None or grant.revoked:
                return AuthResult.UNAUTHENTICATED, "Token revoked"
            if at.expired or at.expires_at < self.clock.now():
                return AuthResult.UNAUTHENTICATED, "Token expired"
            if grant.realm_id != realm or ACCOUNTING_SCOPE not in grant.scopes:
                return AuthResult.NOT_AUTHORIZED, "token not valid for this company"
            return AuthResult.OK, ""

    def expire_realm_tokens(self, realm: str) -> int:
        with self.lock:
            n = 0
            for at in self.access_tokens.values():
                grant = self.grants.get(at.grant_id)
                if grant is not None and grant.realm_id == realm and not at.expired:
                    at.expired = True
                    n += 1
            return n

    def forget_realm(self, realm: str | None) -> None:
        with self.lock:
            doomed = {g.grant_id for g in self.grants.values() if realm is None or g.realm_id == realm}
            for gid in doomed:
                self.grants.pop(gid, None)
            self.access_tokens = {k: v for k, v in self.access_tokens.items() if v.grant_id not in doomed}
            self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v.grant_id not in doomed}
            self.codes = {k: v for k, v in self.codes.items() if realm is not None and v.realm_id != realm}

    def realm_hint(self, form: dict[str, str]) -> str | None:
        """The realm a token request is about (for per-realm fault rules)."""
        with self.lock:
            if form.get("grant_type") == "refresh_token":
                rt = self.refresh_tokens.get(form.get("refresh_token", ""))
                grant = self.grants.get(rt.grant_id) if rt else None
                return grant.realm_id if grant else None
            code = self.codes.get(form.get("code", ""))
            return code.realm_id if code else None

    def subject(self, auth_header: str | None) -> str | None:
        with self.lock:
            if not auth_header or not auth_header.lower().startswith("bearer "):
                return None
            at = self.access_tokens.get(auth_header[7:].strip())
            grant = self.grants.get(at.grant_id) if at else None
            if at is None or grant is None or grant.revoked or at.expired or at.expires_at < self.clock.now():
                return None
            return f"user-{grant.client_id}-{grant.realm_id}"
