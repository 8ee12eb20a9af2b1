"""QuickBooks webhooks: verify intuit-signature on the raw body, queue the events, answer at once.

Intuit retries a delivery that is not answered 200 within 3 seconds, and may deliver an event
more than once or out of order: the receiver only checks and queues (no QuickBooks call, no
table read); the inbound consumer claims each event once (conditional put with a TTL) and
applies it by re-reading the entity from QuickBooks (see workflows/inbound.py).

Answers: 200 queued (events about entities we do not apply are acknowledged and dropped),
401 signature missing or wrong, 400 body that is not one of Intuit's two formats; nothing is
queued unless the answer is 200.
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

from fieldbill.observability import logger
from fieldbill.quickbooks import metrics as qmetrics
from fieldbill.settings import get_settings
from fieldbill.workflows import queues
from fieldbill.workflows.messages import InboundMessage

SIGNATURE_HEADER = "intuit-signature"


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


def _entity(name: Any) -> str:
    text = str(name)
    return HANDLED_ENTITIES.get(text.lower(), text)


def parse_events(payload: Any) -> list[InboundMessage]:
    """Both Intuit formats: the legacy eventNotifications object and the CloudEvents array."""
    messages: list[InboundMessage] = []
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        for notification in payload["eventNotifications"]:
            realm = str(notification["realmId"])
            for entity in notification.get("dataChangeEvent", {}).get("entities", []):
                name = _entity(entity["name"])
                updated = entity.get("lastUpdated")
                operation = str(entity.get("operation", "Update"))
                messages.append(
                    InboundMessage(
                        kind="entity_changed",
                        realm_id=realm,
                        entity=name,
                        entity_id=str(entity["id"]),
                        operation=operation,
                        last_updated=str(updated) if updated is not None else None,
                        event_id=f"{realm}:{name}:{entity['id']}:{operation}:{updated or ''}",
                    )
                )
                if entity.get("deletedId"):  # a Merge names the record merged away: it is gone
                    messages.append(
                        InboundMessage(
                            kind="entity_changed",
                            realm_id=realm,
                            entity=name,
                            entity_id=str(entity["deletedId"]),
                            operation="Delete",
                            last_updated=str(updated) if updated is not None else None,
                            event_id=f"{realm}:{name}:{entity['deletedId']}:Delete:{updated or ''}",
                        )
                    )
        return messages
    if isinstance(payload, list) and payload:
        for event in payload:
            # type: qbo.<entity>.<verb>.v1
            parts = str(event["type"]).split(".")
            if len(parts) < 3 or parts[0] != "qbo":
                raise ValueError(f"unknown event type {event['type']!r}")
            verb = parts[2].lower()
            messages.append(
                InboundMessage(
                    kind="entity_changed",
                    realm_id=str(event["intuitaccountid"]),
                    entity=_entity(parts[1]),
                    entity_id=str(event["intuitentityid"]),
                    operation=CLOUDEVENT_OPERATIONS.get(verb, verb.capitalize()),
                    last_updated=event.get("time"),
                    event_id=f"ce:{event['id']}",
                )
            )
        return messages
    raise ValueError("neither an eventNotifications object nor a CloudEvents array")


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def receive(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    raw_bytes = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not signature_valid(raw_bytes, headers.get(SIGNATURE_HEADER), verifier_token()):
        qmetrics.count("WebhookRejected", None)
        return _response(
            401, {"error": {"code": "invalid_signature", "message": "intuit-signature is missing or wrong"}}
        )
    try:
        messages = parse_events(json.loads(raw_bytes))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        qmetrics.count("WebhookMalformed", None)
        return _response(400, {"error": {"code": "malformed_payload", "message": str(exc)[:200]}})
    ignored = sum(1 for m in messages if m.entity not in HANDLED_ENTITIES.values())
    messages = [m for m in messages if m.entity in HANDLED_ENTITIES.values()]
    try:
        queues.send(get_settings().inbound_queue_url, messages, client=_sqs())
    except queues.QueueRefused:  # not answered 200: Intuit delivers again (the consumer dedupes)
        logger.error("webhook events could not be queued", extra={"events": len(messages)})
        return _response(500, {"error": {"code": "queue_unavailable", "message": "retry later"}})
    logger.info("webhook queued", extra={"events": len(messages), "ignored": ignored})
    return _response(200, {"queued": len(messages), "ignored": ignored})
