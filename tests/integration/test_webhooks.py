"""The QuickBooks webhook receiver over HTTP against the local gateway: signature, formats, replays,
malformed bodies, and a burst answered within Intuit's 3 seconds."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from fieldbill.store import inbound_events
from fieldbill.store.models import META, Contact, Entity
from fieldbill.workflows.inbound import applier, webhooks
from fieldbill.workflows.messages import InboundMessage
from tests.conftest import load_event
from tests.integration.test_qbo_sync import qbo_connect, qbo_tenant

pytestmark = pytest.mark.integration

WEBHOOK_LIMIT_SECONDS = 3.0


class SqsSpy:
    """Wraps the receiver's SQS client: records every batch it sends, then sends it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.batches: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.batches.append(kwargs)
        return self.real.send_message_batch(**kwargs)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(e["MessageBody"]) for b in self.batches for e in b["Entries"]]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events of the queued deliveries, as the consumer splits them."""
        return [
            e.model_dump()
            for m in self.messages
            for e in webhooks.delivery_events(InboundMessage.model_validate(m))
        ]


@pytest.fixture
def spy(stack: Any, monkeypatch: pytest.MonkeyPatch) -> SqsSpy:
    recorder = SqsSpy(webhooks._sqs())
    monkeypatch.setattr(webhooks, "_sqs", lambda: recorder)
    return recorder


def sign(body: bytes, token: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def legacy(realm: str, *entities: dict[str, Any]) -> bytes:
    payload = {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": list(entities)}}]}
    return json.dumps(payload).encode()


def post(stack: Any, body: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["intuit-signature"] = signature
    return requests.post(stack.webhook_url, data=body, headers=headers, timeout=30)


def token(stack: Any) -> str:
    return str(stack.options.webhook_verifier_token)


# ------------------------------------------------------------------------------ signature
def test_signature_matches_a_known_vector():
    # HMAC-SHA256 of the canonical sample event, keyed with its verifier token, base64-encoded
    event = load_event("webhook_legacy.json")
    body = event["body"].encode()
    expected = event["headers"]["intuit-signature"]
    assert expected == "qfS9MoNJmkJJIpo+dCXdo2iUz0Ai8LO2kZTo6A+rA5c="
    assert sign(body, "sample-verifier-token") == expected
    assert webhooks.signature_valid(body, expected, "sample-verifier-token")
    # one byte changed, another key, no signature, no key: refused
    assert not webhooks.signature_valid(body.replace(b"40", b"41"), expected, "sample-verifier-token")
    assert not webhooks.signature_valid(body, expected, "another-token")
    assert not webhooks.signature_valid(body, None, "sample-verifier-token")
    assert not webhooks.signature_valid(body, expected, "")


def test_a_tampered_body_or_a_missing_signature_is_refused_and_nothing_is_queued(stack, spy: SqsSpy):
    body = legacy(
        "realm-tamper",
        {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-11-21T10:00:00.000Z"},
    )
    good = sign(body, token(stack))
    tampered = body.replace(b'"id": "1"', b'"id": "2"')
    for raw, signature in ((tampered, good), (body, None), (body, ""), (body, sign(body, "wrong-token"))):
        response = post(stack, raw, signature)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    assert spy.batches == []
    # the genuine delivery is accepted
    assert post(stack, body, good).status_code == 200
    assert [m["kind"] for m in spy.messages] == ["delivery"]  # the raw delivery, one message
    assert [m["entity_id"] for m in spy.events] == ["1"]


def test_a_malformed_body_is_refused_with_400_and_nothing_is_queued(stack, spy: SqsSpy):
    for raw in (
        b"not json",
        b"{}",
        b"[]",
        b'{"eventNotifications": [{"dataChangeEvent": {}}]}',
        b'[{"type": "something.else", "id": "1"}]',
        b'"a string"',
        b'[{"id": "1"}]',
    ):
        response = post(stack, raw, sign(raw, token(stack)))
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"]["code"] == "malformed_payload"
    assert spy.batches == []


# ------------------------------------------------------------------------------ formats
def test_both_payload_formats_become_the_same_events():
    updated = "2026-11-21T10:00:00.000Z"
    old = webhooks.parse_events(
        json.loads(
            legacy("123", {"name": "Invoice", "id": "40", "operation": "Update", "lastUpdated": updated})
        )
    )
    new = webhooks.parse_events(
        [
            {
                "specversion": "1.0",
                "id": "e-1",
                "source": "intuit",
                "type": "qbo.invoice.updated.v1",
                "datacontenttype": "application/json",
                "time": updated,
                "intuitentityid": "40",
                "intuitaccountid": "123",
                "data": {},
            }
        ]
    )
    assert [(m.realm_id, m.entity, m.entity_id, m.operation, m.last_updated) for m in old] == [
        ("123", "Invoice", "40", "Update", updated)
    ]
    assert [(m.realm_id, m.entity, m.entity_id, m.operation, m.last_updated) for m in new] == [
        ("123", "Invoice", "40", "Update", updated)
    ]
    # a merge names the record merged away: it becomes a Delete of that record
    merged = webhooks.parse_events(
        json.loads(
            legacy(
                "123",
                {
                    "name": "Customer",
                    "id": "7",
                    "operation": "Merge",
                    "deletedId": "9",
                    "lastUpdated": updated,
                },
            )
        )
    )
    assert [(m.entity_id, m.operation) for m in merged] == [("7", "Merge"), ("9", "Delete")]


def _connected_customer(stack: Any) -> tuple[str, str, dict[str, Any]]:
    tenant = qbo_tenant()
    realm = qbo_connect(stack, tenant)
    stack.emulator.configure(realm, webhooks_enabled=False)  # the test is the only sender
    customer = stack.emulator.user_create(realm, "Customer", {"DisplayName": f"Hook {tenant}"})
    return tenant, realm, customer


def _contact(tenant: str, qbo_id: str) -> Contact | None:
    for record in Entity.gsi1.query(Contact.list_key(tenant)):
        if isinstance(record, Contact) and record.qbo_id == qbo_id:
            found = Entity.get(record.pk, META, consistent_read=True)
            return found if isinstance(found, Contact) else None
    return None


def test_both_formats_are_applied_over_http(stack):
    tenant, realm, customer = _connected_customer(stack)
    # legacy: the customer is created here, linked to QuickBooks
    body = legacy(
        realm,
        {
            "name": "Customer",
            "id": customer["Id"],
            "operation": "Create",
            "lastUpdated": customer["MetaData"]["LastUpdatedTime"],
        },
    )
    assert post(stack, body, sign(body, token(stack))).status_code == 200
    stack.aws.drain()
    contact = _contact(tenant, customer["Id"])
    assert contact is not None and contact.name == customer["DisplayName"]
    # CloudEvents: an update is applied
    edited = stack.emulator.user_edit(realm, "Customer", customer["Id"], {"DisplayName": f"Cloud {tenant}"})
    event = [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.qbo",
            "type": "qbo.customer.updated.v1",
            "datacontenttype": "application/json",
            "time": edited["MetaData"]["LastUpdatedTime"],
            "intuitentityid": customer["Id"],
            "intuitaccountid": realm,
            "data": {},
        }
    ]
    body = json.dumps(event).encode()
    assert post(stack, body, sign(body, token(stack))).status_code == 200
    stack.aws.drain()
    contact = _contact(tenant, customer["Id"])
    assert contact is not None and contact.name == f"Cloud {tenant}"


# ------------------------------------------------------------------------------ replays
def test_a_replayed_delivery_is_applied_once(stack):
    tenant, realm, customer = _connected_customer(stack)
    edited = stack.emulator.user_edit(realm, "Customer", customer["Id"], {"DisplayName": f"Once {tenant}"})
    body = legacy(
        realm,
        {
            "name": "Customer",
            "id": customer["Id"],
            "operation": "Update",
            "lastUpdated": edited["MetaData"]["LastUpdatedTime"],
        },
    )
    signature = sign(body, token(stack))
    before = stack.emulator.calls(realm)["total"]
    # Intuit delivers the same notification three times (twice at once, once after we applied it)
    assert post(stack, body, signature).status_code == 200
    assert post(stack, body, signature).status_code == 200
    stack.aws.drain()
    assert post(stack, body, signature).status_code == 200
    stack.aws.drain()
    # Applied once: one read from QuickBooks, one contact, one history entry for the change
    assert stack.emulator.calls(realm)["total"] - before == 1
    contact = _contact(tenant, customer["Id"])
    assert contact is not None and contact.name == f"Once {tenant}"
    assert len([h for h in contact.history if h.actor == applier.ACTOR]) == 1
    event_id = f"{realm}:Customer:{customer['Id']}:Update:{edited['MetaData']['LastUpdatedTime']}"
    assert inbound_events.applied(event_id)


def test_events_out_of_order_leave_the_latest_version(stack):
    tenant, realm, customer = _connected_customer(stack)
    first = stack.emulator.user_edit(realm, "Customer", customer["Id"], {"DisplayName": f"First {tenant}"})
    stack.emulator.user_edit(realm, "Customer", customer["Id"], {"DisplayName": f"Latest {tenant}"})
    # the newer event arrives first, the older one after it
    newer = legacy(
        realm,
        {
            "name": "Customer",
            "id": customer["Id"],
            "operation": "Update",
            "lastUpdated": "2099-01-01T00:00:00.000Z",
        },
    )
    older = legacy(
        realm,
        {
            "name": "Customer",
            "id": customer["Id"],
            "operation": "Update",
            "lastUpdated": first["MetaData"]["LastUpdatedTime"],
        },
    )
    for body in (newer, older):
        assert post(stack, body, sign(body, token(stack))).status_code == 200
        stack.aws.drain()
    contact = _contact(tenant, customer["Id"])
    assert contact is not None and contact.name == f"Latest {tenant}"


# ------------------------------------------------------------------------------ burst
class SqsRecorder:
    """Stands in for SQS during the burst: moto spends ~15 ms of CPU per SendMessageBatch (botocore
    and XML in this very process), which would measure the emulator, not the receiver. Queueing
    itself is proven by the other tests of this module."""

    def __init__(self) -> None:
        self.entries = 0

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.entries += len(kwargs["Entries"])
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def test_a_burst_of_1000_deliveries_is_answered_each_within_3_seconds(stack, monkeypatch: pytest.MonkeyPatch):
    recorder = SqsRecorder()
    monkeypatch.setattr(webhooks, "_sqs", lambda: recorder)
    realm = f"burst-{uuid.uuid4().hex[:8]}"
    bodies = [
        legacy(
            realm,
            {
                "name": "Invoice",
                "id": str(n),
                "operation": "Update",
                "lastUpdated": "2026-11-21T10:00:00.000Z",
            },
        )
        for n in range(1000)
    ]
    secret = token(stack)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16))

    def deliver(body: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        response = session.post(
            stack.webhook_url,
            data=body,
            timeout=30,
            headers={"Content-Type": "application/json", "intuit-signature": sign(body, secret)},
        )
        return response.status_code, time.perf_counter() - started

    # The first delivery alone (it may meet a cold start), then the rest 8 at a time
    results = [deliver(bodies[0])]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results += list(pool.map(deliver, bodies[1:]))
    statuses = {status for status, _ in results}
    slowest = max(seconds for _, seconds in results)
    assert len(results) == 1000 and statuses == {200}
    assert slowest < WEBHOOK_LIMIT_SECONDS, f"slowest answer {slowest:.2f}s"
    assert recorder.entries == 1000


# ------------------------------------------------------------------------------ caps and shapes
class Recorder:
    """Wraps a function of the receiver and counts its calls (work it must not do)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real(*args, **kwargs)


def _events(realm: str, count: int) -> list[dict[str, Any]]:
    return [
        {"name": "Customer", "id": str(n), "operation": "Update", "lastUpdated": "2026-11-21T10:00:00.000Z"}
        for n in range(count)
    ]


def _refusal(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code, error
    return dict(error)


def test_a_signed_delivery_of_50000_events_is_refused_by_its_size_before_it_is_read(
    stack, spy: SqsSpy, monkeypatch: pytest.MonkeyPatch
):
    # Given a signed delivery of 50,000 events (about 5 MB; Intuit sends at most 100 a delivery)
    body = legacy(f"big-{uuid.uuid4().hex[:8]}", *_events("big", 50_000))
    assert len(body) > 4_000_000
    depth = Recorder(webhooks.jsonbody.nesting_depth)
    parse = Recorder(webhooks.parse_events)
    monkeypatch.setattr(webhooks.jsonbody, "nesting_depth", depth)
    monkeypatch.setattr(webhooks, "parse_events", parse)
    signature = sign(body, token(stack))
    # When it is delivered
    started = time.perf_counter()
    response = post(stack, body, signature)
    elapsed = time.perf_counter() - started
    # Then it is refused by the size cap (413, the shared error shape) without reading the body:
    # the receiver's work does not grow with the events, so the answer comes at once
    _refusal(response, 413, "body_too_large")
    assert (depth.calls, parse.calls) == (0, 0)
    assert elapsed < 1.0, f"answered after {elapsed:.2f}s"
    assert spy.batches == []


def test_a_signed_delivery_over_intuits_100_events_is_refused_and_its_events_never_built(
    stack, spy: SqsSpy, monkeypatch: pytest.MonkeyPatch
):
    parse = Recorder(webhooks.parse_events)
    monkeypatch.setattr(webhooks, "parse_events", parse)
    realm = f"many-{uuid.uuid4().hex[:8]}"
    over = legacy(realm, *_events(realm, webhooks.MAX_EVENTS + 1))
    assert len(over) < webhooks.MAX_BYTES  # under the size cap: the event count refuses it
    error = _refusal(post(stack, over, sign(over, token(stack))), 413, "too_many_events")
    assert "101 events" in error["message"]
    assert parse.calls == 0 and spy.batches == []
    # Intuit's maximum itself is accepted, as one queued message
    most = legacy(realm, *_events(realm, webhooks.MAX_EVENTS))
    response = post(stack, most, sign(most, token(stack)))
    assert response.status_code == 200 and response.json() == {"queued": 100, "ignored": 0}
    assert len(spy.messages) == 1 and len(spy.events) == 100


def test_a_signed_delivery_nested_50000_deep_answers_400_not_500(stack, spy: SqsSpy):
    for body in (
        b"[" * 50_000 + b"]" * 50_000,
        b'{"eventNotifications": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ):
        error = _refusal(post(stack, body, sign(body, token(stack))), 400, "malformed_payload")
        assert "deeper" in error["message"]
    assert spy.batches == []


def test_a_signed_delivery_that_is_not_utf8_answers_400(stack, spy: SqsSpy):
    body = b'{"eventNotifications": [{"realmId": "\xff\xfe"}]}'
    _refusal(post(stack, body, sign(body, token(stack))), 400, "malformed_payload")
    assert spy.batches == []


def test_an_event_with_a_null_id_is_refused_with_the_field_named_and_nothing_is_queued(stack, spy: SqsSpy):
    realm = f"null-{uuid.uuid4().hex[:8]}"
    good = {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-11-21T10:00:00.000Z"}
    bodies = {
        "eventNotifications[0].dataChangeEvent.entities[1].id": legacy(realm, good, {**good, "id": None}),
        "eventNotifications[0].dataChangeEvent.entities[0].name": legacy(realm, {**good, "name": None}),
        "eventNotifications[0].realmId": json.dumps(
            {"eventNotifications": [{"realmId": None, "dataChangeEvent": {"entities": [good]}}]}
        ).encode(),
        "[0].intuitentityid": json.dumps(
            [
                {
                    "id": "e-1",
                    "type": "qbo.customer.updated.v1",
                    "intuitaccountid": realm,
                    "intuitentityid": None,
                    "time": "2026-11-21T10:00:00.000Z",
                }
            ]
        ).encode(),
        "eventNotifications[0].dataChangeEvent.entities[0].id": legacy(realm, {**good, "id": ""}),
    }
    for field, body in bodies.items():
        error = _refusal(post(stack, body, sign(body, token(stack))), 400, "malformed_payload")
        assert [f["field"] for f in error["fields"]] == [field], error
    # nothing was queued: no Customer "None" (nor any other event of those deliveries)
    assert spy.batches == []
