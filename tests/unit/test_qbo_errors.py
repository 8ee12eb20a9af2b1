"""Every QuickBooks answer shape is classified into what the sync engine should do."""

from __future__ import annotations

import json

import pytest

from fieldbill.quickbooks.errors import (
    AuthExpired,
    AuthorizationFailed,
    DuplicateName,
    NeedsReconnect,
    Permanent,
    StaleObject,
    Throttled,
    Transient,
    batch_item_error,
    classify_response,
    parse_faults,
)

THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2024-05-06T10:00:00.000-07:00">'
    '<Fault type="SERVICE"><Error code="3001">'
    "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    "<Detail>The request limit was reached.  Try again later</Detail>"
    "</Error></Fault></IntuitResponse>"
)


def fault(
    code: str, message: str = "m", detail: str = "d", element: str = "", kind: str = "ValidationFault"
) -> str:
    return json.dumps(
        {
            "Fault": {
                "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
                "type": kind,
            },
            "time": "t",
        }
    )


def test_xml_429_without_retry_after_waits_sixty_quickbooks_seconds() -> None:
    error = classify_response(429, THROTTLE_XML, {"Content-Type": "application/xml"})
    assert isinstance(error, Throttled)
    assert error.retry_after_seconds == 60
    assert error.faults[0].code == "3001"
    assert not error.local


def test_429_honours_retry_after_header_and_json_body() -> None:
    error = classify_response(429, fault("3001", "ThrottleExceeded"), {"Retry-After": "7"})
    assert isinstance(error, Throttled)
    assert error.retry_after_seconds == 7


def test_429_with_unparseable_body_is_still_throttled() -> None:
    assert isinstance(classify_response(429, b"Too Many Requests", {}), Throttled)


def test_lower_case_3200_body_is_auth_expired() -> None:
    body = json.dumps(
        {
            "fault": {
                "error": [
                    {
                        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                        "detail": "Token expired",
                        "code": "3200",
                    }
                ],
                "type": "AUTHENTICATION",
            },
            "time": "t",
        }
    )
    error = classify_response(401, body, {"intuit_tid": "tid-1"})
    assert isinstance(error, AuthExpired)
    assert error.intuit_tid == "tid-1"


def test_3200_code_found_in_message_when_code_is_missing() -> None:
    body = json.dumps(
        {"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401"}]}}
    )
    assert isinstance(classify_response(401, body), AuthExpired)


def test_120_is_authorization_failed() -> None:
    error = classify_response(401, fault("120", "message=AuthorizationFailure", kind="AuthorizationFault"))
    assert isinstance(error, AuthorizationFailed)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_and_not_committed(status: int) -> None:
    error = classify_response(status, "<html>oops</html>")
    assert isinstance(error, Transient)
    assert error.maybe_committed is False


def test_403_3100_application_authorization_failed_needs_reconnect_never_a_retry() -> None:
    # Given the lower-case body QuickBooks answers for a valid token used on another company
    # (reference §2, corrected 2026-12-02: 3100 is ApplicationAuthorizationFailed, HTTP 403)
    body = json.dumps(
        {
            "fault": {
                "error": [
                    {
                        "message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                        "detail": "",
                        "code": "3100",
                    }
                ],
                "type": "SERVICE",
            },
            "time": "t",
        }
    )
    # When it is classified
    error = classify_response(403, body)
    # Then a person must reconnect: the same error the sync consumer already parks on
    assert isinstance(error, AuthorizationFailed) and isinstance(error, NeedsReconnect)
    assert not isinstance(error, Transient) and not error.retryable
    assert error.faults[0].code == "3100"


def test_3100_without_a_code_member_is_read_from_the_message() -> None:
    body = json.dumps(
        {
            "fault": {
                "error": [
                    {"message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"}
                ],
                "type": "SERVICE",
            }
        }
    )
    assert isinstance(classify_response(403, body), AuthorizationFailed)


def test_10000_system_fault_is_transient() -> None:
    # ruckus/quickbooks-ruby spec/fixtures/generic_error.xml: SystemFault, code 10000, HTTP 500
    error = classify_response(500, fault("10000", "An application error has occurred", kind="SystemFault"))
    assert isinstance(error, Transient) and error.retryable


def test_stale_object_and_duplicate_name_are_their_own_permanent_kinds() -> None:
    stale = classify_response(400, fault("5010", "Stale Object Error"))
    dup = classify_response(400, fault("6240", "Duplicate Name Exists Error"))
    assert isinstance(stale, StaleObject) and isinstance(stale, Permanent)
    assert isinstance(dup, DuplicateName) and dup.code == "6240"


def test_validation_fault_keeps_code_message_detail_and_element() -> None:
    error = classify_response(
        400, fault("6070", "Amount mismatch", "Amount is not Qty*UnitPrice", "Line.Amount")
    )
    assert type(error) is Permanent
    assert error.as_dict() == {
        "code": "6070",
        "message": "Amount mismatch",
        "detail": "Amount is not Qty*UnitPrice",
        "element": "Line.Amount",
    }


def test_batch_item_faults() -> None:
    ok = {"bId": "a", "Invoice": {"Id": "1"}}
    bad = {
        "bId": "b",
        "Fault": {
            "Error": [{"Message": "Duplicate", "code": "6240", "element": ""}],
            "type": "ValidationFault",
        },
    }
    throttled = {"bId": "c", "Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "3001"}]}}
    assert batch_item_error(ok) is None
    assert isinstance(batch_item_error(bad), DuplicateName)
    assert isinstance(batch_item_error(throttled), Throttled)


def test_parse_faults_reads_xml_errors() -> None:
    faults, kind = parse_faults(THROTTLE_XML)
    assert kind == "SERVICE"
    assert faults[0].code == "3001" and "request limit" in faults[0].detail
