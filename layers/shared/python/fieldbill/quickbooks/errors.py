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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
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


class DuplicateDocNumber(Permanent):
    """6140: another transaction already has this DocNumber; resolve it (find or renumber), never resend."""


class NotFound(Permanent):
    """610: the object is inactive or deleted in QuickBooks."""


class InvalidQuery(Permanent):
    """4000 / 4001: QuickBooks refused the query (a property it does not know or cannot filter on,
    bad paging). Never an empty answer: a look-up that fails must not become a create."""


class DuplicateRequest(Transient):
    """600: the requestid was used already, so the work may be done: look the object up before
    sending it again (as after a lost answer)."""

    def __init__(self, message: str = "", **kw: Any) -> None:
        kw.setdefault("maybe_committed", True)
        super().__init__(message, **kw)


@dataclass(frozen=True)
class Code:
    """One QuickBooks error code: what it means, the HTTP status it comes with, what we do."""

    error: type[QboError]
    meaning: str
    http: int | None
    source: str


_REF = "reference §2"  # ../shared/reference/quickbooks-online-api.md, section 2 (Errors)

# Every code QuickBooks is known to answer (the reference's table and the codes its other sections
# and the SDK fixtures name), classified ONCE. `error_from_faults` reads nothing else; a code that
# is not here falls back on the HTTP status, then on Intuit's code ranges (_RANGES).
ERROR_CODES: Mapping[str, Code] = MappingProxyType(
    {
        # authentication, authorization, throttling: QuickBooks did no work for the call
        "120": Code(AuthorizationFailed, "AuthorizationFailure (older services; now 3100)", 401, _REF),
        "3100": Code(
            AuthorizationFailed,
            "ApplicationAuthorizationFailed: a valid token for another company or app",
            403,
            f"{_REF}, corrected 2026-12-02",
        ),
        "3200": Code(AuthExpired, "AuthenticationFailed: token expired or revoked", 401, _REF),
        "3001": Code(
            Throttled, "ThrottleExceeded (also answered with 403)", 429, "ruckus too_many_requests_error.xml"
        ),
        # 500-599 unsupported; 600-1999 general
        "500": Code(Permanent, "Unsupported Operation", 400, "Intuit error-code ranges (reference §2)"),
        "600": Code(DuplicateRequest, "duplicate request: requestid already used", None, _REF),
        "610": Code(NotFound, "Object Not Found: inactive or deleted", 400, _REF),
        "1040": Code(Permanent, "batch larger than allowed", 400, "reference §1; DotNET-SDK#358"),
        # 2000-4999 validation (`element` names the field)
        "2010": Code(Permanent, "invalid or unsupported property", 400, _REF),
        "2020": Code(Permanent, "required parameter missing", 400, "the emulator (errors.required)"),
        "2040": Code(Permanent, "invalid character (e.g. ':' in DisplayName)", 400, "reference §4"),
        "2050": Code(Permanent, "string length out of range", 400, "ruckus fault.xml"),
        "2500": Code(Permanent, "invalid reference id", 400, _REF),
        "4000": Code(InvalidQuery, "query parse error", 400, "the emulator (errors.query_parse)"),
        "4001": Code(InvalidQuery, "invalid query: unknown or non-queryable property, bad paging", 400, _REF),
        # 5000-9999 specific
        "5010": Code(StaleObject, "Stale Object: SyncToken out of date", 400, _REF),
        "6000": Code(Permanent, "business validation error", 400, _REF),
        "6070": Code(Permanent, "Line Amount is not Qty x UnitPrice", 400, _REF),
        "6140": Code(DuplicateDocNumber, "duplicate DocNumber", 400, _REF),
        # Some sources give 6210 for a duplicate DocNumber, others a closed books period: recorded
        # for a person either way, never resolved as a duplicate.
        "6210": Code(Permanent, "duplicate DocNumber (some sources only)", 400, _REF),
        "6240": Code(DuplicateName, "Duplicate Name Exists (Customer/Vendor/Employee, Item)", 400, _REF),
        # 10000 and above: severe, on the server
        "10000": Code(
            Transient, "SystemFault: an application error on Intuit's side", 500, "ruckus generic_error.xml"
        ),
    }
)

# Intuit's code ranges (reference §2) for a code the table does not name: (first, last, class).
_RANGES: tuple[tuple[int, int, type[QboError]], ...] = (
    (1, 499, AuthorizationFailed),
    (10000, 10**9, Transient),
)

# Any of these anywhere in a fault governs the whole call (QuickBooks did no work for it).
_GOVERNING: tuple[type[QboError], ...] = (Throttled, AuthExpired, AuthorizationFailed)


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


def error_class(codes: Sequence[str], status: int | None = None) -> type[QboError]:
    """The class for a fault's codes (first = the cause) and its HTTP status (None in a batch item)."""
    if status == 429:
        return Throttled
    known = [ERROR_CODES[c].error for c in codes if c in ERROR_CODES]
    for governing in _GOVERNING:
        if governing in known:
            return governing
    if status is not None and status >= 500:
        return Transient  # the server failed, whatever the body says
    first = codes[0] if codes else ""
    if first in ERROR_CODES:
        return ERROR_CODES[first].error
    if status == 401:
        return AuthExpired
    if status == 403:
        return AuthorizationFailed
    if first.isdigit():
        for low, high, cls in _RANGES:
            if low <= int(first) <= high:
                return cls
    return Permanent


def error_from_faults(
    faults: tuple[FaultError, ...],
    *,
    status: int | None = None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
) -> QboError:
    """The error for a fault (classified by ERROR_CODES; QuickBooks puts the cause first)."""
    first = faults[0] if faults else FaultError(code="")
    kw: dict[str, Any] = {"status": status, "intuit_tid": intuit_tid, "faults": faults}
    cls = error_class([f.code for f in faults], status)
    if issubclass(cls, Throttled):
        return cls(
            retry_after if retry_after is not None else DEFAULT_THROTTLE_SECONDS,
            hinted=retry_after is not None,
            **kw,
        )
    if issubclass(cls, Permanent):
        code = first.code or str(status or "")
        return cls(code, first.message, first.detail, first.element, **kw)
    return cls(first.message or (f"HTTP {status}" if status else cls.__name__), **kw)


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
