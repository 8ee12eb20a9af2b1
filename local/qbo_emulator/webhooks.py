"""Webhook notifications: batched per (app, realm), signed with the app's verifier token, retried.

Formats: ``legacy`` (``{"eventNotifications":[…]}``) and ``cloudevents`` (a JSON array of CloudEvents).
Header ``intuit-signature`` = base64(HMAC-SHA256(verifier_token, raw body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from .clock import Clock, fmt_utc
from .config import Settings
from .oauth import OAuthServer

CLOUDEVENT_VERBS = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Void": "voided",
    "Merge": "merged",
    "Emailed": "emailed",
}


def sign(verifier_token: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(verifier_token: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(verifier_token, body), signature or "")


@dataclass
class _Batch:
    since: float
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Delivery:
    client_id: str
    realm: str
    url: str
    fmt: str
    body: bytes
    signature: str
    events: int
    attempt: int = 0
    due: float = 0.0


def build_body(fmt: str, realm: str, events: list[dict[str, Any]]) -> bytes:
    if fmt == "cloudevents":
        payload: Any = [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "intuit.qbo-emulator",
                "type": f"qbo.{e['name'].lower()}.{CLOUDEVENT_VERBS.get(e['operation'], 'updated')}.v1",
                "datacontenttype": "application/json",
                "time": e["lastUpdated"],
                "intuitentityid": e["id"],
                "intuitaccountid": realm,
                "data": {},
            }
            for e in events
        ]
    else:
        payload = {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": events}}]}
    return json.dumps(payload).encode()


class WebhookDispatcher:
    def __init__(self, clock: Clock, settings: Settings, oauth: OAuthServer) -> None:
        self.clock = clock
        self.settings = settings
        self.oauth = oauth
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], _Batch] = {}
        self._retries: list[_Delivery] = []
        self._in_flight = 0
        # deliveries per app sent and not yet acknowledged (in flight or waiting for a retry):
        # Intuit holds an app's later events until the ack (reference §6)
        self._unacked: Counter[str] = Counter()
        self._flushing = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.deliveries: list[dict[str, Any]] = []

    # ---- producer side (called with the store lock held: keep it cheap) ----------------------
    def on_change(self, realm: str, entity: str, id_: str, operation: str, ts: float) -> None:
        if not self.settings.get("webhooks_enabled", realm):
            return
        apps = [a for a in self.oauth.apps_for_realm(realm) if a.webhook_url and a.webhooks_enabled]
        if not apps:
            return
        event = {"name": entity, "id": id_, "operation": operation, "lastUpdated": fmt_utc(ts)}
        with self._cond:
            for app in apps:
                batch = self._pending.setdefault((app.client_id, realm), _Batch(time.monotonic()))
                batch.events.append(dict(event))
            self._cond.notify_all()

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="qbo-emulator-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def clear(self) -> None:
        with self._cond:
            self._pending.clear()
            self._retries.clear()
            self._unacked.clear()
            self.deliveries.clear()

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything pending now (retries included, without their delays) and wait until idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._pending or self._retries or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    # ---- worker ------------------------------------------------------------------------------
    def _take_ready(self) -> tuple[list[_Delivery], float | None]:
        now = time.monotonic()
        ready: list[_Delivery] = []
        wake: float | None = None
        for key, batch in list(self._pending.items()):
            client_id, realm = key
            if self._unacked[client_id]:
                continue  # waits for the ack of the app's earlier delivery (woken by it)
            due = batch.since + float(self.settings.get("webhook_delay", realm))
            if self._flushing or due <= now:
                # at most webhook_max_events in one delivery; the rest waits for its ack
                size = int(self.settings.get("webhook_max_events", realm))
                events, batch.events = batch.events[:size], batch.events[size:]
                if not batch.events:
                    del self._pending[key]
                delivery = self._make(client_id, realm, events)
                if delivery is not None:
                    self._unacked[client_id] += 1
                    ready.append(delivery)
            else:
                wake = due if wake is None else min(wake, due)
        for delivery in list(self._retries):
            if self._flushing or delivery.due <= now:
                self._retries.remove(delivery)
                ready.append(delivery)
            else:
                wake = delivery.due if wake is None else min(wake, delivery.due)
        return ready, wake

    def _make(self, client_id: str, realm: str, events: list[dict[str, Any]]) -> _Delivery | None:
        app = self.oauth.apps.get(client_id)
        if app is None or not app.webhook_url:
            return None
        body = build_body(app.webhook_format, realm, events)
        signature = sign(app.verifier_token or "", body)
        return _Delivery(client_id, realm, app.webhook_url, app.webhook_format, body, signature, len(events))

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                ready, wake = self._take_ready()
                if not ready:
                    timeout = None if wake is None else max(0.0, wake - time.monotonic())
                    self._cond.wait(timeout if timeout is not None else 1.0)
                    continue
                self._in_flight += len(ready)
            for delivery in ready:
                self._send(delivery)
            with self._cond:
                self._in_flight -= len(ready)
                self._cond.notify_all()

    def _send(self, d: _Delivery) -> None:
        d.attempt += 1
        status: int | None = None
        error: str | None = None
        try:
            resp = requests.post(
                d.url,
                data=d.body,
                headers={"Content-Type": "application/json", "intuit-signature": d.signature},
                timeout=float(self.settings.get("webhook_timeout", d.realm)),
            )
            status = resp.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = {
            "client_id": d.client_id,
            "realm": d.realm,
            "url": d.url,
            "format": d.fmt,
            "attempt": d.attempt,
            "status": status,
            "error": error,
            "events": d.events,
            "body": d.body.decode(),
            "signature": d.signature,
        }
        retry_delays = list(self.settings.get("webhook_retry_delays", d.realm))
        with self._cond:
            self.deliveries.append(record)
            if status != 200 and d.attempt <= len(retry_delays):
                d.due = time.monotonic() + self.clock.real_seconds(retry_delays[d.attempt - 1])
                self._retries.append(d)
            else:  # acknowledged, or given up: the app's later events may go
                self._unacked[d.client_id] -= 1
                self._cond.notify_all()
