"""Every QuickBooks answer that is not a success, classified into what the caller should do.

QuickBooks answers faults in several shapes: JSON `{"Fault":{"Error":[{"Message","Detail","code",
"element"}],"type"}}`, the lower-case 401 body `{"fault":{"error":[{"message","detail","code"}]}}`,
XML (`<IntuitResponse><Fault><Error code=…>` — the 429 body even for Accept: application/json)
and faults inside HTTP 200 batch items. They all end up here, as one of the classes below.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Intuit: "on 429 wait 60 s before retrying" (in QuickBooks seconds; the caller scales time).
DEFAULT_THROTTLE_SECONDS = 60.0


@dataclass(frozen=True)
class FaultError:
    """One `Error` of a QuickBooks Fault."""

    code: str
    message: str = ""
    detail: str = ""
    element: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "detail": self.detail, "element": self.element}


class QboError(Exception):
    """Base class: anything QuickBooks (or the way to it) answered that is not a success."""

    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        intuit_tid: str | None = None,
        faults: tuple[FaultError, ...] = (),
    ) -> None:
        super().__init__(message or type(self).__name__)
        self.status = status
        self.intuit_tid = intuit_tid
        self.faults = faults


class Throttled(QboError):
    """429 / code 3001: come back later. `retry_after_seconds` is in QuickBooks seconds."""

    retryable = True

    def __init__(
        self,
        retry_after_seconds: float = DEFAULT_THROTTLE_SECONDS,
        *,
        local: bool = False,
        hinted: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(kw.pop("message", "") or f"throttled, retry after {retry_after_seconds:g}s", **kw)
        self.retry_after_seconds = retry_after_seconds
        # True when our own limiter refused before any call went out (not a QuickBooks 429).
        self.local = local
        # True when QuickBooks said how long to wait (Retry-After); else the wait is ours to choose.
        self.hinted = hinted


class Transient(QboError):
    """5xx, a connection error or a time-out: retry with back-off.

    `maybe_committed` is True when the request left this process and the answer was lost
    (time-out, dropped connection): QuickBooks may have done the work, so a create must be
    reconciled (looked up) before it is sent again.
    """

    retryable = True

    def __init__(self, message: str = "", *, maybe_committed: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.maybe_committed = maybe_committed


class AuthExpired(QboError):
    """401 / 3200: the access token is expired or revoked; refresh and retry once."""


class NeedsReconnect(QboError):
    """The refresh token was refused (invalid_grant) or no connection exists: a person must reconnect."""


class AuthorizationFailed(NeedsReconnect):
    """403 / 3100 (older: 401 / 120): a valid token that is not authorised for this company or app.

    A refresh cannot fix it, a reconnect does: the connection is paused and its messages kept.
    """


class Permanent(QboError):
    """A fault that a retry cannot fix (validation and business rules). Recorded, not retried."""

    def __init__(self, code: str, message: str = "", detail: str = "", element: str = "", **kw: Any) -> None:
        super().__init__(f"QuickBooks fault {code}: {message} {detail}".strip(), **kw)
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "detail": self.detail, "element": self.element}


class StaleObject(Permanent):
    """5010: our SyncToken is out of date; re-read the object and retry."""


class DuplicateName(Permanent):
    """6240: a Customer/Vendor/Employee (or Item) already uses this name; find and use it."""


# ------------------------------------------------------------------------------------- parsing
def _lower_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


_ERROR_CODE = re.compile(r"errorCode=0*(\d+)")


def faults_from_dict(body: Any) -> tuple[tuple[FaultError, ...], str]:
    """The Errors of a JSON Fault in either case, and the fault type. Empty when there is no Fault."""
    if not isinstance(body, Mapping):
        return (), ""
    lowered = _lower_keys(body)
    fault = lowered.get("fault", lowered if "error" in lowered else None)
    if not isinstance(fault, Mapping):
        return (), ""
    errors = fault.get("error") or []
    if isinstance(errors, Mapping):
        errors = [errors]
    out = []
    for err in errors:
        if not isinstance(err, Mapping):
            continue
        message = str(err.get("message") or "")
        code = str(err.get("code") or "")
        if not code:
            match = _ERROR_CODE.search(message)
            code = match.group(1) if match else ""
        out.append(
            FaultError(
                code=code.lstrip("0") or code,
                message=message,
                detail=str(err.get("detail") or ""),
                element=str(err.get("element") or ""),
            )
        )
    return tuple(out), str(fault.get("type") or "")


def faults_from_xml(text: str) -> tuple[tuple[FaultError, ...], str]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return (), ""
    out = []
    fault_type = ""
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "Fault":
            fault_type = el.get("type", "")
        if tag != "Error":
            continue
        fields = {child.tag.rsplit("}", 1)[-1].lower(): (child.text or "") for child in el}
        message = fields.get("message", "")
        code = el.get("code", "")
        if not code:
            match = _ERROR_CODE.search(message)
            code = match.group(1) if match else ""
        out.append(
            FaultError(
                code=code, message=message, detail=fields.get("detail", ""), element=el.get("element", "")
            )
        )
    return tuple(out), fault_type


def parse_faults(text: str | bytes | None) -> tuple[tuple[FaultError, ...], str]:
    """Errors of a fault body, JSON (either case) or XML."""
    if not text:
        return (), ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return faults_from_xml(stripped)
    try:
        body = json.loads(stripped)
    except ValueError:
        return (), ""
    return faults_from_dict(body)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None  # an HTTP date: rare; fall back to Intuit's 60 s
    return None


def error_from_faults(
    faults: tuple[FaultError, ...],
    *,
    status: int | None = None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
) -> QboError:
    """The error class for a fault (the first Error decides: QuickBooks puts the cause first)."""
    codes = {f.code for f in faults}
    first = faults[0] if faults else FaultError(code="")
    kw: dict[str, Any] = {"status": status, "intuit_tid": intuit_tid, "faults": faults}
    if status == 429 or "3001" in codes:
        return Throttled(
            retry_after if retry_after is not None else DEFAULT_THROTTLE_SECONDS,
            hinted=retry_after is not None,
            **kw,
        )
    if "3200" in codes:
        return AuthExpired(first.message or "authentication failed", **kw)
    if "3100" in codes or "120" in codes:
        return AuthorizationFailed(first.message or "authorization failure", **kw)
    if (status is not None and status >= 500) or "10000" in codes:
        return Transient(first.message or f"HTTP {status}", **kw)
    if status == 401:
        return AuthExpired(first.message or "HTTP 401", **kw)
    if status == 403:
        return AuthorizationFailed(first.message or "HTTP 403", **kw)
    cls: type[Permanent] = Permanent
    if first.code == "5010":
        cls = StaleObject
    elif first.code == "6240":
        cls = DuplicateName
    return cls(first.code or str(status or ""), first.message, first.detail, first.element, **kw)


def classify_response(
    status: int, text: str | bytes | None, headers: Mapping[str, str] | None = None
) -> QboError:
    """The error for a non-2xx answer (2xx bodies with a Fault go through `faults_from_dict`)."""
    faults, _ = parse_faults(text)
    tid = None
    if headers:
        tid = next((v for k, v in headers.items() if k.lower() == "intuit_tid"), None)
    return error_from_faults(faults, status=status, intuit_tid=tid, retry_after=_retry_after(headers))


def batch_item_error(item: Mapping[str, Any]) -> QboError | None:
    """The error of one BatchItemResponse, or None when it succeeded."""
    faults, _ = faults_from_dict(item)
    if not faults:
        return None
    return error_from_faults(faults)
