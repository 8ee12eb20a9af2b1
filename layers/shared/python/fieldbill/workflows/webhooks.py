"""QuickBooks webhooks: verify intuit-signature on the raw body, queue the events, answer at once.

Intuit retries a delivery that is not answered 200 within 3 seconds, and may deliver an event
more than once or out of order: the receiver only checks and queues; the inbound consumer
applies events idempotently (see workflows/inbound.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters

from fieldbill.observability import logger, metrics
from fieldbill.settings import get_settings
from fieldbill.workflows.messages import InboundMessage

SIGNATURE_HEADER = "intuit-signature"


def verifier_token() -> str:
    secret = parameters.get_secret(get_settings().qbo_app_secret_name, transform="json", max_age=300)
    return str(secret.get("webhook_verifier_token", ""))  # type: ignore[union-attr]


def signature_valid(raw_body: bytes, signature: str | None, token: str) -> bool:
    """base64(HMAC-SHA256(verifier token, raw body)), compared in constant time."""
    if not signature or not token:
        return False
    expected = base64.b64encode(hmac.new(token.encode(), raw_body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


def parse_events(payload: Any) -> list[InboundMessage]:
    """Both Intuit formats: the legacy eventNotifications object and the CloudEvents array."""
    messages: list[InboundMessage] = []
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        for notification in payload["eventNotifications"]:
            realm = str(notification["realmId"])
            for entity in notification.get("dataChangeEvent", {}).get("entities", []):
                messages.append(InboundMessage(
                    kind="entity_changed", realm_id=realm, entity=str(entity["name"]), entity_id=str(entity["id"]),
                    operation=str(entity.get("operation", "Update")), last_updated=entity.get("lastUpdated"),
                    event_id=f"{realm}:{entity['name']}:{entity['id']}:{entity.get('lastUpdated', '')}"))
        return messages
    if isinstance(payload, list) and payload:
        for event in payload:
            # type: qbo.<entity>.<operation>.v1
            parts = str(event["type"]).split(".")
            if len(parts) < 3:
                raise ValueError(f"unknown event type {event['type']!r}")
            messages.append(InboundMessage(
                kind="entity_changed", realm_id=str(event["intuitaccountid"]), entity=parts[1].capitalize(),
                entity_id=str(event["intuitentityid"]), operation=parts[2].capitalize(),
                last_updated=event.get("time"), event_id=str(event["id"])))
        return messages
    raise ValueError("neither an eventNotifications object nor a CloudEvents array")


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def receive(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    raw_bytes = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not signature_valid(raw_bytes, headers.get(SIGNATURE_HEADER), verifier_token()):
        metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
        return _response(401, {"error": {"code": "invalid_signature", "message": "intuit-signature is missing or wrong"}})
    try:
        messages = parse_events(json.loads(raw_bytes))
    except (ValueError, KeyError, TypeError) as exc:
        return _response(400, {"error": {"code": "malformed_payload", "message": str(exc)}})
    sqs = boto3.client("sqs")
    url = get_settings().inbound_queue_url
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)])
    logger.info("webhook queued", extra={"events": len(messages)})
    return _response(200, {"queued": len(messages)})
