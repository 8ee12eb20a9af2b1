"""Local HTTP gateway: HTTP requests become API Gateway HTTP API (payload v2.0) events.

Routes come from the HttpApi events in template.yaml; routes with the default JWT authorizer get
the same check API Gateway performs (401 before the function runs). CORS comes from the HttpApi's
CorsConfiguration: a preflight OPTIONS is answered here, without a token, and every answer to an
allowed Origin carries the CORS headers, as API Gateway does. The gateway's own answers (401, 404,
500) have the API's one error shape (fieldbill.api.responses.ErrorOut).

Local only, no token: `POST /__local/schedules/<name>` fires a schedule; `GET /__outbox` lists the
emails sent through SES (the Maildir local/moto_ses.py files them in) and `GET /__outbox/<id>`
answers one as its raw RFC 822 message (message/rfc822).
Local only: GET /__local/s3/<bucket>/<key> serves an object of moto's in-process S3, which has no
address a browser can open. Presigned document links point here locally (DOCUMENTS_LINK_ENDPOINT);
the link's expiry is enforced, its signature is not (the local credentials are not secret).
"""

from __future__ import annotations

import base64
import json
import logging
import mailbox
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local.auth import DevIssuer
from local.lambda_runtime import FunctionRegistry
from local.template import Template

LOCAL_S3_PATH = "/__local/s3"


def problem(status: int, code: str, message: str, fields: Sequence[dict[str, str]] = ()) -> Response:
    body = {"error": {"code": code, "message": message, "fields": list(fields)}}
    return Response(json.dumps(body), status=status, content_type="application/json")


@dataclass
class Cors:
    """The HttpApi's CorsConfiguration, applied the way API Gateway applies it."""

    origins: list[str]
    headers: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    max_age: int | None = None

    @classmethod
    def from_template(cls, template: Template, origins: Sequence[str] | None = None) -> Cors | None:
        config = template.resources.get("HttpApi", {}).get("Properties", {}).get("CorsConfiguration")
        if not config:
            return None
        allowed = config.get("AllowOrigins", [])
        if isinstance(allowed, dict) and "Ref" in allowed:
            allowed = template.ref(allowed["Ref"]).split(",")
        return cls(
            origins=[o.strip() for o in (origins if origins is not None else allowed) if o.strip()],
            headers=list(config.get("AllowHeaders", [])),
            methods=list(config.get("AllowMethods", [])),
            expose=list(config.get("ExposeHeaders", [])),
            max_age=config.get("MaxAge"),
        )

    def allowed(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    def headers_for(self, origin: str | None, preflight: bool = False) -> dict[str, str]:
        allowed = self.allowed(origin)
        if allowed is None:
            return {}
        out = {"Access-Control-Allow-Origin": allowed}
        if allowed != "*":
            out["Vary"] = "Origin"
        if preflight:
            out["Access-Control-Allow-Methods"] = ",".join(self.methods)
            out["Access-Control-Allow-Headers"] = ",".join(self.headers)
            if self.max_age is not None:
                out["Access-Control-Max-Age"] = str(self.max_age)
        elif self.expose:
            out["Access-Control-Expose-Headers"] = ",".join(self.expose)
        return out


@dataclass
class Route:
    method: str
    path: str
    function: str
    authorized: bool
    pattern: re.Pattern[str]
    specificity: tuple[int, int]

    @classmethod
    def build(cls, method: str, path: str, function: str, authorized: bool) -> Route:
        regex, literal = "", 0
        for part in path.strip("/").split("/"):
            if part.endswith("+}"):
                regex += rf"/(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += rf"/(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += "/" + re.escape(part)
                literal += 1
        # API Gateway prefers exact paths, then more literal segments, then a specific method.
        return cls(
            method.upper(),
            path,
            function,
            authorized,
            re.compile(f"^{regex or '/'}$"),
            (literal, 0 if method.upper() == "ANY" else 1),
        )


# One line per request drowns the handlers' own structured logs.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class Gateway:
    def __init__(
        self,
        registry: FunctionRegistry,
        issuer: DevIssuer,
        host: str = "127.0.0.1",
        port: int = 0,
        fire_schedule: Any = None,
        cors_origins: Sequence[str] | None = None,
        outbox: Path | None = None,
    ):
        self.registry = registry
        self.outbox = outbox
        # None: the template's CorsAllowedOrigins (its default, as a plain `sam deploy` would have).
        self.cors = Cors.from_template(Template(), cors_origins)
        # Local-only: EventBridge never fires in moto, so POST /__local/schedules/<name> fires one.
        self.fire_schedule = fire_schedule
        self.issuer = issuer
        self.routes: list[Route] = []
        for spec in registry.specs.values():
            for event in spec.events.values():
                if event["Type"] != "HttpApi":
                    continue
                props = event["Properties"]
                auth = props.get("Auth", {}).get("Authorizer", "JwtAuthorizer") != "NONE"
                self.routes.append(Route.build(props["Method"], props["Path"], spec.logical_id, auth))
        self.routes.sort(key=lambda r: r.specificity, reverse=True)
        self._server = make_server(host, port, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="gateway")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in ("ANY", method):
                return route, found.groupdict()
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        origin = request.headers.get("Origin")
        if (
            self.cors is not None
            and request.method == "OPTIONS"
            and request.headers.get("Access-Control-Request-Method")
        ):
            # A preflight: answered by the gateway, never authorised, never passed to a function.
            return Response(b"", status=204, headers=self.cors.headers_for(origin, preflight=True))
        response = self._route(request)
        if self.cors is not None:
            for key, value in self.cors.headers_for(origin).items():
                response.headers[key] = value
        return response

    def _route(self, request: Request) -> Response:
        if request.path.startswith("/__local/schedules/") and request.method == "POST" and self.fire_schedule:
            name = request.path.rsplit("/", 1)[-1]
            try:
                result = self.fire_schedule(name)
            except KeyError:
                return problem(404, "not_found", f"no schedule {name}")
            return Response(
                json.dumps({"fired": name, "result": result}, default=str),
                status=200,
                content_type="application/json",
            )
        if (request.path == "/__outbox" or request.path.startswith("/__outbox/")) and self.outbox:
            return self._outbox(request, self.outbox)
        if request.path.startswith(f"{LOCAL_S3_PATH}/") and request.method in ("GET", "HEAD"):
            return self._local_object(request)
        found = self.match(request.method, request.path)
        if found is None:
            return problem(404, "not_found", f"no route {request.method} {request.path}")
        route, path_params = found
        claims = None
        if route.authorized:
            claims = self.issuer.verify(request.headers.get("Authorization"))
            if claims is None:
                message = "a valid bearer token is required"
                return problem(
                    401,
                    "unauthorized",
                    message,
                    [{"field": "Authorization", "in": "header", "message": message}],
                )
        event = self.to_event(request, route, path_params, claims)
        try:
            result = self.registry.invoke(route.function, event)
        except Exception as exc:  # API Gateway answers 500 when the integration fails
            logging.getLogger(__name__).exception("integration failed: %s", type(exc).__name__)
            return problem(500, "internal_error", "internal error")
        return self.to_response(result)

    @staticmethod
    def _outbox(request: Request, path: Path) -> Response:
        """The local SES outbox: a list of what was sent, or one message as it was sent."""
        if request.method != "GET":
            return problem(405, "method_not_allowed", f"{request.method} {request.path}: only GET")
        unknown = sorted(set(request.args) - {"to"})
        if unknown:
            return problem(
                400,
                "validation_error",
                "the request is not valid",
                [{"field": name, "in": "query", "message": "unknown query parameter"} for name in unknown],
            )
        box = mailbox.Maildir(path, create=True)
        key = request.path.removeprefix("/__outbox").strip("/")
        if key:
            try:
                raw = box.get_bytes(key)
            except KeyError:
                return problem(404, "not_found", f"no message {key} in the outbox")
            return Response(raw, status=200, content_type="message/rfc822")
        wanted = request.args.get("to", "").strip().lower()
        items = []
        for each in box.iterkeys():
            headers = BytesParser(policy=policy.default).parsebytes(box.get_bytes(each), headersonly=True)
            to = [address.addr_spec for address in getattr(headers["To"], "addresses", ())]
            if wanted and wanted not in (a.lower() for a in to):
                continue
            date = headers["Date"]
            items.append(
                {
                    "id": each,
                    "message_id": str(headers["Message-ID"] or ""),
                    "from": str(headers["From"] or ""),
                    "to": to,
                    "subject": str(headers["Subject"] or ""),
                    "date": parsedate_to_datetime(str(date)).isoformat() if date else None,
                }
            )
        items.sort(key=lambda item: (item["date"] or "", item["id"]))
        return Response(json.dumps({"items": items}), status=200, content_type="application/json")

    @staticmethod
    def _local_object(request: Request) -> Response:
        """A presigned GET, as S3 would answer it: 403 once expired, 404 without the object."""
        bucket, _, key = request.path[len(LOCAL_S3_PATH) + 1 :].partition("/")
        if link_expired(request.args, datetime.now(UTC)):
            return problem(403, "link_expired", "this link has expired or is not a presigned link")
        try:
            found = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        except ClientError:
            return problem(404, "not_found", "no such document")
        headers = {"Cache-Control": "private, no-store"}
        if "response-content-disposition" in request.args:
            headers["Content-Disposition"] = request.args["response-content-disposition"]
        content_type = request.args.get("response-content-type") or found.get("ContentType")
        return Response(found["Body"].read(), status=200, headers=headers, content_type=content_type)

    @staticmethod
    def to_event(
        request: Request, route: Route, path_params: dict[str, str], claims: dict[str, Any] | None
    ) -> dict[str, Any]:
        raw = request.get_data()
        try:
            body, is_b64 = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(raw).decode(), True
        headers = {k.lower(): v for k, v in request.headers.items()}
        query: dict[str, str] = {}
        for key, values in request.args.lists():
            query[key] = ",".join(values)
        now = time.time()
        route_key = f"{route.method} {route.path}"
        context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
        }
        if claims is not None:
            context["authorizer"] = {
                "jwt": {
                    "claims": {k: str(v) for k, v in claims.items()},
                    "scopes": str(claims.get("scope", "")).split() or None,
                }
            }
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode(),
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": is_b64,
        }
        if query:
            event["queryStringParameters"] = query
        if path_params:
            event["pathParameters"] = path_params
        if raw:
            event["body"] = body
        if request.cookies:
            event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
        return event

    @staticmethod
    def to_response(result: Any) -> Response:
        if not isinstance(result, dict) or "statusCode" not in result:
            # Payload v2.0: a bare result is JSON with status 200.
            return Response(json.dumps(result), status=200, content_type="application/json")
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(result["statusCode"]))
        for key, value in (result.get("headers") or {}).items():
            response.headers[key] = value
        for key, values in (result.get("multiValueHeaders") or {}).items():
            for value in values:
                response.headers.add(key, value)
        for cookie in result.get("cookies") or []:
            response.headers.add("Set-Cookie", cookie)
        return response


def link_expired(args: Mapping[str, str], now: datetime) -> bool:
    """A SigV4 presigned link lives X-Amz-Expires seconds from X-Amz-Date."""
    try:
        signed = datetime.strptime(args["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        lifetime = timedelta(seconds=int(args["X-Amz-Expires"]))
    except (KeyError, ValueError):
        return True
    return now > signed + lifetime
