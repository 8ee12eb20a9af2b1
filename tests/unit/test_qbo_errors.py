"""Every QuickBooks answer shape is classified into what the sync engine should do."""

from __future__ import annotations

import json

import pytest

from fieldbill.quickbooks.errors import (
    ERROR_CODES,
    AuthExpired,
    AuthorizationFailed,
    DuplicateDocNumber,
    DuplicateName,
    DuplicateRequest,
    InvalidQuery,
    NeedsReconnect,
    NotFound,
    Permanent,
    QboError,
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


# ------------------------------------------------------------------------ one row per error code
# Every code of the QuickBooks reference (../shared/reference/quickbooks-online-api.md §1-§3) and the
# codes the emulator answers, with the HTTP status QuickBooks sends it with and what the sync
# engine must do. Written here by hand, independently of errors.ERROR_CODES: a row that disagrees
# with the table fails.
ROWS: list[tuple[str, int, type[QboError], str]] = [
    ("120", 401, AuthorizationFailed, "needs-reconnect"),  # older AuthorizationFailure
    ("3100", 403, AuthorizationFailed, "needs-reconnect"),  # ApplicationAuthorizationFailed
    ("3200", 401, AuthExpired, "refresh"),  # AuthenticationFailed: token expired or revoked
    ("3001", 429, Throttled, "throttled"),  # ThrottleExceeded
    ("10000", 500, Transient, "transient"),  # SystemFault
    ("600", 400, DuplicateRequest, "look-up"),  # requestid already used: the work may be done
    ("500", 400, Permanent, "permanent"),  # Unsupported Operation
    ("610", 400, NotFound, "not-found"),  # Object Not Found (inactive or deleted)
    ("1040", 400, Permanent, "permanent"),  # batch larger than allowed
    ("2010", 400, Permanent, "permanent-with-field"),  # invalid or unsupported property
    ("2020", 400, Permanent, "permanent-with-field"),  # required parameter missing
    ("2040", 400, Permanent, "permanent-with-field"),  # invalid character
    ("2050", 400, Permanent, "permanent-with-field"),  # string length
    ("2500", 400, Permanent, "permanent-with-field"),  # invalid reference id
    ("4000", 400, InvalidQuery, "permanent"),  # query parse error
    ("4001", 400, InvalidQuery, "permanent"),  # unknown / non-queryable property, bad paging
    ("5010", 400, StaleObject, "stale"),  # SyncToken out of date
    ("6000", 400, Permanent, "permanent-with-field"),  # business validation
    ("6070", 400, Permanent, "permanent-with-field"),  # Line Amount != Qty x UnitPrice
    ("6140", 400, DuplicateDocNumber, "permanent"),  # duplicate DocNumber
    ("6210", 400, Permanent, "permanent"),  # named for duplicate DocNumber by some sources only
    ("6240", 400, DuplicateName, "permanent"),  # duplicate DisplayName / Name
]


def test_every_code_of_the_table_has_a_row_here_and_every_row_is_in_the_table() -> None:
    assert {code for code, *_ in ROWS} == set(ERROR_CODES)


@pytest.mark.parametrize(("code", "status", "expected", "action"), ROWS, ids=[r[0] for r in ROWS])
def test_each_code_is_classified_once(code: str, status: int, expected: type[QboError], action: str) -> None:
    # Given the fault as QuickBooks answers it, and the same fault inside an HTTP 200 batch item
    answered = classify_response(status, fault(code, "m", "d", element="Line.Amount"))
    in_batch = batch_item_error(
        {"bId": "b1", "Fault": json.loads(fault(code, element="Line.Amount"))["Fault"]}
    )
    # Then both are exactly the expected class
    assert type(answered) is expected, (code, type(answered))
    assert type(in_batch) is expected, (code, type(in_batch))
    # And what the class tells the sync engine to do is what the row says
    assert answered.retryable == (action in ("transient", "throttled", "look-up"))
    assert isinstance(answered, NeedsReconnect) == (action == "needs-reconnect")
    if action == "look-up":
        assert isinstance(answered, Transient) and answered.maybe_committed
    if isinstance(answered, Permanent):
        assert answered.code == code and answered.element == "Line.Amount"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "3001", Throttled),  # the 403 ThrottleExceeded variant (ruckus throttle_exceeded_error.xml)
        (401, "", AuthExpired),  # a bare 401
        (403, "", AuthorizationFailed),  # a bare 403
        (502, "", Transient),
        (500, "6000", Transient),  # the server failed, whatever it says
        (400, "150", AuthorizationFailed),  # unknown code in 1-499: authorization range
        (400, "10500", Transient),  # unknown code of 10000 and above: severe, server side
        (400, "7777", Permanent),  # unknown validation code
    ],
)
def test_codes_outside_the_table_fall_back_on_status_then_code_range(
    status: int, code: str, expected: type[QboError]
) -> None:
    body = fault(code) if code else "no body"
    assert type(classify_response(status, body)) is expected


def test_an_auth_or_throttle_fault_anywhere_in_the_list_governs_the_call() -> None:
    body = json.dumps(
        {
            "Fault": {
                "Error": [
                    {"Message": "m", "code": "6000", "element": ""},
                    {"Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429", "code": "3001"},
                ]
            }
        }
    )
    assert isinstance(classify_response(400, body), Throttled)


@pytest.mark.parametrize(
    ("status", "message", "code", "expected"),
    [
        (401, "message=AuthenticationFailed; errorCode=003200; statusCode=401", "3200", AuthExpired),
        (
            403,
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            "3100",
            AuthorizationFailed,
        ),
    ],
)
def test_the_recorded_gateway_envelope_with_null_members_and_epoch_millis(
    status: int, message: str, code: str, expected: type[QboError]
) -> None:
    # Given the whole body Intuit's gateway answers (reference §2: null members, time in epoch ms)
    body = json.dumps(
        {
            "warnings": None,
            "intuitObject": None,
            "fault": {
                "error": [
                    {"message": message, "detail": "Token expired: AB0", "code": code, "element": None}
                ],
                "type": "AUTHENTICATION",
            },
            "report": None,
            "queryResponse": None,
            "batchItemResponse": [],
            "requestId": None,
            "time": 1730024394085,
            "status": None,
            "cdcresponse": [],
        }
    )
    # Then it is read like the short form
    error = classify_response(status, body)
    assert type(error) is expected
    assert error.faults[0].code == code and error.faults[0].element == ""
