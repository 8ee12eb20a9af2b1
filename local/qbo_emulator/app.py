"""HTTP layer (Flask): OAuth endpoints, the Accounting API pipeline (auth, limits, faults, requestid
replay) and the /__admin API."""

from __future__ import annotations

import contextlib
import socket
import time
import traceback
import uuid
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from . import errors
from .clock import fmt_time
from .faults import FaultRule
from .jsonutil import dumps, loads, to_wire
from .oauth import AuthResult, OAuthError

if TYPE_CHECKING:
    from .emulator import QboEmulator

API_FAULT_KINDS = {"status", "drop_connection", "lost_after_commit", "expire_tokens", "slow"}
TOKEN_FAULT_KINDS = {"status", "drop_connection", "slow"}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status=status, mimetype="application/json", headers=headers or {})


def _drop_connection() -> Response:
    """Close the client's socket without answering; werkzeug then ignores the broken pipe."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    return Response("", status=500)


def _args() -> dict[str, str]:
    return {k: v for k, v in request.args.items()}


def build_app(emu: QboEmulator) -> Flask:
    app = Flask("qbo_emulator")

    @app.after_request
    def _tid(resp: Response) -> Response:
        resp.headers.setdefault("intuit_tid", uuid.uuid4().hex)
        return resp

    def now_str(realm: str | None = None) -> str:
        c = emu.store.company(realm) if realm else None
        return fmt_time(emu.clock.now(), c.tz_offset if c else -420, millis=True)

    def now_ms() -> int:
        return int(emu.clock.now() * 1000)

    def injected(rule: FaultRule, realm: str | None) -> Response:
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        if rule.body is not None:
            return Response(
                rule.body, rule.status, content_type=rule.content_type or "text/plain", headers=headers
            )
        if rule.status == 429:
            return Response(
                errors.throttle_xml(now_str(realm)), 429, content_type="application/xml", headers=headers
            )
        if rule.status == 503:
            html = "<html><body><h1>503 Service Unavailable</h1>No server is available.</body></html>"
            return Response(html, 503, content_type="text/html", headers=headers)
        if rule.status == 403:
            return _json(errors.application_authorization_failed_body(now_ms(), realm), 403, headers)
        if rule.status == 500:
            fault = errors.internal_error()
        else:
            fault = errors.QboFault(rule.status, "Injected fault", f"HTTP {rule.status}", status=rule.status)
        return _json(fault.body(now_str(realm)), rule.status, headers)

    # ---- OAuth ---------------------------------------------------------------------------------
    @app.get("/.well-known/openid_configuration")
    @app.get("/.well-known/openid_configuration/")
    def discovery() -> Response:
        base = emu.url
        return _json(
            {
                "issuer": f"{base}/op/v1",
                "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
                "jwks_uri": f"{base}/op/v1/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
            }
        )

    @app.get("/op/v1/jwks")
    def jwks() -> Response:
        return _json(emu.oauth.jwks())

    @app.get("/connect/oauth2")
    def authorize() -> Response:
        try:
            location = emu.oauth.authorize(_args(), emu._pick_realm)
        except OAuthError as exc:
            return _json({"error": exc.error, "error_description": exc.description}, exc.status)
        return Response("", 302, headers={"Location": location})

    @app.post("/oauth2/v1/tokens/bearer")
    def token() -> Response:
        form = {k: v for k, v in request.form.items()}
        realm = emu.oauth.realm_hint(form)
        if realm is not None:
            fired = emu.faults.fire(realm, "POST", request.path, TOKEN_FAULT_KINDS)
            for rule in fired:
                if rule.kind == "slow":
                    time.sleep(rule.delay_ms / 1000)
            for rule in fired:
                if rule.kind == "drop_connection":
                    return _drop_connection()
                if rule.kind == "status":
                    return injected(rule, realm)

        def refresh_fault(grant_realm: str) -> bool:
            return bool(emu.faults.fire(grant_realm, "POST", request.path, {"invalid_grant"}))

        try:
            hard = request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
            body = emu.oauth.token(
                form, request.headers.get("Authorization"), refresh_fault, hard_expiry=hard
            )
        except OAuthError as exc:
            return _json(exc.body(), exc.status)
        return _json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.post("/v2/oauth2/tokens/revoke")
    def revoke() -> Response:
        data = request.get_json(silent=True) or {k: v for k, v in request.form.items()}
        try:
            emu.oauth.revoke(data.get("token"), request.headers.get("Authorization"))
        except OAuthError as exc:
            return _json(exc.body(), exc.status)
        return Response("", 200)

    @app.get("/v1/openid_connect/userinfo")
    def userinfo() -> Response:
        sub = emu.oauth.subject(request.headers.get("Authorization"))
        if sub is None:
            return _json({"error": "invalid_token"}, 401)
        return _json({"sub": sub, "email": "owner@example.com", "emailVerified": True, "givenName": "Demo"})

    # ---- Accounting API --------------------------------------------------------------------------
    @app.route("/v3/company/<realm>/<path:rest>", methods=["GET", "POST"])
    def company_api(realm: str, rest: str) -> Response:
        emu._count(realm, "requests")
        resp, outcome = pipeline(realm, rest)
        emu._count(realm, outcome or f"status_{resp.status_code}")
        return resp

    def pipeline(realm: str, rest: str) -> tuple[Response, str | None]:
        method = request.method
        fired = emu.faults.fire(realm, method, request.path, API_FAULT_KINDS)
        by_kind: dict[str, FaultRule] = {}
        for rule in fired:
            by_kind.setdefault(rule.kind, rule)
        if fired:
            emu._count(realm, "faults_injected", n=len(fired))
        if "expire_tokens" in by_kind:
            emu.oauth.expire_realm_tokens(realm)
        if emu.settings.get("require_auth", realm):
            result, detail = emu.oauth.check(request.headers.get("Authorization"), realm)
            if result == AuthResult.UNAUTHENTICATED:
                headers = {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
                return _json(errors.authentication_body(now_ms(), detail), 401, headers), None
            if result == AuthResult.NOT_AUTHORIZED:
                return _json(errors.application_authorization_failed_body(now_ms(), realm), 403), None
        company = emu.store.company(realm)
        if company is None:  # no company of that id: no token can be authorized for it
            return _json(errors.application_authorization_failed_body(now_ms(), realm), 403), None
        is_batch = rest.strip("/").lower() == "batch"
        exceeded = emu.limiter.acquire(realm, is_batch)
        if exceeded is not None:
            emu._count(realm, "throttled")
            emu._count(realm, f"throttled_{exceeded}")
            return Response(errors.throttle_xml(now_str(realm)), 429, content_type="application/xml"), None
        try:
            if is_batch:
                emu._count(realm, "batch_requests")
            if "slow" in by_kind:
                time.sleep(by_kind["slow"].delay_ms / 1000)
            if "status" in by_kind:
                return injected(by_kind["status"], realm), None
            if "drop_connection" in by_kind:
                return _drop_connection(), "dropped"
            args = _args()
            request_id = args.get("requestid")
            if request_id is not None:
                max_len = emu.settings.get(
                    "batch_requestid_max_length" if is_batch else "requestid_max_length", realm
                )
                if not request_id or len(request_id) > max_len:
                    fault = errors.string_length("requestid", max_len, len(request_id))
                    return _json(fault.body(now_str(realm)), 400), None
            body = request.get_data()
            with emu.store.lock:
                if request_id is not None:
                    cached = emu._replay(company, request_id)
                    if cached is not None:
                        emu._count(realm, "replayed")
                        status, text, ctype = cached
                        return Response(text, status, content_type=ctype), None
                payload: Any = None
                try:
                    status, payload = emu.api.handle(
                        company, method, rest, args, body, request.content_type or ""
                    )
                    text = dumps(payload)
                except errors.QboFault as fault:
                    status, text = fault.status, dumps(fault.body(now_str(realm)))
                except Exception:  # a bug in the emulator: answer like QuickBooks' 500, keep the trace
                    emu.errors.append(traceback.format_exc())
                    internal = errors.internal_error()
                    status, text = internal.status, dumps(internal.body(now_str(realm)))
                if request_id is not None:
                    emu.store.remember_request(
                        company, request_id, (emu.clock.now(), status, text, "application/json")
                    )
            if is_batch and status == 200 and isinstance(payload, dict):
                # operations executed, per entity: how full the batch slots were (the benchmark)
                for item in payload.get("BatchItemResponse", []):
                    kind = next((k for k in item if k not in ("bId", "Fault")), "Fault")
                    emu._count(realm, f"batch_operations_{kind}")
            if "lost_after_commit" in by_kind:
                return _drop_connection(), "lost_after_commit"
            return Response(text, status, content_type="application/json"), None
        finally:
            emu.limiter.release(realm)

    # ---- admin -------------------------------------------------------------------------------------
    def admin_error(message: str, status: int = 400) -> Response:
        return _json({"error": message}, status)

    def admin_body() -> dict[str, Any]:
        data = loads(request.get_data() or b"{}")
        return data if isinstance(data, dict) else {}

    def entity_name(segment: str) -> str | None:
        from .entities import URL_ENTITIES

        seg = segment.lower()
        return URL_ENTITIES.get(seg) or URL_ENTITIES.get(seg[:-1] if seg.endswith("s") else seg)

    @app.errorhandler(KeyError)
    def _key_error(exc: KeyError) -> Response:
        return admin_error(f"not found: {exc}", 404)

    @app.errorhandler(ValueError)
    def _value_error(exc: ValueError) -> Response:
        return admin_error(str(exc), 400)

    @app.get("/__admin/health")
    def health() -> Response:
        return _json({"ok": True, "time_scale": emu.clock.time_scale, "realms": sorted(emu.store.companies)})

    @app.post("/__admin/apps")
    def admin_register_app() -> Response:
        data = admin_body()
        app_ = emu.register_app(**data)
        return _json({"client_id": app_.client_id})

    @app.post("/__admin/companies")
    def admin_create_company() -> Response:
        data = admin_body()
        return _json({"realmId": emu.create_company(**data)})

    @app.get("/__admin/companies")
    def admin_companies() -> Response:
        return _json({"realms": sorted(emu.store.companies)})

    @app.get("/__admin/companies/<realm>/state")
    @app.get("/__admin/state/<realm>")
    def admin_state(realm: str) -> Response:
        return _json(emu.state(realm))

    @app.get("/__admin/companies/<realm>/calls")
    @app.get("/__admin/calls/<realm>")
    def admin_calls(realm: str) -> Response:
        return _json(emu.calls(realm))

    @app.post("/__admin/companies/<realm>/connect")
    def admin_connect(realm: str) -> Response:
        data = admin_body()
        return _json(emu.connect(data["client_id"], realm))

    @app.post("/__admin/configure")
    def admin_configure() -> Response:
        data = admin_body()
        realm = data.pop("realm", None)
        emu.configure(realm=realm, **data)
        return _json(
            {"ok": True, "settings": emu.settings.snapshot(realm), "faults": emu.faults.rules(realm)}
        )

    @app.post("/__admin/reset")
    def admin_reset() -> Response:
        data = admin_body()
        emu.reset(realm=data.get("realm"))
        return _json({"ok": True})

    @app.post("/__admin/clock/advance")
    def admin_advance() -> Response:
        emu.advance(float(admin_body().get("seconds", 0)))
        return _json({"now": emu.clock.now()})

    @app.post("/__admin/webhooks/flush")
    def admin_flush() -> Response:
        return _json({"flushed": emu.flush_webhooks(float(admin_body().get("timeout", 10)))})

    @app.get("/__admin/webhooks/deliveries")
    def admin_deliveries() -> Response:
        return _json({"deliveries": emu.webhook_deliveries()})

    def user_op(call, realm: str, *args: Any) -> Response:
        try:
            return _json(to_wire(call(realm, *args)))
        except errors.QboFault as fault:
            return _json(fault.body(now_str(realm)), fault.status)

    @app.post("/__admin/companies/<realm>/preferences")
    def admin_preferences(realm: str) -> Response:
        data = admin_body()
        allowed = {"custom_txn_numbers", "automated_sales_tax", "tax_rates"}
        unknown = set(data) - allowed
        if unknown:
            return admin_error(f"unknown preference(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return _json(to_wire({"Preferences": emu.set_preferences(realm, **data)}))

    @app.post("/__admin/companies/<realm>/<segment>")
    def admin_user_create(realm: str, segment: str) -> Response:
        entity = entity_name(segment)
        if entity is None:
            return admin_error(f"unknown entity {segment}", 404)
        return user_op(emu.user_create, realm, entity, admin_body())

    @app.post("/__admin/companies/<realm>/<segment>/<id_>")
    def admin_user_edit(realm: str, segment: str, id_: str) -> Response:
        entity = entity_name(segment)
        if entity is None:
            return admin_error(f"unknown entity {segment}", 404)
        return user_op(emu.user_edit, realm, entity, id_, admin_body())

    @app.delete("/__admin/companies/<realm>/<segment>/<id_>")
    def admin_user_delete(realm: str, segment: str, id_: str) -> Response:
        entity = entity_name(segment)
        if entity is None:
            return admin_error(f"unknown entity {segment}", 404)
        return user_op(emu.user_delete, realm, entity, id_)

    @app.post("/__admin/companies/<realm>/<segment>/<id_>/void")
    def admin_user_void(realm: str, segment: str, id_: str) -> Response:
        entity = entity_name(segment)
        if entity is None:
            return admin_error(f"unknown entity {segment}", 404)
        return user_op(emu.user_void, realm, entity, id_)

    @app.post("/__admin/companies/<realm>/invoices/<id_>/pay")
    def admin_pay(realm: str, id_: str) -> Response:
        amount = admin_body().get("amount")
        return user_op(emu.pay_invoice, realm, id_, amount)

    return app
