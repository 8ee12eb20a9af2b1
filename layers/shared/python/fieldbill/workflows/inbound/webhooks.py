"""QuickBooks webhooks: verify, gate, check, queue the raw delivery as one message, answer.

Intuit retries a delivery not answered 200 within 3 seconds and holds later events until then, so
the receiver does O(1) work beyond reading the body: no QuickBooks call, no table read, one queue
message whatever the delivery holds. The inbound consumer splits the delivery into events.

| answer | when                                                                             |
|--------|----------------------------------------------------------------------------------|
| 200    | queued (events about entities we do not apply are acknowledged and counted)       |
| 401    | intuit-signature missing or wrong (checked on the raw bytes, before anything else) |
| 413    | body over MAX_BYTES, or more than MAX_EVENTS events                               |
| 400    | not UTF-8, nested too deep, not JSON, not one of Intuit's two formats, or an event |
|        | whose ids are missing, null, empty or too long (`fields` names each)             |

Caps. Intuit sends at most 100 events per delivery (IntuitDeveloper webinar Q&A, 2025-02-05), of
about 100 to 400 bytes each, so MAX_BYTES (128 KiB) is far above a real delivery and, base64
encoded, still fits one SQS message (256 KiB). A signed delivery with more than 100 events is not
one Intuit documents sending: it is refused whole (413, logged, nothing queued) rather than
queued, because one message must stay bounded work for one consumer invocation; if it ever were
genuine, the hourly invoice backfill and the catalogue schedules (change data capture) bring the same changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters

from fieldbill import jsonbody
from fieldbill.observability import logger
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.settings import get_settings
from fieldbill.workflows import queues
from fieldbill.workflows.messages import InboundMessage

SIGNATURE_HEADER = "intuit-signature"
MAX_BYTES = 131_072
MAX_EVENTS = 100
MAX_ID_LENGTH = 100  # QuickBooks ids are short numbers, realm ids ~20 digits, CloudEvent ids UUIDs
MAX_FIELD_ERRORS = 10  # a body with thousands of bad events names the first few

# CloudEvents verbs (qbo.<entity>.<verb>.v1) -> the legacy operation names.
CLOUDEVENT_OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}
# What the inbound consumer applies; events about other entities are acknowledged and dropped.
HANDLED_ENTITIES = {"customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment"}


class DeliveryInvalid(ValueError):
    """The body is not a delivery we accept; `fields` names each input at fault."""

    def __init__(self, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


def verifier_token() -> str:
    secret = parameters.get_secret(get_settings().qbo_app_secret_name, transform="json", max_age=300)
    return str(secret.get("webhook_verifier_token", ""))  # type: ignore[union-attr]


def signature_valid(raw_body: bytes, signature: str | None, token: str) -> bool:
    """base64(HMAC-SHA256(verifier token, raw body)), compared in constant time."""
    if not signature or not token:
        return False
    expected = base64.b64encode(hmac.new(token.encode(), raw_body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


# ------------------------------------------------------------------------------ shapes
class _Checker:
    """Collects what is wrong with a delivery, by path, so a 400 names every bad field."""

    def __init__(self) -> None:
        self.fields: list[dict[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        if len(self.fields) < MAX_FIELD_ERRORS:
            self.fields.append({"field": path, "message": message})

    def ident(self, container: dict[str, Any], key: str, path: str) -> str | None:
        value = container.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}", "must be a non-empty string")
            return None
        if len(value) > MAX_ID_LENGTH:
            self.fail(f"{path}.{key}", f"must be at most {MAX_ID_LENGTH} characters")
            return None
        return value

    def optional_text(self, container: dict[str, Any], key: str, path: str) -> str | None:
        value = container.get(key)
        if value is None or isinstance(value, str):
            return value
        self.fail(f"{path}.{key}", "must be a string")
        return None


def _entity(name: str) -> str:
    return HANDLED_ENTITIES.get(name.lower(), name)


def count_events(payload: Any) -> int:
    """Events in a delivery, counted without building them (the cap is checked first)."""
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        total = 0
        for notification in payload["eventNotifications"]:
            change = notification.get("dataChangeEvent") if isinstance(notification, dict) else None
            entities = change.get("entities") if isinstance(change, dict) else None
            total += len(entities) if isinstance(entities, list) else 0
        return total
    return len(payload) if isinstance(payload, list) else 0


def _legacy(notifications: list[Any], check: _Checker) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    for n, notification in enumerate(notifications):
        path = f"eventNotifications[{n}]"
        if not isinstance(notification, dict):
            check.fail(path, "must be an object")
            continue
        realm = check.ident(notification, "realmId", path)
        change = notification.get("dataChangeEvent")
        entities = change.get("entities") if isinstance(change, dict) else None
        if not isinstance(entities, list):
            check.fail(f"{path}.dataChangeEvent.entities", "must be a list")
            continue
        for e, entity in enumerate(entities):
            where = f"{path}.dataChangeEvent.entities[{e}]"
            if not isinstance(entity, dict):
                check.fail(where, "must be an object")
                continue
            name = check.ident(entity, "name", where)
            entity_id = check.ident(entity, "id", where)
            operation = check.optional_text(entity, "operation", where) or "Update"
            updated = check.optional_text(entity, "lastUpdated", where)
            merged_away = entity.get("deletedId")
            if merged_away is not None:
                merged_away = check.ident(entity, "deletedId", where)
            if realm is None or name is None or entity_id is None:
                continue
            kind = _entity(name)
            messages.append(
                InboundMessage(
                    kind="entity_changed",
                    realm_id=realm,
                    entity=kind,
                    entity_id=entity_id,
                    operation=operation,
                    last_updated=updated,
                    event_id=f"{realm}:{kind}:{entity_id}:{operation}:{updated or ''}",
                )
            )
            if merged_away:  # a Merge names the record merged away: it is gone
                messages.append(
                    InboundMessage(
                        kind="entity_changed",
                        realm_id=realm,
                        entity=kind,
                        entity_id=merged_away,
                        operation="Delete",
                        last_updated=updated,
                        event_id=f"{realm}:{kind}:{merged_away}:Delete:{updated or ''}",
                    )
                )
    return messages


def _cloudevents(events: list[Any], check: _Checker) -> list[InboundMessage]:
    messages: list[InboundMessage] = []
    for n, event in enumerate(events):
        path = f"[{n}]"
        if not isinstance(event, dict):
            check.fail(path, "must be an object")
            continue
        event_type = check.ident(event, "type", path)
        parts = (event_type or "").split(".")
        if event_type is not None and (len(parts) < 3 or parts[0] != "qbo"):
            check.fail(f"{path}.type", "must be qbo.<entity>.<verb>.v1")
            event_type = None
        event_id = check.ident(event, "id", path)
        realm = check.ident(event, "intuitaccountid", path)
        entity_id = check.ident(event, "intuitentityid", path)
        updated = check.optional_text(event, "time", path)
        if event_type is None or event_id is None or realm is None or entity_id is None:
            continue
        verb = parts[2].lower()
        messages.append(
            InboundMessage(
                kind="entity_changed",
                realm_id=realm,
                entity=_entity(parts[1]),
                entity_id=entity_id,
                operation=CLOUDEVENT_OPERATIONS.get(verb, verb.capitalize()),
                last_updated=updated,
                event_id=f"ce:{event_id}",
            )
        )
    return messages


def parse_events(payload: Any) -> list[InboundMessage]:
    """Both Intuit formats (the legacy eventNotifications object and the CloudEvents array), every
    event's shape checked: DeliveryInvalid names the fields at fault, and nothing is half-read."""
    check = _Checker()
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        messages = _legacy(payload["eventNotifications"], check)
    elif isinstance(payload, list) and payload:
        messages = _cloudevents(payload, check)
    else:
        raise DeliveryInvalid("neither an eventNotifications object nor a CloudEvents array")
    if check.fields:
        raise DeliveryInvalid("some events are not of Intuit's shape", check.fields)
    return messages


def delivery_events(message: InboundMessage) -> list[InboundMessage]:
    """The events of a queued delivery that the consumer applies (the others are dropped)."""
    raw = base64.b64decode(message.delivery or "")
    return [m for m in parse_events(jsonbody.parse(raw, max_bytes=MAX_BYTES)) if handled(m)]


def handled(message: InboundMessage) -> bool:
    return message.entity in HANDLED_ENTITIES.values()


# ------------------------------------------------------------------------------ the receiver
def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _refused(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    logger.warning("webhook delivery refused", extra={"status": status, "code": code, "reason": message})
    return _response(status, {"error": {"code": code, "message": message, "fields": fields or []}})


def receive(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    raw_bytes = (
        base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
    )
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not signature_valid(raw_bytes, headers.get(SIGNATURE_HEADER), verifier_token()):
        qmetrics.count("WebhookRejected", None)
        return _refused(401, "invalid_signature", "intuit-signature is missing or wrong")
    try:
        # Size first (413 without reading further), then UTF-8 and depth, then the parse.
        payload = jsonbody.parse(raw_bytes, max_bytes=MAX_BYTES)
    except jsonbody.BodyRejected as exc:
        qmetrics.count("WebhookMalformed", None)
        code = exc.code if exc.status == 413 else "malformed_payload"
        return _refused(exc.status, code, exc.message)
    events = count_events(payload)
    if events > MAX_EVENTS:
        qmetrics.count("WebhookMalformed", None)
        return _refused(413, "too_many_events", f"{events} events; Intuit sends at most {MAX_EVENTS}")
    try:
        messages = parse_events(payload)
    except DeliveryInvalid as exc:
        qmetrics.count("WebhookMalformed", None)
        return _refused(400, "malformed_payload", str(exc), exc.fields)
    queued = sum(1 for m in messages if handled(m))
    delivery = InboundMessage(kind="delivery", delivery=base64.b64encode(raw_bytes).decode("ascii"))
    try:
        queues.send(get_settings().inbound_queue_url, [delivery], client=_sqs())
    except queues.QueueRefused:  # not answered 200: Intuit delivers again (the consumer dedupes)
        logger.error("webhook delivery could not be queued", extra={"events": queued})
        return _response(
            500, {"error": {"code": "queue_unavailable", "message": "retry later", "fields": []}}
        )
    logger.info("webhook queued", extra={"events": queued, "ignored": len(messages) - queued})
    return _response(200, {"queued": queued, "ignored": len(messages) - queued})
