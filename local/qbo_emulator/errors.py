"""QuickBooks fault bodies (JSON ValidationFault, lower-case 3200 AUTHENTICATION, XML 429)."""

from __future__ import annotations

from typing import Any

THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
    '<Fault type="SERVICE"><Error code="3001">'
    "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    "<Detail>The request limit was reached.  Try again later</Detail>"
    "</Error></Fault></IntuitResponse>"
)


class QboFault(Exception):
    """A fault answered as ``{"Fault":{"Error":[…],"type":…},"time":…}``."""

    def __init__(
        self,
        code: str | int,
        message: str,
        detail: str = "",
        element: str = "",
        status: int = 400,
        fault_type: str = "ValidationFault",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = str(code)
        self.message = message
        self.detail = detail
        self.element = element
        self.status = status
        self.fault_type = fault_type

    def fault(self) -> dict[str, Any]:
        return {
            "Error": [
                {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}
            ],
            "type": self.fault_type,
        }

    def body(self, time: str) -> dict[str, Any]:
        return {"Fault": self.fault(), "time": time}


# ---- constructors for the codes the emulator uses -------------------------------------------------


def required(element: str) -> QboFault:
    return QboFault(
        2020,
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def invalid_property(element: str, detail: str = "") -> QboFault:
    return QboFault(
        2010,
        "Request has invalid or unsupported property",
        detail or f"Property Name:{element} specified is unsupported or invalid",
        element,
    )


def string_length(element: str, max_len: int, supplied: int) -> QboFault:
    return QboFault(
        2050,
        "String length is either shorter or longer than supported by specification",
        "String length specified does not match the supported length. "
        f"Min:0 Max:{max_len} supplied:{supplied}",
        element,
    )


def invalid_character(element: str, char: str) -> QboFault:
    return QboFault(
        2040,
        "Invalid Character",
        f"Invalid Character : {element} contains invalid character '{char}'",
        element,
    )


def duplicate_name(what: str = "customer, vendor or employee") -> QboFault:
    return QboFault(
        6240,
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {what} is already using this name. "
        "Please use a different name.",
    )


def stale(entity: str, id_: str, supplied: Any, current: str) -> QboFault:
    return QboFault(
        5010,
        "Stale Object Error",
        f"Stale Object Error : You and another user were working on the same thing ({entity} {id_}). "
        f"SyncToken supplied:{supplied} current:{current}. The other user finished before you did, "
        "so your work was not saved.",
    )


def not_found(entity: str, id_: Any) -> QboFault:
    return QboFault(
        610,
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. Check the fields with "
        f"accounts, customers, items, vendors or employees. ({entity} Id={id_})",
    )


def invalid_reference(element: str, id_: Any) -> QboFault:
    return QboFault(
        2500, "Invalid Reference Id", f"Invalid Reference Id : {element} Id={id_} does not exist", element
    )


def business(detail: str, element: str = "") -> QboFault:
    return QboFault(
        6000, "A business validation error has occurred while processing your request", detail, element
    )


def unsupported(detail: str) -> QboFault:
    return QboFault(500, "Unsupported Operation", detail)


def query_parse(detail: str) -> QboFault:
    return QboFault(4000, "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QboFault:
    return QboFault(4001, "Invalid query", f"QueryValidationError: {detail}")


def internal_error() -> QboFault:
    """A server fault: SystemFault 10000, HTTP 500 (ruckus/quickbooks-ruby generic_error.xml)."""
    return QboFault(
        10000,
        "An application error has occurred while processing your request",
        "System Failure Error: An application error has occurred while processing your request",
        status=500,
        fault_type="SystemFault",
    )


def batch_too_large(limit: int, got: int) -> QboFault:
    return QboFault(
        1040,
        "An application error has occurred while processing your request",
        f"Batch size limit exceeded: the maximum number of operations in a batch is {limit}, got {got}",
    )


def gateway_envelope(fault: dict[str, Any], time_ms: int) -> dict[str, Any]:
    """The body Intuit's gateway answers a 401 or 403 in: lower-case `fault`, null members and
    `time` in epoch milliseconds (reference §2, a recorded 401 body)."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": fault,
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": time_ms,
        "status": None,
        "cdcresponse": [],
    }


def application_authorization_failed_body(time_ms: int, realm: str) -> dict[str, Any]:
    """HTTP 403: a valid token used on another company, or an app without access to the books.

    Lower-case like the 3200 body (reference §2, corrected 2026-12-02: the older 401/120
    AuthorizationFailure is no longer answered). A refresh cannot fix it; a reconnect does.
    """
    error = {
        "message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "detail": f"The application is not authorized to access company {realm}",
        "code": "3100",
        "element": None,
    }
    return gateway_envelope({"error": [error], "type": "SERVICE"}, time_ms)


def authentication_body(time_ms: int, detail: str = "Token expired") -> dict[str, Any]:
    """The lower-case 3200 body QuickBooks answers with HTTP 401."""
    error = {
        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "detail": detail,
        "code": "3200",
        "element": None,
    }
    return gateway_envelope({"error": [error], "type": "AUTHENTICATION"}, time_ms)


def throttle_xml(time: str) -> str:
    return THROTTLE_XML.format(time=time)
